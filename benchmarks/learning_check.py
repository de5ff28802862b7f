"""Learning, shown on a CPU: GRPO through train/grpo.py raises held-out pretext accuracy.

    python benchmarks/learning_check.py                  # the full check (about 2.5 CPU-minutes, 5 min busy)
    python benchmarks/learning_check.py --quick          # a reduced run of the same pipeline (under a minute)
    python benchmarks/learning_check.py --save-warm-start out/warm [--warm-start-only]   # keep the warm start

A random tiny model never earns a reward, so GRPO on it has zero advantage and zero gradient. This
check starts instead from a small random-weight Qwen2.5-VL (built offline) that a short SFT warm start
(TRL's SFTTrainer) has taught the answer *format* only: its SFT targets are `<answer>A</answer>` with A
drawn afresh for every sample from the task's answers, independently of the picture, so it learns
nothing about the pictures and answers at chance. Then:

  1. images: procedurally drawn outdoor scenes (a sky gradient above a ground gradient, sun, clouds,
     trees), 128 px, in two folders from disjoint seeds: training pictures and held-out pictures
     (pixel-identical pictures across them are refused);
  2. data: `ssl4rl-data build rotation` on each folder (the real builder; answers 0/90/180/270);
  3. before: `train/evaluate.py --benchmark ssl:HELDOUT` scores the warm start (greedy);
  4. GRPO: `accelerate launch train/grpo.py --config recipes/train/tiny_cpu.yaml` plus overrides,
     on the training rows, rewarded by the training reward (1 for the right angle, else 0);
  5. after: `train/evaluate.py` scores the GRPO model on the same held-out rows.
The builds and evaluations call those commands' `main` in this process (same code, no start-up of
their own); GRPO runs in its own processes under `accelerate launch` (ssl4rl_train.launch). With
--warm-start-only, only the training pictures and rows are made.

The model: text hidden 64, 2 layers, 4 heads; vision tower depth 2, hidden 64; a byte-level tokenizer
with BPE merges learned from the task's prompt text (about 130 tokens per prompt instead of 540 byte
tokens); pictures resized to 28x28, one image token (2x2 patches of 14 px) each, in training and
evaluation alike. Small enough that a GRPO step of 64 completions takes about a second of CPU.

Accuracy is the fraction of held-out rows with reward 1 (rotation's reward is 0 or 1, so this is also
the mean reward). The gain is judged against the binomial standard error of the difference of two
proportions, sqrt(p0 (1 - p0) / n + p1 (1 - p1) / n) (unpaired, so conservative for the same rows);
the check passes when the gain is at least 3 of them (--min-z) on at least 200 rows. It prints
before, after, SE and z and the rows gained and lost, writes results.json and reward_curve.png
(GRPO's mean reward per step, from trainer_state.json) to --out, and exits 1 when the check fails.
"""

import argparse
import json
import math
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "NO_ALBUMENTATIONS_UPDATE": "1",
    "TOKENIZERS_PARALLELISM": "false",
    # One thread: these matrices are small, and on a shared 2-core machine two OpenMP threads spin against the
    # other tenants (measured: one forward/backward 0.16 s with one thread, 0.4-4.6 s with two).
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}

# A "small" Qwen2.5-VL: bigger than synthetic_qwen's "tiny" (hidden 16), still seconds per step on a CPU.
SMALL = {
    "regular_vocab": 256,
    "max_pixels": 28 * 28,  # one image token (2x2 patches of 14 px) per picture
    "text": {
        "hidden_size": 64,
        "intermediate_size": 256,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "rope_scaling": {"type": "mrope", "mrope_section": [2, 3, 3]},
        "max_position_embeddings": 4096,
    },
    "vision": {
        "depth": 2,
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_heads": 4,
        "out_hidden_size": 64,
        "fullatt_block_indexes": [1],
        "window_size": 112,
    },
}

FULL = {
    "train_images": 512,
    "heldout_images": 256,
    "sft_steps": 100,
    "grpo_steps": 150,
    "prompts_per_step": 8,
    "num_generations": 8,
    "beta": 0.04,
}
QUICK = {
    "train_images": 32,
    "heldout_images": 16,
    "sft_steps": 4,
    "grpo_steps": 2,
    "prompts_per_step": 2,
    "num_generations": 4,
    "beta": 0.04,
}
IMAGE_SIDE = 128
MIN_PIXELS = 28 * 28
MAX_COMPLETION = 12  # "<answer>270</answer>" is 9 tokens, plus the end-of-turn token


def log(message: str):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# ---------------------------------------------------------------- images and data


def scene(rng: np.random.Generator, side: int = IMAGE_SIDE):
    """An outdoor scene drawn at random: a sky gradient above a ground gradient, a sun, clouds, trees."""
    from PIL import Image, ImageDraw, ImageFilter

    horizon = int(side * rng.uniform(0.35, 0.65))
    sky_top = rng.uniform([40, 90, 170], [120, 170, 255])
    sky_low = np.minimum(sky_top + rng.uniform(40, 110), 255)
    ground_top = rng.uniform([40, 70, 20], [140, 150, 80])
    ground_low = ground_top * rng.uniform(0.3, 0.6)
    pixels = np.zeros((side, side, 3))
    t = np.linspace(0, 1, horizon)[:, None, None]
    pixels[:horizon] = sky_top * (1 - t) + sky_low * t
    t = np.linspace(0, 1, side - horizon)[:, None, None]
    pixels[horizon:] = ground_top * (1 - t) + ground_low * t
    image = Image.fromarray(np.clip(pixels + rng.normal(0, 6, pixels.shape), 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)

    def colour(low, high):
        return tuple(int(v) for v in rng.uniform(low, high))

    if rng.random() < 0.7:  # sun or moon, in the sky
        r = rng.uniform(5, 14)
        x, y = rng.uniform(r, side - r), rng.uniform(r, max(r + 1, horizon - r))
        draw.ellipse([x - r, y - r, x + r, y + r], fill=colour([220, 200, 120], [255, 255, 220]))
    for _ in range(rng.integers(0, 5)):  # trees and buildings standing on the ground
        w, h = rng.uniform(4, 16), rng.uniform(8, 40)
        x, base = rng.uniform(0, side - w), rng.uniform(horizon, side)
        draw.rectangle([x, base - h, x + w, base], fill=colour([0, 0, 0], [110, 110, 110]))
    for _ in range(rng.integers(0, 4)):  # clouds
        w, x, y = rng.uniform(10, 30), rng.uniform(0, side), rng.uniform(0, horizon)
        draw.ellipse([x - w, y - w / 3, x + w, y + w / 3], fill=(int(rng.uniform(215, 255)),) * 3)
    return image.filter(ImageFilter.GaussianBlur(0.6))


def write_scenes(folder: Path, count: int, first_seed: int):
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        scene(np.random.default_rng(first_seed + index)).save(folder / f"scene{first_seed + index:06d}.png")


def build_rotation(images: Path, out: Path):
    """`ssl4rl-data build rotation` on a folder of pictures, in this process."""
    from ssl4rl_data.cli import main as ssl4rl_data

    argv = ["build", "rotation", "--source", f"folder:{images}", "--out", str(out), "--overwrite", "-q"]
    if ssl4rl_data(argv) != 0:
        raise SystemExit(f"failed: ssl4rl-data {' '.join(argv)}")


# ---------------------------------------------------------------- model and warm start


def prompt_tokenizer(texts: list[str]):
    """synthetic_qwen's byte-level tokenizer plus BPE merges learned from `texts`, with the Qwen special tokens.

    Byte tokens alone make the rotation question about 540 tokens long; with merges of its words it is
    about 130, about what Qwen's own tokenizer makes of it, and every step is several times cheaper.
    """
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import Qwen2Tokenizer
    from transformers.convert_slow_tokenizer import bytes_to_unicode
    from trl.chat_template_utils import qwen2_5_vl_chat_template

    from ssl4rl_train import synthetic_qwen

    symbols = list(bytes_to_unicode().values())
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.train_from_iterator(
        texts, trainers.BpeTrainer(vocab_size=4096, initial_alphabet=symbols, min_frequency=1, show_progress=False)
    )
    learned = json.loads(bpe.to_str())["model"]
    vocab = {symbol: index for index, symbol in enumerate(symbols)}  # the 256 byte symbols keep their ids
    for token in sorted(learned["vocab"], key=learned["vocab"].get):
        vocab.setdefault(token, len(vocab))
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in learned["merges"]]
    tokenizer = Qwen2Tokenizer(
        vocab=vocab, merges=merges, unk_token=None, bos_token=None, eos_token=None, pad_token=None
    )
    tokenizer.add_special_tokens({"additional_special_tokens": synthetic_qwen.SPECIAL_TOKENS})
    tokenizer.eos_token, tokenizer.pad_token = "<|im_end|>", "<|endoftext|>"
    tokenizer.chat_template = qwen2_5_vl_chat_template
    return tokenizer


def build_model(folder: Path, train_dir: Path, seed: int) -> Path:
    """A random-weight "small" Qwen2.5-VL saved like synthetic_qwen's, with a tokenizer fitted to the prompts."""
    import pyarrow.parquet as pq
    import torch
    from transformers import Qwen2_5_VLForConditionalGeneration
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil
    from trl.chat_template_utils import qwen2_5_vl_chat_template

    from ssl4rl_train import synthetic_qwen

    texts = {"system\nYou are a helpful assistant.", "user\n", "assistant\n"}
    for file in sorted(train_dir.glob("data/*.parquet")):
        for row in pq.read_table(file, columns=["prompt", "answer"]).to_pylist():
            texts.update(part["text"] for part in row["prompt"][0]["content"] if part["type"] == "text")
            texts.add(f"<answer>{row['answer']}</answer>")
    tokenizer = prompt_tokenizer(sorted(texts))
    synthetic_qwen.SIZES.setdefault("small", SMALL)  # in this process only; the module's file is not changed
    config = synthetic_qwen.qwen_config("small", tokenizer)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(folder)
    Qwen2VLImageProcessorPil(min_pixels=MIN_PIXELS, max_pixels=SMALL["max_pixels"]).save_pretrained(folder)
    (folder / "processor_config.json").write_text(json.dumps({"processor_class": "Qwen2_5_VLProcessor"}))
    (folder / "chat_template.json").write_text(json.dumps({"chat_template": qwen2_5_vl_chat_template}))
    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(config)
    model.generation_config.eos_token_id = config.text_config.eos_token_id
    model.generation_config.pad_token_id = config.text_config.pad_token_id
    model.save_pretrained(folder)
    return folder


def format_targets(dataset, samples: int, seed: int, true_answers: bool = False):
    """`samples` SFT rows: built prompts and images, completed by `<answer>A</answer>`.

    A is drawn afresh for every sample, uniformly from the answers seen in the data and independently of
    the row; rows repeat in reshuffled passes, each time with a new draw. So the warm start learns the
    format and the answer set, and nothing about the images (it cannot even memorise a fixed random
    label per image). `true_answers` uses the real answers instead (a supervised reference, not used by
    the check).
    """
    choices = sorted(set(dataset["answer"]))
    rng = random.Random(seed)
    order = []
    while len(order) < samples:
        batch = list(range(len(dataset)))
        rng.shuffle(batch)
        order += batch
    dataset = dataset.select(order[:samples])
    picks = list(dataset["answer"]) if true_answers else [rng.choice(choices) for _ in range(samples)]
    dataset = dataset.add_column("target", picks)

    def completion(row):
        return {
            "completion": [
                {"role": "assistant", "content": [{"type": "text", "text": f"<answer>{row['target']}</answer>"}]}
            ]
        }

    return dataset.map(completion, remove_columns=[c for c in dataset.column_names if c not in ("prompt", "images")])


def warm_start(
    model_dir: Path,
    train_dir: Path,
    out: Path,
    steps: int,
    seed: int,
    true_answers: bool = False,
    learning_rate: float = 3e-3,
):
    """A short SFT with TRL's SFTTrainer on format-only targets; the result is saved with the processor."""
    import torch
    from datasets import load_dataset
    from transformers import AutoModelForImageTextToText
    from trl import SFTConfig, SFTTrainer

    from ssl4rl_train.vlm import load_processor

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    torch.manual_seed(seed)
    processor = load_processor(str(model_dir))
    model = AutoModelForImageTextToText.from_pretrained(model_dir, dtype=torch.float32)
    batch_size = 16
    dataset = format_targets(load_dataset(str(train_dir), split="train"), steps * batch_size, seed, true_answers)
    config = SFTConfig(
        output_dir=str(out.parent / "sft-run"),
        use_cpu=True,
        bf16=False,
        seed=seed,
        max_steps=steps,
        per_device_train_batch_size=batch_size,
        gradient_accumulation_steps=1,
        learning_rate=learning_rate,
        lr_scheduler_type="constant",
        warmup_steps=0,
        logging_steps=5,
        report_to="none",
        save_strategy="no",
        max_length=None,
        activation_checkpointing=False,
        dataloader_num_workers=0,
    )
    trainer = SFTTrainer(model=model, args=config, train_dataset=dataset, processing_class=processor)
    trainer.train()
    model.save_pretrained(out)
    for name in os.listdir(model_dir):  # tokenizer, image processor, processor and chat template files
        if not name.startswith("model") and name not in ("config.json", "generation_config.json"):
            shutil.copy(model_dir / name, out / name)
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    return losses


# ---------------------------------------------------------------- the real scripts


def run(command: list[str], **kwargs):
    env = {**os.environ, **OFFLINE_ENV}
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        raise SystemExit(
            f"failed ({result.returncode}): {' '.join(command)}\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
        )
    return result


def evaluate(model: Path, heldout: Path, out: Path) -> dict:
    """train/evaluate.py on the held-out rows, in this process: greedy, images sized as in training (its default
    sizes follow VLMEvalKit's, at least 1280 image tokens, which this model never saw)."""
    from ssl4rl_train.evaluate import main as evaluate_main

    argv = [
        "--model",
        str(model),
        "--benchmark",
        f"ssl:{heldout}",
        "--out",
        str(out),
        "--max-new-tokens",
        str(MAX_COMPLETION),
        "--batch-size",
        "32",
        "--min-pixels",
        str(MIN_PIXELS),
        "--max-pixels",
        str(SMALL["max_pixels"]),
    ]
    if evaluate_main(argv) != 0:
        raise SystemExit(f"failed: train/evaluate.py {' '.join(argv)}")
    (scores,) = json.loads((out / "scores.json").read_text())["scores"].values()
    return {"accuracy": scores["accuracy"], "rows": scores["rows"], "unmatched": scores["unmatched"]}


def grpo(model: Path, train: Path, out: Path, settings: dict, seed: int) -> dict:
    completions = settings["prompts_per_step"] * settings["num_generations"]
    from ssl4rl_train.launch import GRPO_SCRIPT, grpo_command

    command = grpo_command(
        "--config",
        ROOT / "recipes/train/tiny_cpu.yaml",
        "--model_name_or_path",
        model,
        "--dataset_name",
        train,
        "--output_dir",
        out,
        "--max_steps",
        settings["grpo_steps"],
        "--num_generations",
        settings["num_generations"],
        "--per_device_train_batch_size",
        completions,
        "--max_completion_length",
        MAX_COMPLETION,
        "--learning_rate",
        settings["learning_rate"],
        "--beta",
        settings["beta"],
        "--seed",
        seed,
        *settings.get("grpo_extra", []),
    )
    log("GRPO: " + " ".join(command[command.index(str(GRPO_SCRIPT)) :]))
    run(command)
    return json.loads((out / "trainer_state.json").read_text())


# ---------------------------------------------------------------- statistics and the plot


def gain_statistics(before: float, after: float, n: int) -> dict:
    se = math.sqrt(before * (1 - before) / n + after * (1 - after) / n)
    return {
        "before": before,
        "after": after,
        "gain": after - before,
        "n": n,
        "se": se,
        "z": (after - before) / se if se > 0 else (math.inf if after > before else 0.0),
    }


def paired_counts(before: list[int], after: list[int]) -> dict:
    """Row by row: right both times, gained (wrong, then right), lost (right, then wrong), neither."""
    pairs = list(zip(before, after))
    return {
        "both": sum(a and b for a, b in pairs),
        "gained": sum(not a and b for a, b in pairs),
        "lost": sum(a and not b for a, b in pairs),
        "neither": sum(not a and not b for a, b in pairs),
    }


def row_rewards(predictions: Path) -> list[int]:
    from ssl4rl_data.rewards import score

    rows = [json.loads(line) for line in predictions.read_text().splitlines() if line]
    return [
        int(score(row["output"], row["answer"], row["task"]) == 1.0) for row in sorted(rows, key=lambda r: r["id"])
    ]


def image_hashes(folder: Path) -> set[str]:
    import hashlib

    from PIL import Image

    return {hashlib.sha256(Image.open(file).convert("RGB").tobytes()).hexdigest() for file in sorted(folder.iterdir())}


def reward_curve(log_history: list[dict], chance: float, before: float, after: float, path: Path):
    """GRPO's mean training reward per step (and a moving average), drawn with Pillow."""
    from PIL import Image, ImageDraw

    points = [(entry["step"], entry["reward"]) for entry in log_history if "reward" in entry and "step" in entry]
    width, height, left, right, top, bottom = 720, 420, 60, 20, 40, 50
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    draw.text(
        (left, 10),
        f"GRPO mean reward per step (rotation, training rows); held-out accuracy "
        f"{100 * before:.1f}% -> {100 * after:.1f}%",
        fill="black",
    )
    plot_w, plot_h = width - left - right, height - top - bottom
    last = max([s for s, _ in points] + [1])

    def xy(step, value):
        return left + plot_w * (step - 1) / max(last - 1, 1), top + plot_h * (1 - value)

    draw.rectangle([left, top, left + plot_w, top + plot_h], outline="black")
    for value in (0, 0.25, 0.5, 0.75, 1.0):
        y = xy(1, value)[1]
        draw.line([(left, y), (left + plot_w, y)], fill=(225, 225, 225))
        draw.text((8, y - 6), f"{value:.2f}", fill="black")
    for step in sorted({1, last, *range(0, last + 1, max(1, last // 5))} - {0}):
        x = xy(step, 0)[0]
        draw.text((x - 8, top + plot_h + 6), str(step), fill="black")
    draw.text((left + plot_w // 2 - 20, height - 20), "step", fill="black")
    chance_y = xy(1, chance)[1]
    draw.line([(left, chance_y), (left + plot_w, chance_y)], fill=(200, 60, 60))
    draw.text((left + plot_w - 90, chance_y - 14), f"chance {chance:.2f}", fill=(200, 60, 60))
    if points:
        draw.line([xy(s, v) for s, v in points], fill=(150, 170, 220), width=1)
        window = max(1, len(points) // 15)
        smooth = []
        for i, (step, _) in enumerate(points):
            recent = [v for _, v in points[max(0, i - window + 1) : i + 1]]
            smooth.append((step, sum(recent) / len(recent)))
        draw.line([xy(s, v) for s, v in smooth], fill=(20, 60, 160), width=3)
        draw.text((left + 8, top + 6), f"light: per step; dark: moving mean of {window}", fill=(20, 60, 160))
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


# ---------------------------------------------------------------- main


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--quick", action="store_true", help="A reduced run of the same pipeline (no learning expected)."
    )
    parser.add_argument("--out", type=Path, default=Path("out/learning_check"), help="Work and result folder.")
    parser.add_argument("--save-warm-start", type=Path, default=None, help="Also copy the warm-started model here.")
    parser.add_argument(
        "--warm-start-only",
        action="store_true",
        help="Stop after the warm start (with --save-warm-start: a model whose GRPO rewards vary).",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--grpo-steps", type=int, default=None)
    parser.add_argument("--sft-steps", type=int, default=None)
    parser.add_argument("--learning-rate", type=float, default=1e-3, help="GRPO learning rate.")
    parser.add_argument("--beta", type=float, default=None, help="GRPO KL coefficient (default 0.04).")
    parser.add_argument("--min-z", type=float, default=3.0, help="Exit non-zero unless the gain reaches this z.")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="Torch threads per process (1: best on a shared machine; the matrices are small).",
    )
    args = parser.parse_args(argv)
    if args.warm_start_only and not args.save_warm_start:
        parser.error("--warm-start-only needs --save-warm-start DIR")
    OFFLINE_ENV.update(OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    settings = dict(QUICK if args.quick else FULL, learning_rate=args.learning_rate)
    if args.grpo_steps is not None:
        settings["grpo_steps"] = args.grpo_steps
    if args.sft_steps is not None:
        settings["sft_steps"] = args.sft_steps
    if args.beta is not None:
        settings["beta"] = args.beta
    os.environ.update(OFFLINE_ENV)
    out = args.out.resolve()
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    start, load_start = time.perf_counter(), os.getloadavg()
    timings = {}

    def stage(name, began):
        timings[name] = round(time.perf_counter() - began, 1)
        log(f"{name}: {timings[name]} s")
        return time.perf_counter()

    t = time.perf_counter()
    first_seed = 1_000_000 * (args.seed + 1)
    write_scenes(out / "images/train", settings["train_images"], first_seed=first_seed)
    build_rotation(out / "images/train", out / "data/train")
    t = stage("training images and dataset", t)

    model = build_model(out / "model-random", out / "data/train", args.seed)
    sft_losses = warm_start(model, out / "data/train", out / "model-warm", settings["sft_steps"], args.seed)
    t = stage("warm start (SFT, format only)", t)
    if args.save_warm_start:
        shutil.copytree(out / "model-warm", args.save_warm_start, dirs_exist_ok=True)
        log(f"warm start saved to {args.save_warm_start}")
    if args.warm_start_only:
        return 0

    # Disjoint seeds: held-out pictures are never training pictures.
    write_scenes(out / "images/heldout", settings["heldout_images"], first_seed=first_seed + 500_000)
    build_rotation(out / "images/heldout", out / "data/heldout")
    disjoint = not image_hashes(out / "images/train") & image_hashes(out / "images/heldout")
    if not disjoint:
        raise SystemExit("learning_check: a held-out picture is also a training picture")
    t = stage("held-out images and dataset", t)

    before = evaluate(out / "model-warm", out / "data/heldout", out / "eval/before")
    t = stage("evaluate before", t)
    state = grpo(out / "model-warm", out / "data/train", out / "model-grpo", settings, args.seed)
    t = stage("GRPO", t)
    after = evaluate(out / "model-grpo", out / "data/heldout", out / "eval/after")
    t = stage("evaluate after", t)

    n = before["rows"]
    stats = gain_statistics(before["accuracy"], after["accuracy"], n)
    predictions = [out / "eval" / stage / "predictions.jsonl" for stage in ("before", "after")]
    paired = paired_counts(*map(row_rewards, predictions))
    answers = sorted({json.loads(line)["answer"] for line in predictions[0].read_text().splitlines()})
    reward_curve(state["log_history"], 1 / len(answers), stats["before"], stats["after"], out / "reward_curve.png")
    wall = round(time.perf_counter() - start, 1)
    import resource

    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    cpu = round(sum(u.ru_utime + u.ru_stime for u in usage), 1)
    passed = stats["z"] >= args.min_z and n >= (200 if not args.quick else 1)
    results = {
        "task": "rotation",
        "quick": args.quick,
        "settings": settings,
        "model": SMALL,
        **stats,
        "paired": paired,
        "disjoint_images": disjoint,
        "unmatched_before": before["unmatched"],
        "unmatched_after": after["unmatched"],
        "grpo_rewards": [entry["reward"] for entry in state["log_history"] if "reward" in entry],
        "sft_losses": sft_losses,
        "timings_s": timings,
        "wall_s": wall,
        "cpu_s": cpu,
        "load_average_start": load_start,
        "load_average_end": os.getloadavg(),
        "threads": args.threads,
        "passed": passed,
    }
    (out / "results.json").write_text(json.dumps(results, indent=2))
    print(
        f"held-out rotation accuracy (fraction of {n} rows with reward 1, greedy): "
        f"before {100 * stats['before']:.1f}%, after {100 * stats['after']:.1f}%"
    )
    print(
        f"gain {100 * stats['gain']:+.1f} points, SE {100 * stats['se']:.1f} points, z = {stats['z']:.2f} "
        f"({'pass' if passed else 'FAIL'}: needs z >= {args.min_z}{' and n >= 200' if not args.quick else ''})"
    )
    print(
        f"rows gained {paired['gained']}, lost {paired['lost']} (right both times {paired['both']}, neither "
        f"{paired['neither']}); unmatched answers: before {before['unmatched']}, after {after['unmatched']}"
    )
    print(
        f"wall time {wall:.0f} s, CPU time {cpu:.0f} s (all processes); load average "
        f"{load_start[0]:.1f} at the start, {os.getloadavg()[0]:.1f} at the end"
    )
    print(f"wrote {out / 'results.json'} and {out / 'reward_curve.png'}")
    return 0 if passed or args.quick else 1


if __name__ == "__main__":
    sys.exit(main())
