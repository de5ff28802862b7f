"""The learning check's runs of the real scripts: train/evaluate.py in this process, train/grpo.py under
`accelerate launch`, both offline."""

import json
import os
import subprocess
import time
from pathlib import Path

from learning_model import MIN_PIXELS, SMALL

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

MAX_COMPLETION = 12  # "<answer>270</answer>" is 9 tokens, plus the end-of-turn token


def log(message: str):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


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
