"""train/evaluate.py: golden scores for circular groups, re-scoring, comparison, and a tiny model end to end."""

import json
from pathlib import Path

import benchmark_files as bf
import pytest
from PIL import Image

from ssl4rl_train import evaluate
from ssl4rl_train.eval_data import extract_choice, read_mmbench
from ssl4rl_train.eval_imagenet import read_imagenet

ROOT = Path(__file__).resolve().parents[1]

OPTIONS = {"A": "a cat", "B": "a dog", "C": "a bird", "D": "a fish"}


def mmbench_record(group, copy, answer, output, category):
    return {
        "benchmark": "mmbench",
        "id": str(group + copy * 1_000_000),
        "group": str(group),
        "category": category,
        "question": "What is it?",
        "options": OPTIONS,
        "answer": answer,
        "task": None,
        "output": output,
        "extracted": None,
    }


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
    {
        "benchmark": "seedbench",
        "id": "s1",
        "group": "s1",
        "category": "1",
        "question": "q",
        "options": OPTIONS,
        "answer": "A",
        "task": None,
        "output": "<answer>A</answer>",
        "extracted": None,
    },
    {
        "benchmark": "seedbench",
        "id": "s2",
        "group": "s2",
        "category": "1",
        "question": "q",
        "options": OPTIONS,
        "answer": "B",
        "task": None,
        "output": "B",
        "extracted": None,
    },
    {
        "benchmark": "seedbench",
        "id": "s3",
        "group": "s3",
        "category": "2",
        "question": "q",
        "options": OPTIONS,
        "answer": "C",
        "task": None,
        "output": "D",
        "extracted": None,
    },
    {
        "benchmark": "ssl",
        "id": "r",
        "group": "r",
        "category": "rotation",
        "question": "q",
        "options": {},
        "answer": "90",
        "task": "rotation",
        "output": "<answer>90</answer>",
        "extracted": None,
    },
    {
        "benchmark": "ssl",
        "id": "j",
        "group": "j",
        "category": "jigsaw",
        "question": "q",
        "options": {},
        "answer": "2,4,1,3",
        "task": "jigsaw",
        "output": "<answer>2,4,3,1</answer>",
        "extracted": None,
    },
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
    assert mmbench["categories"] == {
        "cat-1": {"accuracy": 0.5, "questions": 2},
        "cat-2": {"accuracy": 0.5, "questions": 2},
    }
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
    evaluate.main(
        ["--predictions", str(write_predictions(tmp_path / "b.jsonl", better)), "--out", str(tmp_path / "trained")]
    )
    assert (
        evaluate.main(["--compare", str(tmp_path / "base"), str(tmp_path / "trained"), "--out", str(tmp_path / "cmp")])
        == 0
    )
    report = (tmp_path / "cmp" / "report.md").read_text()
    assert "| mmbench | **overall** | 50.0 | 75.0 | +25.0 |" in report
    assert "| mmbench | cat-1 | 50.0 | 100.0 | +50.0 |" in report
    assert "| seedbench | **overall** | 66.7 | 66.7 | +0.0 |" in report
    chart = Image.open(tmp_path / "cmp" / "compare.png")
    assert chart.width > 500 and chart.height > 22 * 5


@pytest.mark.parametrize(
    "output,expected",
    [
        ("<answer>C</answer>", "C"),
        ("C", "C"),
        ("(B) a dog", "B"),
        ("Answer: D", "D"),
        ("a fish, clearly", "D"),
        ("a cat or a dog", None),
        ("E", None),
        ("<answer>maybe</answer>", None),
        ("", None),
    ],
)
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
    assert (
        read_imagenet(root, classes, distractors=3, seed=1)[0].options != first[0].options
        or read_imagenet(root, classes, distractors=3, seed=1)[1].options != first[1].options
    )


def test_tiny_model_end_to_end(tmp_path, run_cli):
    from ssl4rl_train.synthetic_qwen import build_synthetic_qwen

    model = build_synthetic_qwen(tmp_path / "model", "tiny")[0]
    mmbench = bf.write_mmbench_tsv(tmp_path / "MMBench_DEV_EN.tsv")
    seed = bf.write_seed_parquet(tmp_path / "seed")
    imagenet = bf.write_imagenet_parquet(tmp_path / "imagenet")
    assert run_cli("build", "rotation", "--limit", "3", "--out", tmp_path / "ssl", "-q")[0] == 0
    args = [
        "--model",
        str(model),
        "--out",
        str(tmp_path / "eval"),
        "--max-new-tokens",
        "4",
        "--batch-size",
        "4",
        "--max-pixels",
        "12544",
        "--benchmark",
        f"mmbench:{mmbench}",
        "--benchmark",
        f"seedbench:{seed}",
        "--benchmark",
        f"imagenet:{imagenet}",
        "--benchmark",
        f"ssl:{tmp_path / 'ssl'}",
    ]
    assert evaluate.main(args) == 0
    records = [json.loads(line) for line in (tmp_path / "eval" / "predictions.jsonl").read_text().splitlines()]
    counts = {
        name: sum(r["benchmark"] == name for r in records) for name in ("mmbench", "seedbench", "imagenet", "ssl")
    }
    assert counts == {"mmbench": 12, "seedbench": 3, "imagenet": 5, "ssl": 3}
    assert all(isinstance(r["output"], str) for r in records)
    scores = json.loads((tmp_path / "eval" / "scores.json").read_text())
    assert scores["settings"]["prompt"] == "paper"
    assert (scores["settings"]["min_pixels"], scores["settings"]["max_pixels"]) == (12544, 12544)  # min follows max
    assert scores["scores"]["mmbench"]["questions"] == 4
    assert all(0 <= s["accuracy"] <= 1 for s in scores["scores"].values())


def test_mistakes_get_one_line(tmp_path, capsys):
    assert evaluate.main(["--model", "m", "--benchmark", f"nope:{tmp_path}", "--out", str(tmp_path / "o")]) == 2
    assert "unknown kind 'nope'" in capsys.readouterr().err
    assert evaluate.main(["--out", str(tmp_path / "o")]) == 2


# --- parity with VLMEvalKit's Qwen2.5-VL setup --------------------------------------------------------


def test_prompt_layout_is_vlmevalkits_and_paper_changes_only_the_instruction():
    from ssl4rl_train.eval_data import PAPER_INSTRUCTION, Item, multiple_choice_prompt

    item = Item(
        benchmark="mmbench",
        id="1",
        answer="A",
        hint="It is outdoors.",
        question="What is it?",
        options={"A": "a cat", "B": "a dog"},
    )
    plain = multiple_choice_prompt(item, "plain")
    assert plain == (
        "Hint: It is outdoors.\nQuestion: What is it?\nOptions:\nA. a cat\nB. a dog\n"
        "Please select the correct answer from the options above."
    )
    paper = multiple_choice_prompt(item, "paper")
    assert paper.splitlines()[:-1] == plain.splitlines()[:-1] and paper.splitlines()[-1] == PAPER_INSTRUCTION
    item.hint = ""
    assert multiple_choice_prompt(item, "plain").startswith("Question: What is it?\nOptions:\n")
    chinese = Item(benchmark="mmbench", id="2", answer="A", question="这是什么?", options={"A": "猫", "B": "狗"})
    assert multiple_choice_prompt(chinese, "plain").endswith("\n请直接回答选项字母。")


@pytest.fixture()
def captured_generate(monkeypatch):
    """Records the generation config and image grids of every `generate` call, and runs it."""
    from transformers import GenerationMixin

    calls, original = [], GenerationMixin.generate

    def spy(self, *args, **kwargs):
        calls.append(kwargs)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(GenerationMixin, "generate", spy)
    return calls


def qwen_like_generation_config(model: Path):
    """What Qwen2.5-VL-3B-Instruct's generation_config.json says: sampling, repetition_penalty 1.05."""
    config = json.loads((model / "generation_config.json").read_text())
    config.update(do_sample=True, temperature=0.1, top_p=0.001, top_k=1, repetition_penalty=1.05)
    (model / "generation_config.json").write_text(json.dumps(config))


def test_parity_settings_are_used_and_recorded(tmp_path, tiny_model, captured_generate, monkeypatch):
    import shutil

    import transformers.generation.logits_process as processors

    penalties, warpers = [], []
    for name, found in (
        ("RepetitionPenaltyLogitsProcessor", penalties),
        ("TemperatureLogitsWarper", warpers),
        ("TopPLogitsWarper", warpers),
    ):
        cls = getattr(processors, name)
        monkeypatch.setattr(
            cls,
            "__init__",
            lambda self, *a, _init=cls.__init__, _found=found, **k: (_found.append(a), _init(self, *a, **k))[1],
        )

    model = Path(shutil.copytree(tiny_model, tmp_path / "model"))
    qwen_like_generation_config(model)
    mmbench = bf.write_mmbench_tsv(tmp_path / "MMBench_DEV_EN.tsv")
    out = tmp_path / "eval"
    assert (
        evaluate.main(
            [
                "--model",
                str(model),
                "--out",
                str(out),
                "--max-new-tokens",
                "6",
                "--limit",
                "3",
                "--benchmark",
                f"mmbench:{mmbench}",
            ]
        )
        == 0
    )
    settings = json.loads((out / "scores.json").read_text())["settings"]
    assert {
        k: settings[k]
        for k in (
            "prompt",
            "min_pixels",
            "max_pixels",
            "max_new_tokens",
            "do_sample",
            "repetition_penalty",
            "stop",
            "backend",
        )
    } == {
        "prompt": "paper",
        "min_pixels": 1280 * 28 * 28,
        "max_pixels": 16384 * 28 * 28,
        "max_new_tokens": 6,
        "do_sample": False,
        "repetition_penalty": 1.0,
        "stop": ["</answer>", "EOS"],
        "backend": "transformers",
    }
    config = captured_generate[0]["generation_config"]
    assert (config.do_sample, config.repetition_penalty, config.max_new_tokens, config.stop_strings) == (
        False,
        1.0,
        6,
        ["</answer>"],
    )
    grid = captured_generate[0]["image_grid_thw"]  # 240x180 photos are enlarged to at least 1280 visual tokens
    assert all(int(t * h * w) // 4 >= 1280 for t, h, w in grid.tolist())
    records = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert records[0]["prompt"].startswith(f"Hint: {bf.MARKER} hint\nQuestion: {bf.MARKER} question 0?")
    assert records[0]["prompt"].endswith("<answer>A</answer>") and "\nOptions:\nA. " in records[0]["prompt"]

    # the checkpoint's repetition_penalty 1.05 and sampling are not applied (a plain generate call would apply them)
    assert penalties == [] and warpers == []


# --- one reader per benchmark ------------------------------------------------------------------------


def reversed_tsv(source: Path, target: Path) -> Path:
    """The same TSV with its rows in reverse order: every image reference now names a later row."""
    import pandas as pd

    frame = pd.read_csv(source, sep="\t", dtype=str, keep_default_na=False)
    frame.iloc[::-1].to_csv(target, sep="\t", index=False)
    return target


def builder_refs(kind: str, path: Path):
    from ssl4rl_data.registry import sources

    source = sources()[kind](str(path), {})
    requested = []
    for table in source.tables:
        rows = table.rows
        table.rows = lambda columns, rows=rows: (requested.append(list(columns)), rows(columns))[1]
    return list(source.refs()), source, requested


@pytest.mark.parametrize("order", ["holders-first", "references-first"])
def test_mmbench_evaluator_and_builder_share_the_reader(tmp_path, order):
    from ssl4rl_data.sources.mmbench import LABEL_COLUMNS

    tsv = bf.write_mmbench_tsv(tmp_path / "MMBench_DEV_EN.tsv")
    if order == "references-first":
        (tmp_path / "reversed").mkdir()
        tsv = reversed_tsv(tsv, tmp_path / "reversed" / "MMBench_DEV_EN.tsv")
    items = read_mmbench(tsv)
    assert len(items) == 12 and len({i.group for i in items}) == 4
    assert all(i.images[0]() for i in items)
    refs, source, requested = builder_refs("mmbench", tsv)
    assert len(refs) == 12 and not source.excluded
    assert len({r.source_id for r in refs}) == 4 and len({r.digest for r in refs}) == bf.MMBENCH_UNIQUE
    assert requested and not any(set(columns) & set(LABEL_COLUMNS) for columns in requested)


def test_seedbench_tsv_references_are_resolved_by_both_uses(tmp_path):
    import pandas as pd

    from ssl4rl_train.eval_data import read_seedbench

    tsv = bf.write_seed_tsv(tmp_path / "SEEDBench_IMG.tsv")
    frame = pd.read_csv(tsv, sep="\t", dtype=str, keep_default_na=False)
    frame.loc[2, "image"] = "1"  # VLMEvalKit's way of repeating row 1's image
    frame.to_csv(tsv, sep="\t", index=False)
    items = read_seedbench(tsv)
    assert len(items) == 3 and items[2].images[0]() == items[1].images[0]()
    refs, source, requested = builder_refs("seedbench", tsv)
    assert len(refs) == 3 and refs[2].digest == refs[1].digest and not source.excluded
    assert not any({"question", "answer", "A", "category"} & set(columns) for columns in requested)


def test_imagenet_options_are_distinct_class_names(tmp_path):
    classes = tmp_path / "LOC_synset_mapping.txt"
    names = ["tench", "maillot", "maillot, tank suit", "crane", "crane", "goldfish", "shark", "ray", "cock", "hen"]
    classes.write_text("".join(f"n{index:08d} {name}\n" for index, name in enumerate(names)))
    root = tmp_path / "val"
    for synset in ("n00000001", "n00000002", "n00000003", "n00000004"):
        (root / synset).mkdir(parents=True)
        for k in range(4):
            bf.photo(k).save(root / synset / f"{k}.JPEG", format="JPEG")
    items = read_imagenet(root, classes, distractors=3, seed=0)
    assert len(items) == 16
    for item in items:
        assert len(item.options) == 4 and len(set(item.options.values())) == 4


# --- scoring by name, comparison, submission, mistakes -----------------------------------------------


def test_several_ssl_datasets_are_scored_separately(tmp_path, datasets_two_tasks):
    import argparse

    rotation, jigsaw = datasets_two_tasks
    args = argparse.Namespace(limit=None, prompt="paper", imagenet_classes=None, imagenet_distractors=3, seed=0)
    items = evaluate.load_items([f"ssl:{rotation}", f"ssl:{jigsaw}", f"ssl:{rotation}"], args)
    assert [i.name for i in items][::6] == ["ssl:rotation", "ssl:jigsaw", "ssl:rotation#2"]
    records = [
        {**item.record(), "output": f"<answer>{item.answer}</answer>" if item.name != "ssl:jigsaw" else ""}
        for item in items
    ]
    scores = evaluate.score_predictions(records)
    assert set(scores) == {"ssl:rotation", "ssl:jigsaw", "ssl:rotation#2"}
    assert scores["ssl:rotation"]["rows"] == 6 and scores["ssl:rotation"]["accuracy"] == 1.0
    assert scores["ssl:jigsaw"]["accuracy"] == 0.0


def run_with_settings(tmp_path, name, records, **settings):
    folder = tmp_path / name
    folder.mkdir()
    predictions = write_predictions(folder / "predictions.jsonl", records)
    (folder / "scores.json").write_text(json.dumps({"settings": settings, "scores": {}}))
    assert evaluate.main(["--predictions", str(predictions), "--out", str(folder)]) == 0
    return folder


def test_compare_keeps_settings_names_runs_and_refuses_different_settings(tmp_path, capsys):
    pixels = {"min_pixels": 1003520, "max_pixels": 12845056}
    base = run_with_settings(tmp_path, "base", GOLDEN, prompt="paper", model="m0", **pixels)
    trained = run_with_settings(tmp_path, "trained", GOLDEN, prompt="paper", model="m1", **pixels)
    plain = run_with_settings(tmp_path, "plain", GOLDEN, prompt="plain", model="m1", **pixels)
    kept = json.loads((trained / "scores.json").read_text())["settings"]
    assert kept["model"] == "m1" and kept["prompt"] == "paper" and kept["rescored_from"].endswith("predictions.jsonl")
    assert evaluate.main(["--compare", str(base), str(trained), "--out", str(tmp_path / "cmp")]) == 0
    report = (tmp_path / "cmp" / "report.md").read_text()
    assert "| benchmark | category | base | trained | trained - base |" in report
    assert "| model | m0 | m1 |" in report
    capsys.readouterr()
    assert evaluate.main(["--compare", str(base), str(plain), "--out", str(tmp_path / "no")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "prompt: base=paper, plain=plain" in err and "--allow-different-settings" in err
    assert not (tmp_path / "no" / "report.md").exists()
    assert (
        evaluate.main(
            ["--compare", str(base), str(plain), "--out", str(tmp_path / "yes"), "--allow-different-settings"]
        )
        == 0
    )
    assert "| prompt (differs) | paper | plain |" in (tmp_path / "yes" / "report.md").read_text()


def test_mmbench_test_split_writes_the_submission_file(tmp_path):
    import zipfile

    hidden = [{**r, "answer": ""} for r in GOLDEN if r["benchmark"] == "mmbench"]
    predictions = write_predictions(tmp_path / "predictions.jsonl", hidden + GOLDEN[8:])
    assert evaluate.main(["--predictions", str(predictions), "--out", str(tmp_path / "out")]) == 0
    result = json.loads((tmp_path / "out" / "scores.json").read_text())
    assert "mmbench" not in result["scores"] and result["submission"]["mmbench"]["rows"] == 8
    rows = (tmp_path / "out" / "mmbench_submission.tsv").read_text().splitlines()
    assert rows[0].split("\t") == ["index", "question", "hint", "A", "B", "C", "D", "category", "prediction"]
    assert [row.split("\t")[-1] for row in rows[1:4]] == ["A", "B", "C"]
    with zipfile.ZipFile(tmp_path / "out" / "mmbench_submission.xlsx") as archive:
        sheet = archive.read("xl/worksheets/sheet1.xml").decode()
    assert sheet.count("<row ") == 9 and '<t xml:space="preserve">prediction</t>' in sheet


def test_a_missing_model_folder_is_one_line_without_the_hub(tmp_path, capsys, monkeypatch):
    import time

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    tsv = bf.write_mmbench_tsv(tmp_path / "MMBench_DEV_EN.tsv")
    (tmp_path / "out").mkdir()
    for model in (str(tmp_path / "out" / "qwen_typo"), "out/qwen_typo", "./nothing", str(tmp_path)):
        monkeypatch.chdir(tmp_path)
        started = time.perf_counter()
        assert evaluate.main(["--model", model, "--benchmark", f"mmbench:{tsv}", "--out", str(tmp_path / "o")]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "--model" in err and time.perf_counter() - started < 5


@pytest.mark.parametrize("case", ["csv-file", "empty-folder", "tsv-without-images"])
def test_a_benchmark_in_no_known_format_is_one_line(tmp_path, tiny_model, capsys, case):
    path = tmp_path / "bench"
    if case == "csv-file":
        path = tmp_path / "MMBench.csv"
        path.write_text("index,question\n1,q\n")
    elif case == "empty-folder":
        path.mkdir()
    else:
        path = tmp_path / "MMBench_DEV_EN.tsv"
        path.write_text("index\tquestion\tA\tB\tanswer\n1\tq\ta\tb\tA\n")
    args = ["--model", str(tiny_model), "--benchmark", f"mmbench:{path}", "--out", str(tmp_path / "o")]
    assert evaluate.main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("evaluate.py: error:")


def test_vllm_backend_without_vllm_is_one_line(tmp_path, tiny_model, capsys):
    import importlib.util

    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vLLM is installed here")
    tsv = bf.write_mmbench_tsv(tmp_path / "MMBench_DEV_EN.tsv")
    assert (
        evaluate.main(
            [
                "--model",
                str(tiny_model),
                "--benchmark",
                f"mmbench:{tsv}",
                "--backend",
                "vllm",
                "--out",
                str(tmp_path / "o"),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "vLLM is not installed" in err


def test_a_benchmark_is_one_registered_class(monkeypatch):
    from ssl4rl_train import evals
    from ssl4rl_train.scoring import score_predictions

    assert list(evals.benchmarks()) == ["imagenet", "mmbench", "seedbench", "ssl"]
    monkeypatch.setitem(
        evals._BENCHMARKS,
        "echo",
        type(
            "Echo",
            (),
            {
                "kind": "echo",
                "extract": staticmethod(lambda output, record: output.strip()),
                "score": staticmethod(
                    lambda rows: {"accuracy": sum(r["extracted"] == r["answer"] for r in rows) / len(rows)}
                ),
            },
        ),
    )
    records = [
        {"benchmark": "echo", "output": " yes ", "answer": "yes"},
        {"benchmark": "echo", "output": "no", "answer": "yes"},
    ]
    assert score_predictions(records) == {"echo": {"accuracy": 0.5}}
    with pytest.raises(ValueError, match="unknown kind 'nope'; use echo, imagenet, mmbench, seedbench, ssl"):
        evaluate.check_specs(["nope:x"])


def test_ssl_rows_at_default_pixels_name_the_bounds_the_checkpoint_trained_at(tmp_path, tiny_model, run_cli, capsys):
    """VLMEvalKit's bounds are the default; for ssl: rows the note says which bounds the model was trained at."""
    from ssl4rl_train.vlm import load_processor

    size = load_processor(str(tiny_model)).image_processor.size
    trained = [size.shortest_edge, size.longest_edge]
    assert run_cli("build", "rotation", "--limit", "2", "--out", tmp_path / "ssl", "-q")[0] == 0
    common = ["--model", str(tiny_model), "--benchmark", f"ssl:{tmp_path / 'ssl'}", "--max-new-tokens", "2"]
    assert evaluate.main([*common, "--out", str(tmp_path / "default")]) == 0
    note = capsys.readouterr().err
    assert f"pass --min-pixels {trained[0]} --max-pixels {trained[1]}" in note and "VLMEvalKit" in note
    settings = json.loads((tmp_path / "default" / "scores.json").read_text())["settings"]
    assert settings["checkpoint_pixels"] == trained and settings["max_pixels"] == 16384 * 28 * 28
    assert evaluate.main([*common, "--out", str(tmp_path / "as-trained"), "--max-pixels", str(trained[1])]) == 0
    assert "note:" not in capsys.readouterr().err  # bounds given: nothing to point out
