"""Evaluate a model on MMBench, SEED-Bench, ImageNet and SSL4RL datasets, or re-score, or compare runs.

    python train/evaluate.py --model PATH --benchmark mmbench:MMBench_DEV_EN.tsv \\
        --benchmark seedbench:SEEDBench_IMG.tsv --benchmark ssl:out/rotation --out eval/base
    python train/evaluate.py --predictions eval/base/predictions.jsonl --out eval/base-rescored
    python train/evaluate.py --compare eval/base eval/trained --out eval/report

Benchmarks (KIND:PATH, any format the data sources read):
  mmbench    circular accuracy (a question counts only if every option-rotated copy is right),
             row accuracy, and circular accuracy per category
  seedbench  accuracy on image questions (video questions are left out), per question type
  imagenet   multiple choice: the true class and --imagenet-distractors classes drawn
             deterministically from the 10 nearest in sorted-synset order; class names from the
             dataset's label names or --imagenet-classes (LOC_synset_mapping.txt or JSON)
  ssl        a dataset built by ssl4rl-data, scored by the training reward functions

Prompts: --prompt paper (default: reason in <think>, answer the letter in <answer>) or plain
(answer the letter directly); every model compared must use the same one. Answers are extracted by
rules only (answer tag, then option letter, then option text); no judge model; unmatched answers
count as wrong and are counted.

Files written to --out:
  predictions.jsonl  one JSON object per benchmark row: benchmark, id, group (MMBench question id),
                     category, question, options ({letter: text}), answer (gold), task (ssl rows),
                     output (the raw generation), extracted (the letter or answer found, or null).
                     `--predictions FILE` re-scores such a file: extraction and scoring are redone
                     from `output`, so it needs no model.
  scores.json        per benchmark: the accuracies, counts (rows, questions, unmatched) and the
                     per-category breakdown, plus the settings of the run.
  With --compare: report.md (a Markdown table, A vs B) and compare.png (per-category differences).
"""

import argparse
import json
import sys
from pathlib import Path

from eval_data import multiple_choice_prompt, read_imagenet, read_mmbench, read_seedbench, read_ssl
from scoring import headline, score_predictions

from ssl4rl_data.errors import UserError


def load_items(specs: list[str], args) -> list:
    items = []
    for spec in specs:
        kind, _, path = spec.partition(":")
        if not path or not Path(path).exists():
            raise UserError(f"--benchmark {spec}: expected KIND:PATH with an existing PATH")
        if kind == "mmbench":
            found = read_mmbench(Path(path))
        elif kind == "seedbench":
            found = read_seedbench(Path(path))
        elif kind == "imagenet":
            found = read_imagenet(Path(path), args.imagenet_classes, args.imagenet_distractors, args.seed)
        elif kind == "ssl":
            found = read_ssl(Path(path))
        else:
            raise UserError(f"--benchmark {spec}: unknown kind {kind!r}; use mmbench, seedbench, imagenet or ssl")
        items += found[: args.limit] if args.limit else found
    return items


def generate(items, model_path: str, args) -> list[str]:
    """Greedy, batched generation with transformers (left padding), on the GPU when there is one."""
    import torch
    from tqdm import tqdm
    from transformers import AutoModelForImageTextToText
    from vlm import load_processor

    from ssl4rl_data.images import decode

    device = "cuda" if torch.cuda.is_available() else "cpu"
    processor = load_processor(model_path, **({"max_pixels": args.max_pixels} if args.max_pixels else {}))
    model = AutoModelForImageTextToText.from_pretrained(
        model_path, dtype=torch.bfloat16 if device == "cuda" else torch.float32).to(device).eval()
    outputs = []
    for start in tqdm(range(0, len(items), args.batch_size), desc="generating", unit="batch"):
        batch = items[start:start + args.batch_size]
        texts, images = [], []
        for item in batch:
            content = [{"type": "image"}] * len(item.images) + [
                {"type": "text", "text": multiple_choice_prompt(item, args.prompt)}]
            texts.append(processor.apply_chat_template([{"role": "user", "content": content}], tokenize=False,
                                                       add_generation_prompt=True))
            images.append([decode(load()) for load in item.images])
        inputs = processor(text=texts, images=images, padding=True, return_tensors="pt").to(device)
        with torch.no_grad():
            generated = model.generate(**inputs, max_new_tokens=args.max_new_tokens, do_sample=False)
        outputs += processor.batch_decode(generated[:, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
    return outputs


def write_scores(records: list[dict], out: Path, settings: dict) -> dict:
    scores = score_predictions(records)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "predictions.jsonl", "w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    (out / "scores.json").write_text(json.dumps({"settings": settings, "scores": scores}, indent=2))
    return scores


FIELDS = {"benchmark": (str,), "group": (str,), "answer": (str,), "output": (str,), "category": (str, type(None))}
CHOICE_FIELDS = {"options": (dict,)}
SSL_FIELDS = {"task": (str,)}


def read_predictions(path: Path) -> list[dict]:
    """The records of a predictions.jsonl, each checked for the fields and types scoring reads."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UserError(f"--predictions {path} is not UTF-8 text (expected a predictions.jsonl from evaluate.py)") from None
    except OSError as error:
        raise UserError(f"--predictions {path} cannot be read: {error.strerror or error}") from None
    records = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise UserError(f"--predictions {path}: line {number} is not JSON ({error.msg}); is the file truncated?") from None
        if not isinstance(record, dict):
            raise UserError(f"--predictions {path}: line {number} is not a JSON object")
        fields = {**FIELDS, **(SSL_FIELDS if record.get("benchmark") == "ssl" else CHOICE_FIELDS)}
        for name, kinds in fields.items():
            if not isinstance(record.get(name), kinds):
                wanted = " or ".join("null" if kind is type(None) else kind.__name__ for kind in kinds)
                raise UserError(f"--predictions {path}: line {number}: field {name!r} must be {wanted}, "
                                f"got {type(record.get(name)).__name__ if name in record else 'nothing'}")
        if record["benchmark"] != "ssl" and not all(isinstance(v, str) for v in record["options"].values()):
            raise UserError(f"--predictions {path}: line {number}: options must map letters to text")
        records.append(record)
    if not records:
        raise UserError(f"--predictions {path} holds no predictions")
    return records


def read_scores(folder: Path) -> dict:
    try:
        scores = json.loads((folder / "scores.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        reason = getattr(error, "strerror", None) or str(error).splitlines()[0]
        raise UserError(f"--compare {folder}: no readable scores.json ({reason})") from None
    if not isinstance(scores, dict) or not isinstance(scores.get("scores"), dict) \
            or not isinstance(scores.get("settings"), dict):
        raise UserError(f"--compare {folder}: scores.json is not one written by evaluate.py")
    return scores


def compare(first: Path, second: Path, out: Path):
    """report.md and compare.png: B minus A, overall and per category, for each benchmark both ran."""
    a, b = (read_scores(d) for d in (first, second))
    lines = [f"# {second.name} vs {first.name}", "",
             f"Prompts: A {a['settings'].get('prompt')}, B {b['settings'].get('prompt')}.", "",
             "| benchmark | category | A | B | B - A |", "|---|---|---|---|---|"]
    bars = []
    for name in sorted(set(a["scores"]) & set(b["scores"])):
        sa, sb = a["scores"][name], b["scores"][name]
        ha, hb = headline(name, sa), headline(name, sb)
        lines.append(f"| {name} | **overall** | {100 * ha:.1f} | {100 * hb:.1f} | {100 * (hb - ha):+.1f} |")
        for category in sorted(set(sa["categories"]) & set(sb["categories"])):
            ca, cb = sa["categories"][category]["accuracy"], sb["categories"][category]["accuracy"]
            lines.append(f"| {name} | {category} | {100 * ca:.1f} | {100 * cb:.1f} | {100 * (cb - ca):+.1f} |")
            bars.append((f"{name}: {category}", 100 * (cb - ca)))
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.md").write_text("\n".join(lines) + "\n")
    draw_differences(bars, f"{second.name} - {first.name} (accuracy points)").save(out / "compare.png")


def draw_differences(bars: list[tuple[str, float]], title: str):
    """A horizontal bar chart of differences (green up, red down), drawn with Pillow."""
    from PIL import Image, ImageDraw

    row, label_width, half = 22, 320, 220
    scale = half / max([abs(v) for _, v in bars] + [1.0])
    image = Image.new("RGB", (label_width + 2 * half + 80, row * (len(bars) + 2)), "white")
    draw = ImageDraw.Draw(image)
    draw.text((8, 4), title, fill="black")
    middle = label_width + half
    draw.line([(middle, row), (middle, row * (len(bars) + 1))], fill="gray")
    for index, (label, value) in enumerate(bars):
        top = row * (index + 1) + 3
        draw.text((8, top + 2), label[:48], fill="black")
        end = middle + value * scale
        draw.rectangle([min(middle, end), top, max(middle, end), top + row - 6],
                       fill=(46, 139, 87) if value >= 0 else (200, 60, 60))
        draw.text((max(middle, end) + 4, top + 2), f"{value:+.1f}", fill="black")
    return image


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="Model folder or Hub id (Qwen2.5-VL / Qwen2-VL).")
    parser.add_argument("--benchmark", action="append", default=[], help="KIND:PATH, repeatable.")
    parser.add_argument("--out", type=Path, required=True, help="Output folder.")
    parser.add_argument("--prompt", choices=["paper", "plain"], default="paper")
    parser.add_argument("--predictions", type=Path, help="Re-score this predictions.jsonl instead of generating.")
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("DIR_A", "DIR_B"), help="Compare two runs.")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=1024)
    parser.add_argument("--max-pixels", type=int, default=None)
    parser.add_argument("--limit", type=int, default=None, help="At most this many rows per benchmark.")
    parser.add_argument("--imagenet-classes", type=Path, default=None)
    parser.add_argument("--imagenet-distractors", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0, help="Seed of the ImageNet distractors.")
    args = parser.parse_args(argv)
    try:
        if args.compare:
            compare(*args.compare, args.out)
            print(f"wrote {args.out / 'report.md'} and {args.out / 'compare.png'}", file=sys.stderr)
            return 0
        if args.predictions:
            records = read_predictions(args.predictions)
            settings = {"rescored_from": str(args.predictions)}
        else:
            if not args.model or not args.benchmark:
                raise UserError("give --model and at least one --benchmark (or --predictions, or --compare)")
            items = load_items(args.benchmark, args)
            outputs = generate(items, args.model, args)
            records = [{**item.record(), "output": output} for item, output in zip(items, outputs)]
            settings = {"model": args.model, "prompt": args.prompt, "max_new_tokens": args.max_new_tokens,
                        "greedy": True, "benchmarks": args.benchmark}
        scores = write_scores(records, args.out, settings)
    except UserError as error:
        print(f"evaluate.py: error: {error.format_message()}", file=sys.stderr)
        return 2
    for name, result in scores.items():
        print(f"{name}: {100 * headline(name, result):.1f} ({result['unmatched']} unmatched of {result['rows']} rows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
