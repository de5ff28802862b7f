"""train/evaluate.py: golden scores for circular groups, re-scoring, comparison, and a tiny model end to end."""

import json
import sys
from pathlib import Path

import pytest
from PIL import Image

import benchmark_files as bf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "train"))
import evaluate  # noqa: E402
from eval_data import extract_choice, read_mmbench  # noqa: E402
from eval_imagenet import read_imagenet  # noqa: E402

OPTIONS = {"A": "a cat", "B": "a dog", "C": "a bird", "D": "a fish"}


def mmbench_record(group, copy, answer, output, category):
    return {"benchmark": "mmbench", "id": str(group + copy * 1_000_000), "group": str(group), "category": category,
            "question": "What is it?", "options": OPTIONS, "answer": answer, "task": None, "output": output,
            "extracted": None}


GOLDEN = [
    # question 1: both copies right, one plainly, one wrapped in tags
    mmbench_record(1, 0, "A", "A", "cat-1"),
    mmbench_record(1, 1, "B", "<think>it barks</think> <answer>B</answer>", "cat-1"),
    # question 2: one copy wrong, so the question is wrong
    mmbench_record(2, 0, "C", "C", "cat-1"),
    mmbench_record(2, 1, "D", "<answer>A</answer>", "cat-1"),
    # question 3: both right, one by option text
    mmbench_record(3, 0, "B", "It is a dog.", "cat-2"),
    mmbench_record(3, 1, "C", "The answer is (C)", "cat-2"),
    # question 4: unparseable, counted as wrong and unmatched
    mmbench_record(4, 0, "A", "I cannot tell.", "cat-2"),
    mmbench_record(4, 1, "B", "", "cat-2"),
    {"benchmark": "seedbench", "id": "s1", "group": "s1", "category": "1", "question": "q", "options": OPTIONS,
     "answer": "A", "task": None, "output": "<answer>A</answer>", "extracted": None},
    {"benchmark": "seedbench", "id": "s2", "group": "s2", "category": "1", "question": "q", "options": OPTIONS,
     "answer": "B", "task": None, "output": "B", "extracted": None},
    {"benchmark": "seedbench", "id": "s3", "group": "s3", "category": "2", "question": "q", "options": OPTIONS,
     "answer": "C", "task": None, "output": "D", "extracted": None},
    {"benchmark": "ssl", "id": "r", "group": "r", "category": "rotation", "question": "q", "options": {},
     "answer": "90", "task": "rotation", "output": "<answer>90</answer>", "extracted": None},
    {"benchmark": "ssl", "id": "j", "group": "j", "category": "jigsaw", "question": "q", "options": {},
     "answer": "2,4,1,3", "task": "jigsaw", "output": "<answer>2,4,3,1</answer>", "extracted": None},
]


def write_predictions(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_golden_predictions_give_exact_scores(tmp_path, capsys):
    predictions = write_predictions(tmp_path / "predictions.jsonl", GOLDEN)
    assert evaluate.main(["--predictions", str(predictions), "--out", str(tmp_path / "out")]) == 0
    scores = json.loads((tmp_path / "out" / "scores.json").read_text())["scores"]
    mmbench = scores["mmbench"]
    assert mmbench["circular_accuracy"] == 2 / 4
    assert mmbench["accuracy"] == 5 / 8
    assert (mmbench["questions"], mmbench["rows"], mmbench["unmatched"]) == (4, 8, 2)
    assert mmbench["categories"] == {"cat-1": {"accuracy": 0.5, "questions": 2},
                                     "cat-2": {"accuracy": 0.5, "questions": 2}}
    assert scores["seedbench"]["accuracy"] == 2 / 3 and "circular_accuracy" not in scores["seedbench"]
    assert scores["ssl"]["accuracy"] == 0.75
    assert scores["ssl"]["categories"]["jigsaw"]["accuracy"] == 0.5
    rescored = [json.loads(line) for line in (tmp_path / "out" / "predictions.jsonl").read_text().splitlines()]
    assert [r["extracted"] for r in rescored[:8]] == ["A", "B", "C", "A", "B", "C", None, None]
    assert "mmbench: 50.0 (2 unmatched of 8 rows)" in capsys.readouterr().out


def test_compare_writes_a_table_and_a_chart(tmp_path):
    base = write_predictions(tmp_path / "base.jsonl", GOLDEN)
    better = [dict(r) for r in GOLDEN]
    better[3]["output"] = "D"  # question 2 now fully right
    evaluate.main(["--predictions", str(base), "--out", str(tmp_path / "base")])
    evaluate.main(["--predictions", str(write_predictions(tmp_path / "b.jsonl", better)), "--out", str(tmp_path / "trained")])
    assert evaluate.main(["--compare", str(tmp_path / "base"), str(tmp_path / "trained"), "--out", str(tmp_path / "cmp")]) == 0
    report = (tmp_path / "cmp" / "report.md").read_text()
    assert "| mmbench | **overall** | 50.0 | 75.0 | +25.0 |" in report
    assert "| mmbench | cat-1 | 50.0 | 100.0 | +50.0 |" in report
    assert "| seedbench | **overall** | 66.7 | 66.7 | +0.0 |" in report
    chart = Image.open(tmp_path / "cmp" / "compare.png")
    assert chart.width > 500 and chart.height > 22 * 5


@pytest.mark.parametrize("output,expected", [
    ("<answer>C</answer>", "C"), ("C", "C"), ("(B) a dog", "B"), ("Answer: D", "D"), ("a fish, clearly", "D"),
    ("a cat or a dog", None), ("E", None), ("<answer>maybe</answer>", None), ("", None),
])
def test_extraction_rules(output, expected):
    assert extract_choice(output, OPTIONS) == expected


def test_mmbench_reader_resolves_image_references_and_skips_unanswered(tmp_path):
    items = read_mmbench(bf.write_mmbench_tsv(tmp_path / "MMBench_DEV_EN.tsv"))
    assert len(items) == 12 and len({i.group for i in items}) == 4
    assert all(len(i.images) == 1 and i.images[0]() for i in items)  # every copy's image loads
    assert set(items[0].options) == {"A", "B", "C", "D"} and items[0].answer == f"{bf.MARKER}-B"


def test_imagenet_distractors_are_deterministic_near_classes(tmp_path):
    classes = tmp_path / "LOC_synset_mapping.txt"
    classes.write_text("".join(f"n{index:08d} class {index}, extra name\n" for index in range(40)))
    root = tmp_path / "imagenet"
    for synset in ("n00000005", "n00000020"):
        (root / synset).mkdir(parents=True)
        for k in range(3):
            bf.photo(k).save(root / synset / f"{synset}_{k}.JPEG", format="JPEG")
    first = read_imagenet(root, classes, distractors=3, seed=0)
    again = read_imagenet(root, classes, distractors=3, seed=0)
    assert [i.options for i in first] == [i.options for i in again]
    for item in first:
        true = item.options[item.answer]
        assert len(item.options) == 4 and len(set(item.options.values())) == 4
        true_index = int(true.split()[1])
        assert all(abs(int(name.split()[1]) - true_index) <= 10 for name in item.options.values())
    assert len({item.answer for item in first}) > 1  # the true class is not always in the same place
    assert read_imagenet(root, classes, distractors=3, seed=1)[0].options != first[0].options or \
        read_imagenet(root, classes, distractors=3, seed=1)[1].options != first[1].options


def test_tiny_model_end_to_end(tmp_path, run_cli):
    from synthetic_qwen import build_synthetic_qwen

    model = build_synthetic_qwen(tmp_path / "model", "tiny")[0]
    mmbench = bf.write_mmbench_tsv(tmp_path / "MMBench_DEV_EN.tsv")
    seed = bf.write_seed_parquet(tmp_path / "seed")
    imagenet = bf.write_imagenet_parquet(tmp_path / "imagenet")
    assert run_cli("build", "rotation", "--limit", "3", "--out", tmp_path / "ssl", "-q")[0] == 0
    args = ["--model", str(model), "--out", str(tmp_path / "eval"), "--max-new-tokens", "4", "--batch-size", "4",
            "--benchmark", f"mmbench:{mmbench}", "--benchmark", f"seedbench:{seed}",
            "--benchmark", f"imagenet:{imagenet}", "--benchmark", f"ssl:{tmp_path / 'ssl'}"]
    assert evaluate.main(args) == 0
    records = [json.loads(line) for line in (tmp_path / "eval" / "predictions.jsonl").read_text().splitlines()]
    counts = {name: sum(r["benchmark"] == name for r in records) for name in ("mmbench", "seedbench", "imagenet", "ssl")}
    assert counts == {"mmbench": 12, "seedbench": 3, "imagenet": 5, "ssl": 3}
    assert all(isinstance(r["output"], str) for r in records)
    scores = json.loads((tmp_path / "eval" / "scores.json").read_text())
    assert scores["settings"]["prompt"] == "paper"
    assert scores["scores"]["mmbench"]["questions"] == 4
    assert all(0 <= s["accuracy"] <= 1 for s in scores["scores"].values())


def test_mistakes_get_one_line(tmp_path, capsys):
    assert evaluate.main(["--model", "m", "--benchmark", f"nope:{tmp_path}", "--out", str(tmp_path / "o")]) == 2
    assert "unknown kind 'nope'" in capsys.readouterr().err
    assert evaluate.main(["--out", str(tmp_path / "o")]) == 2
