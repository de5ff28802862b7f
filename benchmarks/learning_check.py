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
import os
import shutil
import sys
import time
from pathlib import Path

from learning_model import SMALL, build_model, warm_start
from learning_scenes import build_rotation, image_hashes, write_scenes
from learning_stages import OFFLINE_ENV, evaluate, grpo, log
from learning_stats import gain_statistics, paired_counts, reward_curve, row_rewards

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
