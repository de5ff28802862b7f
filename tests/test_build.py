"""`ssl4rl-data build` end to end: labels through JPEG, determinism, bad images, errors, round trip."""

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import decode_images, gradient, jpeg_bytes, read_rows, stripes
from datasets import load_dataset
from PIL import Image

from ssl4rl_data.registry import tasks

TASKS = list(tasks())  # every registered task: a new one gets the determinism test without a line here


@pytest.fixture(scope="module")
def gradient_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gradients")
    for index, (width, height) in enumerate([(640, 480), (480, 640), (333, 251), (500, 500), (777, 301), (256, 400)]):
        image = gradient(width, height).rotate(0)
        (folder / f"g{index}.jpg").write_bytes(jpeg_bytes(image))
    return folder


def card_metadata(folder):
    text = (folder / "README.md").read_text()
    return yaml.safe_load(text.split("---")[1])


def test_rotation_labels_hold_after_jpeg(tmp_path, run_cli, gradient_folder):
    code, _ = run_cli("build", "rotation", "--source", f"folder:{gradient_folder}", "--out", tmp_path / "d", "-q")
    assert code == 0
    rows = read_rows(tmp_path / "d")
    assert len(rows) == 6
    for row in rows:
        first, second = decode_images(row)
        assert first.shape == second.shape
        errors = [np.abs(np.rot90(second, k=-k) - first).mean() for k in range(4)]
        assert int(np.argmin(errors)) * 90 == int(row["answer"])
        assert min(errors) < 3 < sorted(errors)[1]


def test_jigsaw_labels_hold_after_jpeg(tmp_path, run_cli, gradient_folder):
    code, _ = run_cli(
        "build", "jigsaw", "--grid", "2x3", "--source", f"folder:{gradient_folder}", "--out", tmp_path / "d", "-q"
    )
    assert code == 0
    for row in read_rows(tmp_path / "d"):
        tiles = decode_images(row)
        order = [int(n) - 1 for n in row["answer"].split(",")]
        red = np.array([[tiles[order[r * 3 + c]][..., 0].mean() for c in range(3)] for r in range(2)])
        green = np.array([[tiles[order[r * 3 + c]][..., 1].mean() for c in range(3)] for r in range(2)])
        assert np.all(np.diff(red, axis=1) > 0) and np.all(np.diff(green, axis=0) > 0)


def test_position_labels_hold_after_jpeg(tmp_path, run_cli, gradient_folder):
    code, _ = run_cli(
        "build", "position", "--source", f"folder:{gradient_folder}", "--seed", "3", "--out", tmp_path / "d", "-q"
    )
    assert code == 0
    for row in read_rows(tmp_path / "d"):
        full, crop = decode_images(row)
        middle_red = full[:, full.shape[1] // 2, 0].mean()
        middle_green = full[full.shape[0] // 2, :, 1].mean()
        vertical = "top" if crop[..., 1].mean() < middle_green else "bottom"
        horizontal = "left" if crop[..., 0].mean() < middle_red else "right"
        assert f"{vertical}-{horizontal}" == row["answer"]


def test_contrastive_negatives_pair_different_content(tmp_path, run_cli):
    folder = tmp_path / "src"
    folder.mkdir()
    for index, period in enumerate([8, 12, 16, 24, 32, 40]):
        stripes(320, vertical=index % 2 == 0, period=period).save(folder / f"s{index}.png")
    stripes(320, vertical=True, period=8).save(folder / "s0_again.bmp")  # same pixels, other file and format
    (folder / "s1_copy.png").write_bytes((folder / "s1.png").read_bytes())  # same bytes
    code, err = run_cli(
        "build", "contrastive", "--source", f"folder:{folder}", "--out", tmp_path / "d", "--seed", "5", "-q"
    )
    assert code == 0
    rows = read_rows(tmp_path / "d")
    assert "duplicate images dropped: 1" in err
    assert len(rows) == 7
    for row in rows:
        ids = row["source_id"].split("|")
        if row["answer"] == "positive":
            assert len(ids) == 1
        else:
            assert len(ids) == 2 and ids[0] != ids[1]
            assert {ids[0], ids[1]} != {"folder:s0.png", "folder:s0_again.bmp"}
    assert {"positive", "negative"} <= {row["answer"] for row in rows}


@pytest.mark.parametrize("task", TASKS)
def test_same_command_same_bytes_whatever_num_proc(tmp_path, run_cli, photo_folder, task):
    outputs = []
    for name, procs in [("a", 1), ("b", 2), ("c", 1)]:
        code, _ = run_cli(
            "build", task, "--source", f"folder:{photo_folder}", "--num-proc", procs, "--out", tmp_path / name, "-q"
        )
        assert code == 0
        files = sorted((tmp_path / name / "data").glob("*.parquet"))
        assert len(files) == 3  # 72 images in shards of 32: work for both processes
        outputs.append([f.read_bytes() for f in files])
    assert outputs[0] == outputs[1] == outputs[2]
    assert card_metadata(tmp_path / "a")["ssl4rl"]["version"] == card_metadata(tmp_path / "b")["ssl4rl"]["version"]


def test_different_seed_gives_different_answers(tmp_path, run_cli, photo_folder):
    answers = []
    for seed in (0, 1):
        run_cli(
            "build",
            "jigsaw",
            "--source",
            f"folder:{photo_folder}",
            "--seed",
            seed,
            "--out",
            tmp_path / str(seed),
            "-q",
        )
        answers.append([r["answer"] for r in read_rows(tmp_path / str(seed))])
    assert len(answers[0]) == len(answers[1]) > 50
    assert sum(a != b for a, b in zip(*answers)) > len(answers[0]) // 2


@pytest.fixture(scope="module")
def bad_folder(tmp_path_factory):
    """One file for every kind of trouble a real source holds."""
    folder = tmp_path_factory.mktemp("bad")
    upright = gradient(320, 240)
    (folder / "good.jpg").write_bytes(jpeg_bytes(upright))
    (folder / "duplicate.jpg").write_bytes(jpeg_bytes(upright))
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated; display by turning 90 degrees clockwise
    (folder / "exif_rotated.jpg").write_bytes(jpeg_bytes(upright.transpose(Image.Transpose.ROTATE_90), exif=exif))
    upright.convert("CMYK").save(folder / "cmyk.jpg", quality=95)
    sixteen = (np.asarray(upright.convert("L"), dtype=np.uint16) * 257).astype(np.uint16)
    Image.fromarray(sixteen).save(folder / "sixteen_bit.png")
    palette = upright.convert("P", palette=Image.Palette.ADAPTIVE)
    palette.info["transparency"] = 0
    palette.save(folder / "palette_alpha.png", transparency=0)
    upright.convert("L").save(folder / "grey.png")
    upright.convert("LA").save(folder / "grey_alpha.png")
    upright.convert("1").save(folder / "bilevel.png")
    upright.convert("RGBA").save(folder / "rgba.png")
    (folder / "truncated.jpg").write_bytes(jpeg_bytes(gradient(640, 480))[:3000])
    (folder / "not_an_image.jpg").write_text("hello")
    (folder / "empty.png").write_bytes(b"")
    gradient(20, 20).save(folder / "tiny.png")
    Image.new("1", (10000, 10000)).save(folder / "bomb.png")
    (folder / "notes.txt").write_text("not an image file: ignored by extension")
    return folder


def test_bad_images_are_skipped_and_counted(tmp_path, run_cli, bad_folder):
    code, err = run_cli("build", "position", "--source", f"folder:{bad_folder}", "--out", tmp_path / "d", "-q")
    assert code == 0
    rows = read_rows(tmp_path / "d")
    assert len(rows) == 9  # good, exif, cmyk, 16-bit, palette+alpha, grey, grey+alpha, bilevel, rgba
    skipped = card_metadata(tmp_path / "d")["ssl4rl"]["skipped"]
    assert skipped == {"not-an-image": 2, "too-large": 1, "too-small": 1, "unreadable": 1}
    assert "skipped: not-an-image 2, too-large 1, too-small 1, unreadable 1" in err
    assert "duplicate images dropped: 1" in err
    by_id = {row["source_id"]: row for row in rows}
    # EXIF applied: the position label of the rotated file is right on the upright pixels.
    full, crop = decode_images(by_id["folder:exif_rotated.jpg"])
    assert full.shape[:2] == (224, 320)
    vertical = "top" if crop[..., 1].mean() < full[full.shape[0] // 2, :, 1].mean() else "bottom"
    horizontal = "left" if crop[..., 0].mean() < full[:, full.shape[1] // 2, 0].mean() else "right"
    assert by_id["folder:exif_rotated.jpg"]["answer"] == f"{vertical}-{horizontal}"
    for row in rows:
        for image in row["images"]:
            assert Image.open(io.BytesIO(image["bytes"])).mode == "RGB"


def test_load_dataset_round_trip(tmp_path, run_cli):
    code, _ = run_cli("build", "jigsaw", "--grid", "3", "--out", tmp_path / "d", "-q")
    assert code == 0
    dataset = load_dataset(str(tmp_path / "d"), split="train")
    rows = read_rows(tmp_path / "d")
    assert len(dataset) == len(rows) > 0
    row = dataset[0]
    assert set(row) == {"prompt", "images", "answer", "task", "source_id", "difficulty"}
    assert 0 <= row["difficulty"] <= 1  # jigsaw's checker scores every clean row
    content = row["prompt"][0]["content"]
    assert row["prompt"][0]["role"] == "user"
    assert [part["type"] for part in content] == ["image"] * 9 + ["text"]
    assert "<answer>" in content[-1]["text"] and "<think>" in content[-1]["text"]
    assert len(row["images"]) == 9 and all(image.mode == "RGB" for image in row["images"])
    meta = card_metadata(tmp_path / "d")
    assert meta["configs"][0]["data_files"][0]["path"] == "data/train-*"
    assert meta["ssl4rl"]["parameters"] == {"grid": "3"}
    assert meta["ssl4rl"]["rows"] == len(rows)
    assert sum(meta["ssl4rl"]["answers"].values()) == len(rows)


@pytest.mark.parametrize(
    "args,message",
    [
        (["build", "spin"], "unknown task 'spin'"),
        (["build", "jigsaw", "--grid", "7"], "--grid sides must be between 2 and 6"),
        (["build", "jigsaw", "--grid", "abc"], "--grid must be N or RxC"),
        (["build", "rotation", "--step", "7"], "--step must divide 360"),
        (["build", "position", "--crop-min", "0.9", "--crop-max", "0.5"], "need 0 < --crop-min <= --crop-max <= 1"),
        (["build", "contrastive", "--strength", "huge"], "--strength must be one of"),
        (["build", "rotation", "--source", "folder:/no/such/dir"], "/no/such/dir does not exist"),
        (["build", "rotation", "--source", "folder"], "needs a path"),
        (["build", "rotation", "--source", "nosuch:x"], "unknown source 'nosuch'"),
        (["build", "rotation", "--limit", "0"], "--limit must be at least 1"),
        (["build", "rotation", "--step", "ninety"], "'ninety' is not a valid integer"),
    ],
)
def test_user_mistakes_get_one_line(tmp_path, run_cli, args, message):
    code, err = run_cli(*args, "--out", tmp_path / "d") if args[0] == "build" and len(args) > 1 else run_cli(*args)
    assert code != 0
    assert message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "d").exists()


def test_existing_output_is_kept_without_overwrite(tmp_path, run_cli):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "keep.txt").write_text("mine")
    code, err = run_cli("build", "rotation", "--out", tmp_path / "d", "-q")
    assert code != 0 and "already exists" in err
    assert (tmp_path / "d" / "keep.txt").read_text() == "mine"
    code, err = run_cli("build", "rotation", "--out", tmp_path / "d", "--overwrite", "-q")
    assert code != 0 and "not a dataset written by ssl4rl-data" in err and len(err.strip().splitlines()) == 1
    assert (tmp_path / "d" / "keep.txt").read_text() == "mine"  # --overwrite never deletes someone's files
    (tmp_path / "d" / "keep.txt").unlink()  # an empty folder may be replaced, and then the dataset built there
    assert run_cli("build", "rotation", "--limit", "2", "--out", tmp_path / "d", "--overwrite", "-q")[0] == 0
    first = read_rows(tmp_path / "d")
    code, _ = run_cli("build", "rotation", "--limit", "3", "--out", tmp_path / "d", "--overwrite", "-q")
    assert code == 0 and len(read_rows(tmp_path / "d")) == 3 != len(first)


@pytest.mark.parametrize(
    "program",
    [[str(Path(sys.executable).parent / "ssl4rl-data")], [sys.executable, "-m", "ssl4rl_data.cli"]],
    ids=["console script", "module"],
)
def test_console_script_builds_the_default_source_and_records_its_command(tmp_path, program):
    result = subprocess.run(
        [*program, "build", "rotation", "--out", "d"], capture_output=True, text=True, check=False, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert "wrote 12 rows" in result.stderr
    assert len(read_rows(tmp_path / "d")) == 12
    recorded = (
        "ssl4rl-data build rotation --out d"
        if len(program) == 1
        else "python -m ssl4rl_data.cli build rotation --out d"
    )
    assert f"command: {recorded}" in (tmp_path / "d" / "README.md").read_text()


def test_preview_draws_a_contact_sheet(tmp_path, run_cli):
    run_cli("build", "jigsaw", "--out", tmp_path / "d", "-q")
    code, _ = run_cli("preview", tmp_path / "d", "--out", tmp_path / "sheet.png", "--rows", "3")
    assert code == 0
    sheet = Image.open(tmp_path / "sheet.png")
    assert sheet.size == (4 * 160, 3 * (160 + 24))
    assert np.asarray(sheet).std() > 10  # pictures, not a blank page


def test_write_failures_get_one_line(tmp_path, run_cli):
    """The output folder cannot be made (a file stands in its way): an OSError, told in one line."""
    (tmp_path / "file").write_text("in the way")
    code, err = run_cli("build", "rotation", "--limit", "2", "--out", tmp_path / "file" / "d", "-q")
    assert code == 1 and "is not a directory" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_version_is_the_generator_builds_record():
    """`--version` names the generator the cards record (pip's metadata of an old editable install may lag)."""
    from ssl4rl_data import __version__

    result = subprocess.run([Path(sys.executable).parent / "ssl4rl-data", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == f"ssl4rl-data, version {__version__}"
