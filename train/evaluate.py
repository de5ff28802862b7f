"""Evaluate a model on MMBench, SEED-Bench, ImageNet and SSL4RL datasets, or re-score, or compare runs.

    python train/evaluate.py --model PATH --benchmark mmbench:MMBench_DEV_EN.tsv \\
        --benchmark seedbench:SEEDBench_IMG.tsv --benchmark ssl:out/rotation --out eval/base
    python train/evaluate.py --predictions eval/base/predictions.jsonl --out eval/base-rescored
    python train/evaluate.py --compare eval/base eval/trained --out eval/report

Benchmarks (KIND:PATH, any format the data sources read; each is scored under its own name: the
kind, or ssl:FOLDER for SSL datasets, with #2, #3 for repeats):
  mmbench    circular accuracy (a question counts only if every option-rotated copy is right),
             row accuracy, and circular accuracy per category; a split without answers (test)
             becomes mmbench_submission.xlsx/.tsv, the file the official server takes
  seedbench  accuracy on image questions (video questions are left out), per question type
  imagenet   multiple choice: the true class and --imagenet-distractors classes with distinct
             names, drawn deterministically from the 10 nearest in sorted-synset order; class names
             from the dataset's label names or --imagenet-classes (LOC_synset_mapping.txt or JSON)
  ssl        a dataset built by ssl4rl-data, scored by the training reward functions

Defaults follow VLMEvalKit's Qwen2.5-VL setup, and every setting is recorded in scores.json:
the prompt `Hint: …` / `Question: …` / `Options:` / `A. …` lines / instruction, where --prompt plain
is VLMEvalKit's instruction and --prompt paper (default) asks for <think>…</think> <answer>LETTER</answer>;
images resized into [--min-pixels, --max-pixels] (1280·28·28, 16384·28·28); greedy decoding with
repetition_penalty 1.0 whatever the checkpoint's generation config says; at most --max-new-tokens
(2048), stopping at </answer> or EOS. Answers are extracted by rules (train/extraction.py), no judge
model; unmatched answers count as wrong and are counted. ssl: rows are pretext tasks the model was
trained on at its processor's own pixel bounds: with the default bounds a note names those
(recorded as checkpoint_pixels), since VLMEvalKit's minimum enlarges a 448 px view five-fold in area.

Files written to --out:
  predictions.jsonl  one JSON object per benchmark row: benchmark (kind), name, id, group (MMBench
                     question id), category, hint, question, options ({letter: text}), answer
                     (gold; "" for MMBench test rows), task (ssl rows), prompt (the exact text given
                     after the images), output (the raw generation), extracted (the letter or
                     answer found, or null). `--predictions FILE` re-scores such a file: extraction
                     and scoring are redone from `output`, so it needs no model; the run's settings
                     are kept from the scores.json beside it.
  scores.json        settings (model, prompt, pixels, decoding, backend, device, timing) and, per
                     benchmark name, the accuracies, counts (rows, questions, unmatched) and the
                     per-category breakdown.
  With --compare RUN RUN...: report.md (settings and scores, one column per run, named by folder) and
  compare.png (last minus first, per category); runs with different prompts or pixel settings are
  refused unless --allow-different-settings.
"""

import argparse
import json
import os
import sys
from collections import Counter
from pathlib import Path

from ssl4rl_data.errors import UserError
from ssl4rl_train.eval_compare import compare
from ssl4rl_train.eval_data import multiple_choice_prompt
from ssl4rl_train.evals import benchmarks
from ssl4rl_train.generation import QWEN_MAX_PIXELS, QWEN_MIN_PIXELS, Settings, generate
from ssl4rl_train.predictions import read_predictions
from ssl4rl_train.scoring import headline, score_predictions
from ssl4rl_train.submission import write_submission


def check_specs(specs: list[str]):
    kinds = benchmarks()
    for spec in specs:
        kind, _, path = spec.partition(":")
        if kind not in kinds:
            raise ValueError(f"--benchmark {spec}: unknown kind {kind!r}; use {', '.join(kinds)}")
        if not path or not Path(path).exists():
            raise ValueError(f"--benchmark {spec}: expected KIND:PATH with an existing PATH")


def load_items(specs: list[str], args) -> list:
    """The items of every --benchmark, each named, with its prompt; mistakes raise ValueError."""
    check_specs(specs)
    items, seen = [], Counter()
    for spec in specs:
        kind, _, path = spec.partition(":")
        found = benchmarks()[kind].read(Path(path), args)
        name = found[0].name or kind if found else kind
        seen[name] += 1
        name += f"#{seen[name]}" if seen[name] > 1 else ""
        if not found:
            raise ValueError(f"--benchmark {spec}: no {kind} rows found in {path} (is it a {kind} file?)")
        for item in found[: args.limit] if args.limit else found:
            item.name = name
            item.prompt = multiple_choice_prompt(item, args.prompt)
            items.append(item)
    return items


def check_model(model: str):
    """A local folder must exist and hold a config; a Hub id is tried only when it looks like one and
    no local folder of that name (or its parent) exists, so a mistyped path never becomes a download."""
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ValueError(f"--model {model}: the folder has no config.json; is it a saved model?")
        return
    parts = model.split("/")
    hub_like = len(parts) == 2 and all(parts) and not model.startswith((".", "~")) and not Path(parts[0]).exists()
    if not hub_like:
        raise ValueError(f"--model {model}: no such folder")
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        from huggingface_hub import try_to_load_from_cache

        if not isinstance(try_to_load_from_cache(model, "config.json"), str):
            raise ValueError(f"--model {model}: no such folder, and not in the Hub cache (HF_HUB_OFFLINE=1)")


def write_outputs(records: list[dict], out: Path, settings: dict) -> dict:
    scores = score_predictions(records)
    out.mkdir(parents=True, exist_ok=True)
    submission = write_submission(records, out)
    with open(out / "predictions.jsonl", "w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    result = {"settings": settings, "scores": scores}
    if submission:
        result["submission"] = {"mmbench": submission}
    (out / "scores.json").write_text(json.dumps(result, indent=2, ensure_ascii=False))
    return result


def checkpoint_pixels(model: str) -> tuple[int, int] | None:
    """The [min, max] pixel bounds of the checkpoint's own image processor (the ones its training used),
    or None where they cannot be read."""
    from ssl4rl_train.vlm import load_processor

    try:
        image_processor = load_processor(model).image_processor
    except (OSError, ValueError, ImportError):
        return None
    size = image_processor.size or {}

    def bound(edge: str, pixels: str):  # transformers 5.23 keeps them in `size`, earlier versions as attributes
        value = size.get(edge) if isinstance(size, dict) else getattr(size, edge, None)
        return value or getattr(image_processor, pixels, None)

    bounds = (bound("shortest_edge", "min_pixels"), bound("longest_edge", "max_pixels"))
    return bounds if all(isinstance(b, int) and b > 0 for b in bounds) else None


def rescored_settings(predictions: Path) -> dict:
    """The settings of the run that wrote `predictions` (its scores.json beside it), marked re-scored."""
    try:
        settings = json.loads((predictions.parent / "scores.json").read_text(encoding="utf-8"))["settings"]
    except (OSError, ValueError, KeyError, TypeError):
        settings = {}
    return {**(settings if isinstance(settings, dict) else {}), "rescored_from": str(predictions)}


def command_line() -> argparse.ArgumentParser:
    """The command's options (tests check the README's commands against them)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="Model folder or Hub id (Qwen2.5-VL / Qwen2-VL).")
    parser.add_argument("--benchmark", action="append", default=[], help="KIND:PATH, repeatable.")
    parser.add_argument("--out", type=Path, required=True, help="Output folder.")
    parser.add_argument(
        "--prompt",
        choices=["paper", "plain"],
        default="paper",
        help="Final instruction: the paper's think/answer request, or VLMEvalKit's (plain).",
    )
    parser.add_argument("--predictions", type=Path, help="Re-score this predictions.jsonl instead of generating.")
    parser.add_argument("--compare", nargs="+", type=Path, metavar="RUN", help="Compare runs (two or more folders).")
    parser.add_argument(
        "--allow-different-settings",
        action="store_true",
        help="Compare runs even if their prompts or pixel settings differ.",
    )
    parser.add_argument("--backend", choices=["transformers", "vllm"], default="transformers")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=2048)
    parser.add_argument(
        "--min-pixels",
        type=int,
        default=None,
        help="Default 1280*28*28 (VLMEvalKit), or --max-pixels when that is smaller.",
    )
    parser.add_argument(
        "--max-pixels",
        type=int,
        default=None,
        help="Default 16384*28*28 (VLMEvalKit). ssl: benchmarks run at the checkpoint processor's own bounds are "
        "scored as trained: a note says when the defaults differ from them.",
    )
    parser.add_argument("--limit", type=int, default=None, help="At most this many rows per benchmark.")
    parser.add_argument("--imagenet-classes", type=Path, default=None)
    parser.add_argument("--imagenet-distractors", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0, help="Seed of the ImageNet distractors.")
    return parser


def main(argv=None) -> int:
    args = command_line().parse_args(argv)
    try:
        if args.compare:
            if len(args.compare) < 2:
                raise ValueError("--compare needs two or more run folders")
            report = compare(args.compare, args.out, args.allow_different_settings)
            print(f"wrote {report} and {args.out / 'compare.png'}", file=sys.stderr)
            return 0
        if args.predictions:
            records = read_predictions(args.predictions)
            settings = rescored_settings(args.predictions)
        else:
            if not args.model or not args.benchmark:
                raise ValueError("give --model and at least one --benchmark (or --predictions, or --compare)")
            explicit_pixels = args.min_pixels is not None or args.max_pixels is not None
            if args.max_pixels is None:
                args.max_pixels = QWEN_MAX_PIXELS
            if args.min_pixels is None:
                args.min_pixels = min(QWEN_MIN_PIXELS, args.max_pixels)
            if not 0 < args.min_pixels <= args.max_pixels:
                raise ValueError("--min-pixels must be positive and at most --max-pixels")
            check_specs(args.benchmark)
            if args.backend == "vllm":
                import importlib.util

                if importlib.util.find_spec("vllm") is None:
                    raise ValueError("--backend vllm: vLLM is not installed (pip install vllm on a GPU machine)")
            check_model(args.model)
            items = load_items(args.benchmark, args)
            run = Settings(args.min_pixels, args.max_pixels, args.max_new_tokens, args.batch_size, args.backend)
            trained = checkpoint_pixels(args.model) if any(b.startswith("ssl:") for b in args.benchmark) else None
            if trained and not explicit_pixels and trained != (run.min_pixels, run.max_pixels):
                print(
                    f"evaluate.py: note: images are resized into [{run.min_pixels}, {run.max_pixels}] pixels "
                    f"(VLMEvalKit's), but {args.model}'s processor, which training used, takes [{trained[0]}, "
                    f"{trained[1]}]: for ssl: rows as trained, pass --min-pixels {trained[0]} --max-pixels {trained[1]}",
                    file=sys.stderr,
                )
            outputs, facts = generate(items, args.model, run)
            records = [{**item.record(), "output": output} for item, output in zip(items, outputs, strict=True)]
            settings = {
                "model": args.model,
                "prompt": args.prompt,
                **run.record(),
                "checkpoint_pixels": list(trained) if trained else None,
                **facts,
                "benchmarks": args.benchmark,
                "limit": args.limit,
                "imagenet_distractors": args.imagenet_distractors,
                "seed": args.seed,
                "extraction": "rules (train/extraction.py)",
            }
        result = write_outputs(records, args.out, settings)
    except (UserError, ValueError, OSError) as error:
        message = (str(error).strip() or type(error).__name__).splitlines()[0]
        print(f"evaluate.py: error: {message}", file=sys.stderr)
        return 2
    for name, scores in result["scores"].items():
        print(f"{name}: {100 * headline(scores):.1f} ({scores['unmatched']} unmatched of {scores['rows']} rows)")
    if "submission" in result:
        print(
            f"mmbench test split: {result['submission']['mmbench']['rows']} rows written to "
            f"{args.out / result['submission']['mmbench']['file']}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
