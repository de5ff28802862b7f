"""Probes of a hostile test run (issue 19): no hang, no silent loss, no wrong publication, one line per mistake.

Probes that hung or grew without bound on the old code run in a subprocess with a time and memory
limit, so a regression fails the test instead of stalling the suite.
"""

import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from PIL import Image

from conftest import gradient, jpeg_bytes, read_rows

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "train"))


def card(folder) -> dict:
    from ssl4rl_data.card import read_provenance

    return read_provenance(folder)


def one_line(code, err):
    assert code != 0, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err


def cli_process(*args, timeout=60, memory=2 << 30):
    """`ssl4rl-data ARGS` in a fresh process with a wall-clock and address-space limit."""
    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))

    try:
        done = subprocess.run([sys.executable, "-m", "ssl4rl_data.cli", *map(str, args)], capture_output=True,
                              text=True, timeout=timeout, preexec_fn=limit, cwd=ROOT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"ssl4rl-data {' '.join(map(str, args))} did not finish in {timeout} s")
    return done.returncode, done.stderr


def python_seconds(code: str, timeout=20) -> float:
    """Run `code` in a fresh interpreter; the seconds it took (fails past `timeout`)."""
    try:
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"did not finish in {timeout} s: {code[:200]}")
    assert done.returncode == 0, done.stderr
    return float(done.stdout.strip().splitlines()[-1])


@pytest.fixture
def two_photos(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for index, size in enumerate([(320, 240), (256, 300)]):
        (folder / f"p{index}.jpg").write_bytes(jpeg_bytes(gradient(*size).rotate(90 * index)))
    return folder


# --- Hangs and unbounded memory -------------------------------------------------------------------------


def test_fifo_in_a_folder_is_skipped_not_waited_on(tmp_path, two_photos):
    os.mkfifo(two_photos / "x.jpg")
    code, err = cli_process("build", "rotation", "--source", f"folder:{two_photos}", "--out", tmp_path / "d", "-q",
                            timeout=60)
    assert code == 0, err
    assert "not-a-file 1" in err
    assert card(tmp_path / "d")["skipped"]["not-a-file"] == 1 and len(read_rows(tmp_path / "d")) == 2


def test_symlink_to_dev_zero_is_skipped_with_bounded_memory(tmp_path, two_photos):
    (two_photos / "z.jpg").symlink_to("/dev/zero")
    code, err = cli_process("build", "rotation", "--source", f"folder:{two_photos}", "--out", tmp_path / "d", "-q",
                            timeout=60, memory=3 << 30)
    assert code == 0, err
    assert card(tmp_path / "d")["skipped"]["not-a-file"] == 1


def test_files_over_max_file_bytes_are_skipped_and_counted(tmp_path, two_photos, run_cli):
    big = jpeg_bytes(gradient(1200, 1000))
    (two_photos / "big.jpg").write_bytes(big)
    code, err = run_cli("build", "rotation", "--source", f"folder:{two_photos}", "--out", tmp_path / "d", "-q",
                        "--max-file-bytes", len(big) - 1)
    assert code == 0, err
    assert "file-too-large 1" in err and card(tmp_path / "d")["skipped"] == {"file-too-large": 1}
    code, err = run_cli("build", "rotation", "--source", f"folder:{two_photos}", "--out", tmp_path / "e", "-q",
                        "--max-file-bytes", 0)
    one_line(code, err)


REWARD_TIMING = """
import time
from ssl4rl_data.rewards import accuracy_reward, format_reward
from eval_data import extract_choice
texts = [{texts}]
started = time.perf_counter()
for text in texts:
    accuracy_reward([text], answer=["90"], task=["rotation"])
    accuracy_reward([text], answer=["2,1,3,4"], task=["jigsaw"])
    format_reward([text])
    extract_choice(text, {{"A": "a cat", "B": "a dog"}})
print((time.perf_counter() - started) / len(texts))
"""


@pytest.mark.parametrize("shape", [
    "'<answer>' * 16000",
    "'<think>a</think> <answer>' * 12000",
    "'<answer>' * 131072",
    "'<think>' + 'x' * 1_000_000 + '</think> <answer>' + ' ' * 1000 + '</answer>x'",
    "'<think>a</think>' + ' ' * 1_000_000 + '<answer>1</answer>' + '</think>' * 10000",
    "'answer' + ' ' * 1_000_000 + 'x'",
    "'The answer is ' * 70000",
    "'<answer>' + '1,' * 500_000 + '</answer>'",
])
def test_rewards_and_extraction_are_linear(shape):
    code = REWARD_TIMING.format(texts=shape)
    sys_path = f"import sys; sys.path.insert(0, {str(ROOT / 'train')!r})\n"
    assert python_seconds(sys_path + code, timeout=30) < 1.0


def test_reward_semantics_are_kept():
    from ssl4rl_data.rewards import extract_answer, format_reward

    assert extract_answer("<answer>a<answer>b</answer>") == "a<answer>b"
    assert extract_answer("x</answer><answer> 7 </answer>") == "7"
    assert extract_answer("<answer>open") is None
    shapes = ["<think>a</think>\n<answer>b</answer>", " <think></think><answer></answer> ",
              "<think>a</think> x <answer>b</answer>", "<think>a</think><answer>b</answer> more",
              "<think>a</think></think> <answer>b</answer><answer>c</answer>", "<think></answer>",
              "<think>a<answer>b</answer>", "<think>x</think> <answer>y"]
    assert format_reward(shapes) == [1.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0]


def test_reward_lists_of_different_lengths_are_an_error():
    from ssl4rl_data.rewards import TaskAccuracy, accuracy_reward

    with pytest.raises(ValueError, match="lengths"):
        accuracy_reward(["<answer>90</answer>"] * 2, answer=["90"], task=["rotation"] * 2)
    with pytest.raises(ValueError, match="lengths"):
        TaskAccuracy("rotation")(["<answer>90</answer>"], answer=["90"], task=["rotation", "rotation"])


# --- Silent data loss -----------------------------------------------------------------------------------


def write_tsv(path, questions, extra_rows=(), header="index\tquestion\tA\tB\tanswer\tcategory\timage"):
    """An MMBench TSV written by hand (as people do): a quote inside a field is not escaped."""
    import benchmark_files as bf

    lines = [header]
    for index, question in enumerate(questions):
        lines.append(f"{index}\t{question}\ta cat\ta dog\tA\tcat-{index}\t{bf.b64(bf.photo(index))}")
    path.write_bytes(("\n".join(lines) + "\n").encode() + b"".join(extra_rows))
    return path


QUESTIONS = ["How big?", 'Is the 5" screen on?', "What colour?", "Which one?", "Where?", 'Say "hi"']


def test_tsv_with_an_unbalanced_quote_loses_no_row(tmp_path, run_cli):
    from eval_data import read_mmbench

    tsv = write_tsv(tmp_path / "MMBench_DEV_EN.tsv", QUESTIONS)
    code, err = run_cli("build", "rotation", "--source", f"mmbench:{tsv}", "--out", tmp_path / "d", "-q")
    assert code == 0, err
    assert len(read_rows(tmp_path / "d")) == 6
    items = read_mmbench(tsv)
    assert [item.question for item in items] == QUESTIONS


def test_tsv_rows_that_cannot_be_read_are_counted(tmp_path, run_cli):
    from eval_data import read_mmbench

    tsv = write_tsv(tmp_path / "MMBench_DEV_EN.tsv", QUESTIONS[:3],
                    extra_rows=[b"7\tshort row\n", b"8\tcaf\xe9 \xff\ta\tb\tA\tc\t" + __import__("benchmark_files").b64(
                        __import__("benchmark_files").photo(8)).encode() + b"\n", b"inf\tq\ta\tb\tA\tc\t3\n"])
    code, err = run_cli("build", "rotation", "--source", f"mmbench:{tsv}", "--out", tmp_path / "d", "-q")
    assert code == 0, err
    assert len(read_rows(tmp_path / "d")) == 4  # three rows, plus the one with a non-UTF-8 byte
    record = card(tmp_path / "d")
    assert record["skipped"] == {"unreadable-row": 1} and "unreadable-row 1" in err
    assert record["sources"][0]["excluded_rows"] == {"unresolved-image-reference": 1}
    items = read_mmbench(tsv)
    assert len(items) == 4


def test_a_tsv_row_over_the_limit_is_skipped_not_held(tmp_path, run_cli):
    tsv = write_tsv(tmp_path / "MMBench_DEV_EN.tsv", QUESTIONS)
    sizes = sorted(len(line) for line in tsv.read_bytes().splitlines()[1:])
    code, err = run_cli("build", "rotation", "--source", f"mmbench:{tsv}", "--out", tmp_path / "d", "-q",
                        "--max-file-bytes", sizes[-1] - 1)
    assert code == 0, err
    assert card(tmp_path / "d")["skipped"] == {"row-too-large": 1}
    assert len(read_rows(tmp_path / "d")) == 5


def test_second_build_to_the_same_out_is_refused_at_the_rename(tmp_path, two_photos):
    from ssl4rl_data.build import BuildOptions, build
    from ssl4rl_data.errors import UserError
    from ssl4rl_data.registry import get_task
    from ssl4rl_data.source import parse_source

    out = tmp_path / "d"
    task = get_task("rotation")(get_task("rotation").Config())

    def another_build_finishes_first(folder, result):
        out.mkdir()
        (out / "theirs.txt").write_text("first build")

    with pytest.raises(UserError, match="kept in"):
        build(task, [parse_source(f"folder:{two_photos}")], ["folder"], BuildOptions(), out, progress=False,
              write_card=another_build_finishes_first)
    assert (out / "theirs.txt").read_text() == "first build"
    assert list(tmp_path.glob(".d.partial-*/data/*.parquet"))


def test_a_build_of_an_out_locked_by_another_build_is_refused(tmp_path, two_photos, run_cli):
    import fcntl

    lock = tmp_path / ".d.lock"
    with open(lock, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        handle.write("4242\n")
        handle.flush()
        code, err = run_cli("build", "rotation", "--source", f"folder:{two_photos}", "--out", tmp_path / "d", "-q")
    one_line(code, err)
    assert "4242" in err and not (tmp_path / "d").exists()


@pytest.mark.parametrize("where", ["same", "inside", "contains"])
def test_out_overlapping_a_source_is_refused(tmp_path, two_photos, run_cli, where):
    out = {"same": two_photos, "inside": two_photos / "out", "contains": tmp_path}[where]
    before = sorted(p.name for p in two_photos.iterdir())
    code, err = run_cli("build", "rotation", "--source", f"folder:{two_photos}", "--out", out, "-q", "--overwrite")
    one_line(code, err)
    assert "source" in err
    assert sorted(p.name for p in two_photos.iterdir()) == before


def interrupt_after_first_shard(monkeypatch):
    from ssl4rl_data import build as build_module

    original, built = build_module.ShardBuilder.build_shard, []

    def interrupted(self, index):
        if built:
            raise KeyboardInterrupt
        built.append(index)
        return original(self, index)

    monkeypatch.setattr(build_module.ShardBuilder, "build_shard", interrupted)
    return lambda: monkeypatch.setattr(build_module.ShardBuilder, "build_shard", original)


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_damaged_shard_record_is_rebuilt(tmp_path, photo_folder, run_cli, monkeypatch, overwrite):
    args = ["build", "rotation", "--source", f"folder:{photo_folder}", "--out", tmp_path / "d", "-q"]
    restore = interrupt_after_first_shard(monkeypatch)
    assert run_cli(*args)[0] == 130
    restore()
    records = list(tmp_path.glob(".d.partial-*/.shards/*.json"))
    assert len(records) == 1
    records[0].write_text("")  # the disk was full when it was written
    code, err = run_cli(*args, *(["--overwrite"] if overwrite else []))
    assert code == 0, err
    run_cli("build", "rotation", "--source", f"folder:{photo_folder}", "--out", tmp_path / "fresh", "-q")
    assert [f.read_bytes() for f in sorted((tmp_path / "d").glob("data/*"))] == \
        [f.read_bytes() for f in sorted((tmp_path / "fresh").glob("data/*"))]


def session_processes(session: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[3]) == session and fields[0] != "Z":
                found.append(int(entry.name))
    return found


def test_workers_die_with_the_main_process(tmp_path):
    import signal

    folder = tmp_path / "large"
    folder.mkdir()
    for index in range(64):  # shards that take seconds: workers that outlive the main process are seen
        (folder / f"{index}.jpg").write_bytes(jpeg_bytes(gradient(1600 + index, 1200)))
    command = [sys.executable, "-m", "ssl4rl_data.cli", "build", "contrastive", "--source", f"folder:{folder}",
               "--out", str(tmp_path / "d"), "-q", "--num-proc", "2", "--max-side", "0"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                               cwd=ROOT)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not list(tmp_path.glob(".d.partial-*/data/*")):
            time.sleep(0.01)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        deadline = time.monotonic() + 0.5
        while session_processes(process.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert session_processes(process.pid) == []
    finally:
        for pid in session_processes(process.pid):
            os.kill(pid, signal.SIGKILL)


def test_imagenet_folder_skips_and_counts_what_it_cannot_read(tmp_path, run_cli, monkeypatch):
    import benchmark_files as bf

    root = bf.write_imagenet_folder(tmp_path / "imagenet")
    (root / "train" / "n01440764" / "loop.JPEG").symlink_to("loop.JPEG")
    (root / "train" / "n01440764" / "gone.JPEG").symlink_to(tmp_path / "missing.JPEG")
    locked = root / "train" / "n09999999"
    locked.mkdir()
    (locked / "x.JPEG").write_bytes(bf.encoded(bf.photo(11), "JPEG"))
    locked.chmod(0)
    scandir = os.scandir

    def refusing(path="."):
        if isinstance(path, (str, os.PathLike)) and os.fspath(path) == str(locked):
            raise PermissionError(13, "Permission denied", str(locked))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", refusing)  # root reads a chmod-000 folder anyway
    try:
        code, err = run_cli("build", "rotation", "--source", f"imagenet:{root}", "--out", tmp_path / "d", "-q")
    finally:
        locked.chmod(0o755)
    assert code == 0, err
    skipped = card(tmp_path / "d")["skipped"]
    assert skipped == {"unreadable": 2, "unreadable-folder": 1}, skipped
    assert "unreadable 2" in err and "unreadable-folder 1" in err
