"""Benchmark sources in their real formats: one row per unique usable image, no label anywhere."""

import json

import benchmark_files as bf
import pyarrow.parquet as pq
import pytest
import yaml
from conftest import read_rows


def output_text(folder) -> str:
    """Every string a built dataset holds (all parquet cells but image bytes, and the card)."""
    texts = [(folder / "README.md").read_text()]
    for file in sorted(folder.glob("data/*.parquet")):
        for row in pq.read_table(file).to_pylist():
            texts.append(json.dumps({k: v for k, v in row.items() if k != "images"}))
            texts += [str(image["path"]) for image in row["images"]]
    return "\n".join(texts)


def build(run_cli, out, *sources, task="rotation", extra=()):
    args = ["build", task, "--out", out, "-q", *extra]
    for source in sources:
        args += ["--source", source]
    code, err = run_cli(*args)
    assert code == 0, err
    return read_rows(out), yaml.safe_load((out / "README.md").read_text().split("---")[1])["ssl4rl"], err


def assert_no_labels(out, markers=(bf.MARKER,)):
    text = output_text(out)
    for marker in markers:
        assert marker not in text


@pytest.mark.parametrize(
    "writer,spec_suffix,expected",
    [
        (lambda p: bf.write_mmbench_tsv(p / "MMBench_DEV_EN.tsv"), "/MMBench_DEV_EN.tsv", bf.MMBENCH_UNIQUE),
        (bf.write_mmbench_lmms_folder, "", bf.MMBENCH_UNIQUE),
        (
            lambda p: bf.write_mmbench_lmms_folder(p) / "en" / "dev-00000-of-00001.parquet",
            "/en/dev-00000-of-00001.parquet",
            bf.MMBENCH_UNIQUE,
        ),
        (bf.write_mmbench_m4_folder, "", bf.MMBENCH_UNIQUE + 1),
        (bf.write_mmbench_saved, "", bf.MMBENCH_UNIQUE),
    ],
    ids=["tsv", "lmms-folder", "lmms-file", "m4-base64", "save_to_disk"],
)
def test_mmbench_formats(tmp_path, run_cli, writer, spec_suffix, expected):
    root = tmp_path / "mmbench"
    root.mkdir()
    writer(root)
    rows, meta, err = build(run_cli, tmp_path / "out", f"mmbench:{root}{spec_suffix}")
    assert len(rows) == expected
    assert len({r["source_id"] for r in rows}) == expected
    assert all(r["source_id"].startswith("mmbench:") for r in rows)
    (source,) = meta["sources"]
    assert source["benchmark"] == "MMBench" and source["rows"] == expected
    assert source["duplicates"] > 0 and "duplicate images dropped" in err
    assert "dev" in source["splits"]
    assert "Transductive data" in (tmp_path / "out" / "README.md").read_text()
    assert_no_labels(tmp_path / "out")


def test_mmbench_split_option_picks_splits(tmp_path, run_cli):
    root = bf.write_mmbench_m4_folder(tmp_path / "m4")
    rows, meta, _ = build(run_cli, tmp_path / "dev", f"mmbench:{root}?split=dev")
    assert len(rows) == bf.MMBENCH_UNIQUE and meta["sources"][0]["splits"] == ["dev"]
    rows, meta, _ = build(run_cli, tmp_path / "test", f"mmbench:{root}?split=test")
    assert len(rows) == bf.MMBENCH_UNIQUE + 1 and meta["sources"][0]["splits"] == ["test"]
    assert all(r["source_id"].startswith("mmbench:test:") for r in rows)


@pytest.mark.parametrize("layout", ["parquet", "tsv"])
def test_seedbench_keeps_image_questions_only(tmp_path, run_cli, layout):
    if layout == "parquet":
        spec = f"seedbench:{bf.write_seed_parquet(tmp_path / 'seed')}"
    else:
        spec = f"seedbench:{bf.write_seed_tsv(tmp_path / 'SEEDBench_IMG.tsv')}"
    rows, meta, _ = build(run_cli, tmp_path / "out", spec, task="jigsaw")
    assert len(rows) == bf.SEED_UNIQUE  # the CMYK image included
    if layout == "parquet":
        assert meta["sources"][0]["excluded_rows"] == {"video": 2}
    assert_no_labels(tmp_path / "out")


@pytest.mark.parametrize(
    "writer,option,expected",
    [
        (bf.write_imagenet_folder, "?split=train", bf.IMAGENET_UNIQUE),
        (bf.write_imagenet_folder, "", bf.IMAGENET_UNIQUE + 1),
        (bf.write_imagenet_flat, "", bf.IMAGENET_UNIQUE),
        (bf.write_imagenet_tars, "", bf.IMAGENET_UNIQUE),
        (bf.write_imagenet_parquet, "", bf.IMAGENET_UNIQUE),
        (bf.write_imagenet_saved, "", bf.IMAGENET_UNIQUE),
    ],
    ids=["imagefolder-train", "imagefolder-all", "flat", "webdataset", "parquet", "save_to_disk"],
)
def test_imagenet_layouts_with_label_free_ids(tmp_path, run_cli, writer, option, expected):
    root = writer(tmp_path / "imagenet")
    rows, meta, _ = build(run_cli, tmp_path / "out", f"imagenet:{root}{option}", task="position")
    assert len(rows) == expected
    assert all(r["source_id"].startswith("imagenet:") and len(r["source_id"]) == len("imagenet:") + 32 for r in rows)
    assert meta["skipped"] == {}
    assert_no_labels(tmp_path / "out", bf.IMAGENET_MARKERS)


def test_hf_source_reads_any_loadable_dataset(tmp_path, run_cli):
    root = bf.write_imagenet_parquet(tmp_path / "any")
    rows, meta, _ = build(run_cli, tmp_path / "out", f"hf:{root}?column=image&split=train")
    assert len(rows) == bf.IMAGENET_UNIQUE
    assert {r["source_id"] for r in rows} == {"hf:train:0", "hf:train:1", "hf:train:2", "hf:train:3"}
    assert_no_labels(tmp_path / "out")


def test_several_sources_mix_and_the_card_lists_each(tmp_path, run_cli):
    mmbench = bf.write_mmbench_tsv(tmp_path / "MMBench_DEV_EN.tsv")
    seed = bf.write_seed_parquet(tmp_path / "seed")
    rows, meta, _ = build(
        run_cli, tmp_path / "out", f"mmbench:{mmbench}", f"seedbench:{seed}", "sample", task="contrastive"
    )
    kinds = [s["kind"] for s in meta["sources"]]
    assert kinds == ["mmbench", "seedbench", "sample"]
    assert [s["rows"] for s in meta["sources"]] == [bf.MMBENCH_UNIQUE, bf.SEED_UNIQUE, 12]
    assert len(rows) == bf.MMBENCH_UNIQUE + bf.SEED_UNIQUE + 12
    assert all(len(s["fingerprint"]) == 32 for s in meta["sources"])
    card = (tmp_path / "out" / "README.md").read_text()
    assert "MMBench" in card and "SEED-Bench" in card and "Transductive" in card
    assert_no_labels(tmp_path / "out")


def test_fingerprint_follows_content(tmp_path, run_cli):
    root = bf.write_imagenet_flat(tmp_path / "flat")
    _, first, _ = build(run_cli, tmp_path / "a", f"imagenet:{root}")
    (root / "ILSVRC2012_val_00000001.JPEG").write_bytes(bf.encoded(bf.photo(11), "JPEG"))
    _, second, _ = build(run_cli, tmp_path / "b", f"imagenet:{root}")
    assert first["sources"][0]["fingerprint"] != second["sources"][0]["fingerprint"]
    assert first["version"] != second["version"]


@pytest.mark.parametrize(
    "make,spec,message",
    [
        (lambda p: None, "mmbench:{p}/missing.tsv", "does not exist"),
        (lambda p: (p / "x.csv").write_text("a,b"), "mmbench:{p}/x.csv", "expected a .tsv or .parquet file"),
        (lambda p: (p / "empty").mkdir(), "mmbench:{p}/empty", "no tables in"),
        (
            lambda p: pq.write_table(__import__("pyarrow").table({"text": ["a"]}), p / "t.parquet"),
            "mmbench:{p}/t.parquet",
            "has no image column",
        ),
        (lambda p: (p / "empty").mkdir(), "imagenet:{p}/empty", "holds no images"),
        (lambda p: None, "mmbench:{p}?colour=red", "has no option 'colour'"),
        (lambda p: None, "hf:{p}/nothing-here", "source hf: cannot load"),
    ],
)
def test_wrong_paths_and_formats_get_one_line(tmp_path, run_cli, make, spec, message):
    make(tmp_path)
    code, err = run_cli("build", "rotation", "--source", spec.format(p=tmp_path), "--out", tmp_path / "out")
    assert code != 0 and message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_a_tsv_cell_reads_without_a_scan_first(tmp_path):
    from ssl4rl_data.tsv import TsvTable

    path = tmp_path / "t.tsv"
    path.write_text("index\tquestion\timage\n0\ta\tAAAA\n1\tb\tBBBB\n2\tc\tCCCC\n", encoding="utf-8")
    table = TsvTable(path, None, None)
    assert table.cell(2, "question") == "c" and table.cell(0, "image") == "AAAA"
    with pytest.raises(IndexError):
        table.cell(7, "question")


@pytest.mark.parametrize("spec", ["hf:{root}?column=image", "hf:{root}", "imagenet:{root}"])
def test_opening_tables_leaves_the_source_as_it_was(tmp_path, spec):
    # No hidden order: a table source's state is its path and options; opening its tables again changes nothing.
    from ssl4rl_data.source import parse_source

    root = bf.write_imagenet_parquet(tmp_path / "any")
    source = parse_source(spec.format(root=root))
    before = dict(vars(source))
    again = source.open_tables(str(root))
    assert dict(vars(source)).keys() == before.keys()
    assert [t.columns for t in again] == [t.columns for t in source.tables]
    assert [source.image_column(t) for t in again] == ["image"]
