"""Issue 17's rest: the context and inpaint checkers on real built rows, the `difficulty` column (the audit's
score, stored by the build), `build --difficulty TIER` (thirds of the build's scores: a partition of the
rows, recorded in the card and the version, deterministic, resumable), and mixing datasets with and without
the column."""

import json
import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import read_rows

from ssl4rl_data import difficulty as difficulty_module
from ssl4rl_data.audit import audit
from ssl4rl_data.audit.checks import WRONG, Row, get_checker
from ssl4rl_data.card import read_provenance
from ssl4rl_data.records import file_record


@pytest.fixture(scope="module")
def built(tmp_path_factory, photo_folder):
    """Clean builds of the 72 photo crops (each test copies what it alters)."""
    from ssl4rl_data.cli import main

    root = tmp_path_factory.mktemp("difficulty")

    def make(name, *args):
        assert main(["build", *args, "--source", f"folder:{photo_folder}", "--out", str(root / name), "-q"]) == 0
        return root / name

    make("context", "context")
    make("context-keep", "context", "--chroma", "keep")
    make("inpaint", "inpaint")
    make("rotation", "rotation")
    return root


def rewritten(folder, tmp_path, change):
    """A copy of a build whose rows `change(index, row)` rewrote in place."""
    copy = tmp_path / folder.name
    shutil.copytree(folder, copy)
    index = 0
    for file in sorted(copy.glob("data/*.parquet")):
        table = pq.read_table(file)
        rows = table.to_pylist()
        for row in rows:
            change(index, row)
            index += 1
        pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), file)
    return copy


def test_inpaint_checker_confirms_clean_rows_and_catches_changed_answers(built, tmp_path):
    result = audit(rewritten(built / "inpaint", tmp_path / "clean", lambda i, r: None))
    clean = result["labels"]
    print("inpaint clean", {k: clean[k] for k in ("rows", "ok", "unsure", "wrong")})
    assert clean["checker"] == "inpaint" and clean["wrong"] == 0 and clean["ok"] >= 0.9 * clean["rows"]
    assert result["passed"], result["problems"]  # what --strict asks: no blind shortcut either
    swapped = set()

    def change(index, row):
        if index % 3 == 0:
            row["answer"] = str(int(row["answer"]) % 4 + 1)  # another of the 4 candidates
            swapped.add(row["source_id"])

    labels = audit(rewritten(built / "inpaint", tmp_path, change))["labels"]
    print("inpaint swapped", {k: labels[k] for k in ("ok", "unsure", "wrong")}, "of", len(swapped))
    assert set(labels["wrong_ids"]) <= swapped and labels["wrong"] >= 0.7 * len(swapped)


def test_context_checker_checks_what_the_row_allows(built, tmp_path):
    """The place is undecidable from the two patches (UNSURE, with a score); a non-place answer, or colours the
    card's chroma setting rules out, is WRONG."""
    clean = audit(rewritten(built / "context", tmp_path / "clean", lambda i, r: None))
    labels = clean["labels"]
    print("context clean", {k: labels[k] for k in ("rows", "ok", "unsure", "wrong")})
    assert labels["checker"] == "context" and labels["wrong"] == 0 and labels["unsure"] == labels["rows"]
    assert clean["passed"], clean["problems"]
    assert all(0 <= r["difficulty"] <= 1 for r in clean["rows"])

    def change(index, row):
        if index % 3 == 0:
            row["answer"] = "middle"

    changed = audit(rewritten(built / "context", tmp_path, change))["labels"]
    assert changed["wrong"] == len([r for i, r in enumerate(read_rows(built / "context")) if i % 3 == 0])
    projected = get_checker("context", {"chroma": "project"})
    verdicts = [
        projected.examine(Row(0, [], row["answer"], row["source_id"]), images)[0]
        for row, images in decoded_rows(built / "context-keep")
    ]
    kept_colours = verdicts.count(WRONG)
    print("rows with colours kept called wrong under chroma=project:", kept_colours, "of", len(verdicts))
    assert kept_colours >= 0.5 * len(verdicts)


def decoded_rows(folder):
    import io

    from PIL import Image

    for row in read_rows(folder):
        yield row, [Image.open(io.BytesIO(image["bytes"])).convert("RGB") for image in row["images"]]


@pytest.mark.parametrize("task", ["rotation", "inpaint", "context"])
def test_difficulty_column_is_the_audits_score(built, tmp_path, task):
    """The build scores the views before encoding, the audit the decoded files: the same tiers."""
    column = [row["difficulty"] for row in read_rows(built / task)]
    result = audit(rewritten(built / task, tmp_path, lambda i, r: None))
    audited = [r["difficulty"] for r in result["rows"]]
    assert all(score is not None and 0 <= score <= 1 for score in column)
    _, tiers = difficulty_module.difficulty_tiers(column)
    same = sum(a == r["tier"] for a, r in zip(tiers, result["rows"], strict=True)) / len(tiers)
    gap = max(abs(a - b) for a, b in zip(column, audited, strict=True))
    print(task, "same tier", round(same, 3), "largest difference", round(gap, 4))
    assert same >= 0.95 and gap < 0.2


def test_difficulty_tiers_partition_the_build(built, photo_folder, tmp_path, run_cli):
    everything = {row["source_id"]: row["difficulty"] for row in read_rows(built / "rotation")}
    seen, versions = {}, set()
    for tier in difficulty_module.TIERS:
        out = tmp_path / tier
        code, err = run_cli(
            "build", "rotation", "--source", f"folder:{photo_folder}", "--out", out, "--difficulty", tier
        )
        assert code == 0, err
        record = read_provenance(out)
        rows = read_rows(out)
        assert record["options"]["difficulty"] == tier and record["difficulty"]["tier"] == tier
        assert record["rows"] == record["difficulty"]["rows_kept"] == len(rows) > 0
        assert record["difficulty"]["rows_before"] == len(everything)
        assert sum(record["answers"].values()) == len(rows) == sum(s["rows"] for s in record["sources"])
        assert f"| difficulty | `{tier}`" in (out / "README.md").read_text()
        assert {name: file_record(out / name) for name in record["files"]} == record["files"]  # push's manifest
        low, high = record["difficulty"]["cuts"]
        for row in rows:
            assert row["difficulty"] == everything[row["source_id"]]
            assert {"easy": row["difficulty"] <= low, "medium": low < row["difficulty"] <= high}.get(
                tier, row["difficulty"] > high
            )
            seen[row["source_id"]] = tier
        versions.add(record["version"])
    assert set(seen) == set(everything) and len(versions) == 3  # every row in exactly one tier
    assert read_provenance(built / "rotation")["version"] not in versions
    counts = [list(seen.values()).count(t) for t in difficulty_module.TIERS]
    assert max(counts) - min(counts) <= 0.1 * len(everything) + 2, counts


def test_tier_build_is_deterministic_and_resumes(photo_folder, tmp_path, run_cli, monkeypatch):
    """Interrupted while rewriting shards for the tier: the same command finishes without rebuilding or
    rewriting the shards done, and the bytes equal an uninterrupted build's (with 2 processes)."""
    original, calls = difficulty_module._rewrite, []

    def interrupted_after_first(builder, index, *args):
        if calls:
            raise KeyboardInterrupt
        calls.append(index)
        return original(builder, index, *args)

    command = ["build", "jigsaw", "--source", f"folder:{photo_folder}", "--difficulty", "hard", "-q"]
    monkeypatch.setattr(difficulty_module, "_rewrite", interrupted_after_first)
    code, err = run_cli(*command, "--out", tmp_path / "d")
    assert code == 130 and not (tmp_path / "d").exists()
    rewrites = []

    def counting(builder, index, *args):
        rewrites.append(index)
        return original(builder, index, *args)

    monkeypatch.setattr(difficulty_module, "_rewrite", counting)
    assert run_cli(*command, "--out", tmp_path / "d")[0] == 0
    assert rewrites == [1, 2]
    monkeypatch.setattr(difficulty_module, "_rewrite", original)
    assert run_cli(*command, "--out", tmp_path / "fresh", "--num-proc", "2")[0] == 0
    files = [sorted((tmp_path / name).glob("data/*.parquet")) for name in ("d", "fresh")]
    assert [f.read_bytes() for f in files[0]] == [f.read_bytes() for f in files[1]]
    assert json.dumps(read_provenance(tmp_path / "d")["difficulty"]) == json.dumps(
        read_provenance(tmp_path / "fresh")["difficulty"]
    )


def test_mixture_drops_columns_not_every_dataset_has(built, tmp_path):
    """A dataset of generator 0.4.0 (no `difficulty`) mixes with a new one: the column is dropped."""
    from ssl4rl_train.mixture import DatasetSpec, load_one, mix

    old = tmp_path / "old"
    shutil.copytree(built / "rotation", old)
    for file in old.glob("data/*.parquet"):
        pq.write_table(pq.read_table(file).drop_columns(["difficulty"]), file)
    datasets = [load_one(DatasetSpec.parse(str(folder)), "train")[0] for folder in (built / "context", old)]
    assert "difficulty" in datasets[0].column_names and "difficulty" not in datasets[1].column_names
    mixed = mix(datasets, [1, 1], seed=0)
    assert "difficulty" not in mixed.column_names and set(mixed["task"]) == {"context", "rotation"}
    alone = mix(datasets[:1], None, seed=0)
    assert alone["difficulty"] == [row["difficulty"] for row in read_rows(built / "context")]


@pytest.fixture
def flat_folder(tmp_path):
    """Six flat pictures: every rotation row scores 1 (each rotation looks alike); flip refuses every one."""
    from PIL import Image

    folder = tmp_path / "flat"
    folder.mkdir()
    for index in range(6):
        Image.new("RGB", (256, 256), (10 * index, 100, 200)).save(folder / f"{index}.png")
    return folder


def test_a_tier_left_empty_by_ties_is_one_true_line(flat_folder, tmp_path, run_cli):
    """All scores equal: every row is easy; medium and hard say so (not that every image was skipped)."""
    source = ["--source", f"folder:{flat_folder}", "-q"]
    code, err = run_cli("build", "rotation", *source, "--difficulty", "easy", "--out", tmp_path / "easy")
    assert code == 0, err
    assert read_provenance(tmp_path / "easy")["difficulty"]["rows_kept"] == 6
    for tier in ("medium", "hard"):
        code, err = run_cli("build", "rotation", *source, "--difficulty", tier, "--out", tmp_path / tier)
        assert code == 1 and not (tmp_path / tier).exists()
        assert err.count("\n") == 1 and "no row falls in this tier (6 rows, cuts at 1 and 1;" in err, err
    code, err = run_cli("build", "flip", *source, "--difficulty", "easy", "--out", tmp_path / "flip")
    assert code == 1 and "every source image was skipped (no-asymmetric-cell 6)" in err, err


def test_difficulty_for_a_task_without_checker_is_refused_before_building(
    photo_folder, tmp_path, run_cli, monkeypatch
):
    from ssl4rl_data import build as build_module

    monkeypatch.setattr(difficulty_module, "get_checker", lambda *args, **kwargs: None)
    monkeypatch.setattr(build_module.ShardBuilder, "build_shard", lambda *args: pytest.fail("built a shard"))
    code, err = run_cli(
        "build", "rotation", "--source", f"folder:{photo_folder}", "--difficulty", "hard", "--out", tmp_path / "d"
    )
    assert code == 1 and "task 'rotation' has no checker to score its rows" in err, err


def test_a_nan_score_is_stored_as_no_score(photo_folder, tmp_path, run_cli, monkeypatch):
    """A checker (a plug-in's) scoring NaN: the row has no score and no tier; the cuts stay numbers."""
    real = difficulty_module.get_checker

    class Halves:
        def __init__(self, checker):
            self.checker, self.calls = checker, 0

        def examine(self, row, images):
            self.calls += 1
            verdict, score = self.checker.examine(row, images)
            return verdict, float("nan") if self.calls % 2 else score

    monkeypatch.setattr(difficulty_module, "get_checker", lambda *args, **kwargs: Halves(real(*args, **kwargs)))
    out = tmp_path / "d"
    code, err = run_cli(
        "build", "rotation", "--source", f"folder:{photo_folder}", "--difficulty", "hard", "--out", out, "-q"
    )
    assert code == 0, err
    summary = read_provenance(out)["difficulty"]
    assert f"kept {summary['rows_kept']} of {summary['rows_before']} rows" in err
    assert f"; {summary['unscored']} rows without a score are in no tier)" in err  # not only in the card
    assert summary["unscored"] == summary["rows_before"] // 2 and all(c == c for c in summary["cuts"])
    assert 0 < summary["rows_kept"] and all(row["difficulty"] > summary["cuts"][1] for row in read_rows(out))
