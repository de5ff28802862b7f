"""benchmarks/learning_check.py: the quick pipeline runs end to end; the warm start's targets carry no labels."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import learning_check  # noqa: E402
import learning_model  # noqa: E402
import learning_scenes  # noqa: E402
import learning_stats  # noqa: E402


def test_gain_statistics_are_the_binomial_standard_error_of_the_difference():
    stats = learning_stats.gain_statistics(0.25, 0.45, 256)
    se = ((0.25 * 0.75 + 0.45 * 0.55) / 256) ** 0.5
    assert stats["se"] == pytest.approx(se)
    assert stats["z"] == pytest.approx(0.2 / se)
    assert learning_stats.gain_statistics(0.5, 0.5, 200)["z"] == 0


def test_paired_counts():
    before = [1, 0, 0, 1, 0]
    after = [1, 1, 1, 0, 0]
    assert learning_stats.paired_counts(before, after) == {"both": 1, "gained": 2, "lost": 1, "neither": 1}


def test_warm_start_targets_are_random_answers_not_labels(photo_folder, tmp_path):
    from datasets import load_dataset

    from ssl4rl_data.cli import main

    assert main(["build", "rotation", "--source", f"folder:{photo_folder}", "--out", str(tmp_path / "rot"), "-q"]) == 0
    dataset = load_dataset(str(tmp_path / "rot"), split="train")
    rows = learning_model.format_targets(dataset, 4 * len(dataset), seed=0)
    assert set(rows.column_names) == {"prompt", "images", "completion"}
    targets = [row["completion"][0]["content"][0]["text"] for row in rows]
    answers = {f"<answer>{a}</answer>" for a in dataset["answer"]}
    assert set(targets) <= answers and len(set(targets)) == len(answers)
    # each image comes back in several passes with fresh draws, so no image is tied to one target
    truth = [f"<answer>{a}</answer>" for a in dataset.select([i % len(dataset) for i in range(len(rows))])["answer"]]
    assert 0.1 < sum(t == a for t, a in zip(targets, truth)) / len(rows) < 0.45  # about 1/4, as chance


def test_scenes_differ_by_seed():
    a, b = (learning_scenes.scene(np.random.default_rng(seed)) for seed in (1, 2))
    assert a.size == b.size == (learning_scenes.IMAGE_SIDE,) * 2 and a.tobytes() != b.tobytes()


def test_quick_run_end_to_end(tmp_path):
    """The real pipeline, shrunk: images, builds, SFT warm start, evaluate.py, accelerate launch grpo.py, plot."""
    out = tmp_path / "check"
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks/learning_check.py"),
            "--quick",
            "--out",
            str(out),
            "--save-warm-start",
            str(tmp_path / "warm"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "held-out rotation accuracy" in result.stdout
    results = json.loads((out / "results.json").read_text())
    quick = learning_check.QUICK
    assert results["n"] == quick["heldout_images"] and results["quick"] is True
    assert len(results["grpo_rewards"]) == quick["grpo_steps"]
    assert 0 <= results["before"] <= 1 and 0 <= results["after"] <= 1
    assert results["gain"] == pytest.approx(results["after"] - results["before"])
    assert results["disjoint_images"] is True
    counts = results["paired"]
    assert sum(counts.values()) == results["n"]
    state = json.loads((out / "model-grpo/trainer_state.json").read_text())
    assert state["global_step"] == quick["grpo_steps"]
    for stage in ("before", "after"):
        lines = (out / "eval" / stage / "predictions.jsonl").read_text().splitlines()
        assert len(lines) == results["n"]
    image = Image.open(out / "reward_curve.png")
    assert image.size == (720, 420) and len(image.getcolors(1 << 16)) > 3  # something was drawn
    assert (tmp_path / "warm" / "model.safetensors").is_file() and (tmp_path / "warm" / "chat_template.json").is_file()
