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
from conftest import gradient, jpeg_bytes, read_rows

ROOT = Path(__file__).resolve().parents[1]


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
        done = subprocess.run(
            [str(Path(sys.executable).parent / "ssl4rl-data"), *map(str, args)],
            capture_output=True,
            text=True,
            timeout=timeout,
            preexec_fn=limit,
            cwd=ROOT,
        )
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
    code, err = cli_process(
        "build", "rotation", "--source", f"folder:{two_photos}", "--out", tmp_path / "d", "-q", timeout=60
    )
    assert code == 0, err
    assert "not-a-file 1" in err
    assert card(tmp_path / "d")["skipped"]["not-a-file"] == 1 and len(read_rows(tmp_path / "d")) == 2


def test_symlink_to_dev_zero_is_skipped_with_bounded_memory(tmp_path, two_photos):
    (two_photos / "z.jpg").symlink_to("/dev/zero")
    code, err = cli_process(
        "build",
        "rotation",
        "--source",
        f"folder:{two_photos}",
        "--out",
        tmp_path / "d",
        "-q",
        timeout=60,
        memory=3 << 30,
    )
    assert code == 0, err
    assert card(tmp_path / "d")["skipped"]["not-a-file"] == 1


def test_files_over_max_file_bytes_are_skipped_and_counted(tmp_path, two_photos, run_cli):
    big = jpeg_bytes(gradient(1200, 1000))
    (two_photos / "big.jpg").write_bytes(big)
    code, err = run_cli(
        "build",
        "rotation",
        "--source",
        f"folder:{two_photos}",
        "--out",
        tmp_path / "d",
        "-q",
        "--max-file-bytes",
        len(big) - 1,
    )
    assert code == 0, err
    assert "file-too-large 1" in err and card(tmp_path / "d")["skipped"] == {"file-too-large": 1}
    code, err = run_cli(
        "build", "rotation", "--source", f"folder:{two_photos}", "--out", tmp_path / "e", "-q", "--max-file-bytes", 0
    )
    one_line(code, err)


REWARD_TIMING = """
import time
from ssl4rl_data.rewards import accuracy_reward, format_reward
from ssl4rl_train.eval_data import extract_choice
texts = [{texts}]
started = time.perf_counter()
for text in texts:
    accuracy_reward([text], answer=["90"], task=["rotation"])
    accuracy_reward([text], answer=["2,1,3,4"], task=["jigsaw"])
    format_reward([text])
    extract_choice(text, {{"A": "a cat", "B": "a dog"}})
print((time.perf_counter() - started) / len(texts))
"""


@pytest.mark.parametrize(
    "shape",
    [
        "'<answer>' * 16000",
        "'<think>a</think> <answer>' * 12000",
        "'<answer>' * 131072",
        "'answer' + ' ' * 1_000_000 + 'x'",
    ],
)
def test_rewards_and_extraction_are_linear(shape):
    assert python_seconds(REWARD_TIMING.format(texts=shape), timeout=30) < 1.0


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
    from ssl4rl_train.eval_data import read_mmbench

    tsv = write_tsv(tmp_path / "MMBench_DEV_EN.tsv", QUESTIONS)
    code, err = run_cli("build", "rotation", "--source", f"mmbench:{tsv}", "--out", tmp_path / "d", "-q")
    assert code == 0, err
    assert len(read_rows(tmp_path / "d")) == 6
    items = read_mmbench(tsv)
    assert [item.question for item in items] == QUESTIONS


def test_tsv_rows_that_cannot_be_read_are_counted(tmp_path, run_cli):
    from ssl4rl_train.eval_data import read_mmbench

    tsv = write_tsv(
        tmp_path / "MMBench_DEV_EN.tsv",
        QUESTIONS[:3],
        extra_rows=[
            b"7\tshort row\n",
            b"8\tcaf\xe9 \xff\ta\tb\tA\tc\t"
            + __import__("benchmark_files").b64(__import__("benchmark_files").photo(8)).encode()
            + b"\n",
            b"inf\tq\ta\tb\tA\tc\t3\n",
        ],
    )
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
    code, err = run_cli(
        "build",
        "rotation",
        "--source",
        f"mmbench:{tsv}",
        "--out",
        tmp_path / "d",
        "-q",
        "--max-file-bytes",
        sizes[-1] - 1,
    )
    assert code == 0, err
    assert card(tmp_path / "d")["skipped"] == {"row-too-large": 1}
    assert len(read_rows(tmp_path / "d")) == 5


def test_evaluator_imagenet_folder_lists_no_pipe_or_device(tmp_path):
    import benchmark_files as bf

    from ssl4rl_train.eval_data import read_imagenet

    classes = tmp_path / "LOC_synset_mapping.txt"
    classes.write_text("".join(f"n{index:08d} class {index}\n" for index in range(5)))
    (tmp_path / "imagenet" / "n00000001").mkdir(parents=True)
    bf.photo(0).save(tmp_path / "imagenet" / "n00000001" / "a.JPEG", format="JPEG")
    os.mkfifo(tmp_path / "imagenet" / "n00000001" / "pipe.JPEG")  # reading it later would block generation
    (tmp_path / "imagenet" / "n00000001" / "zero.JPEG").symlink_to("/dev/zero")
    assert len(read_imagenet(tmp_path / "imagenet", classes, distractors=2, seed=0)) == 1


def test_second_build_to_the_same_out_is_refused_at_the_rename(tmp_path, two_photos, monkeypatch):
    from ssl4rl_data.build import BuildOptions, build
    from ssl4rl_data.errors import UserError
    from ssl4rl_data.registry import get_task
    from ssl4rl_data.source import parse_source

    out = tmp_path / "d"
    task = get_task("rotation")(get_task("rotation").Config())

    def another_build_finishes_first(folder, result):
        (out / "data").mkdir(parents=True)  # the other build's dataset: its card and a shard
        (out / "README.md").write_text("---\nssl4rl:\n  version: theirs\n---\n")
        (out / "data" / "theirs.parquet").write_text("first build")

    with pytest.raises(UserError, match="kept in"):
        build(
            task,
            [parse_source(f"folder:{two_photos}")],
            BuildOptions(),
            out,
            progress=False,
            write_card=another_build_finishes_first,
        )
    assert (out / "data" / "theirs.parquet").read_text() == "first build"
    assert list(tmp_path.glob(".d.partial-*/data/*.parquet"))
    from ssl4rl_data import build as build_module

    rebuilt = []
    original = build_module.ShardBuilder.build_shard
    monkeypatch.setattr(
        build_module.ShardBuilder, "build_shard", lambda self, i: rebuilt.append(i) or original(self, i)
    )
    build(task, [parse_source(f"folder:{two_photos}")], BuildOptions(), out, progress=False, overwrite=True)
    assert rebuilt == [] and not (out / "data" / "theirs.parquet").exists()
    assert len(read_rows(out)) == 2  # the staged data reused


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
    assert [f.read_bytes() for f in sorted((tmp_path / "d").glob("data/*"))] == [
        f.read_bytes() for f in sorted((tmp_path / "fresh").glob("data/*"))
    ]


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
    command = [
        sys.executable,
        "-m",
        "ssl4rl_data.cli",
        "build",
        "contrastive",
        "--source",
        f"folder:{folder}",
        "--out",
        str(tmp_path / "d"),
        "-q",
        "--num-proc",
        "2",
        "--max-side",
        "0",
    ]
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, cwd=ROOT
    )
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


# --- Wrong publication ----------------------------------------------------------------------------------

REPO = "tester/hostile"


@pytest.fixture(scope="module")
def built_three_shards(tmp_path_factory, photo_folder):
    from ssl4rl_data.cli import main

    out = tmp_path_factory.mktemp("built") / "d"
    assert main(["build", "rotation", "--source", f"folder:{photo_folder}", "--out", str(out), "-q"]) == 0
    assert len(list(out.glob("data/*.parquet"))) == 3
    return out


def tamper(folder, how, tmp_path):
    shards = sorted(folder.glob("data/*.parquet"))
    if how == "truncated":
        data = shards[0].read_bytes()
        shards[0].write_bytes(data[: len(data) // 2])
    elif how == "swapped":
        first, second = shards[0].read_bytes(), shards[1].read_bytes()
        shards[0].write_bytes(second)
        shards[1].write_bytes(first)
    elif how == "extra-file":
        (folder / "notes.txt").write_text("not built")
    elif how == "extra-shard":
        (folder / "data" / "train-00009-of-00010.parquet").write_bytes(shards[0].read_bytes())
    elif how == "symlink":
        (tmp_path / "secret.txt").write_text("SECRET-TOKEN-CONTENT")
        (folder / "data" / "secret.parquet").symlink_to(tmp_path / "secret.txt")
    elif how == "symlinked-shard":
        copy = tmp_path / "elsewhere.parquet"
        copy.write_bytes(shards[0].read_bytes())
        shards[0].unlink()
        shards[0].symlink_to(copy)


@pytest.mark.parametrize("how", ["truncated", "swapped", "extra-file", "extra-shard", "symlink", "symlinked-shard"])
def test_push_refuses_a_folder_that_differs_from_its_build(tmp_path, run_cli, hub, built_three_shards, how):
    import shutil

    folder = tmp_path / "d"
    shutil.copytree(built_three_shards, folder, symlinks=True)
    tamper(folder, how, tmp_path)
    code, err = run_cli("push", folder, REPO)
    one_line(code, err)
    assert "refusing to push" in err
    published = hub.state.repos.get(REPO)
    assert published is None or not any("data/" in name for files in published.commits.values() for name in files)
    assert not any(b"SECRET-TOKEN-CONTENT" in data for data in hub.state.lfs.values())


def test_an_untouched_folder_still_pushes(tmp_path, run_cli, hub, built_three_shards):
    import shutil

    shutil.copytree(built_three_shards, tmp_path / "d")
    code, err = run_cli("push", tmp_path / "d", REPO)
    assert code == 0, err
    assert sorted(card(tmp_path / "d")["files"]) == sorted(f"data/{p.name}" for p in (tmp_path / "d").glob("data/*"))


def test_dashes_in_paths_do_not_break_the_card(tmp_path, run_cli, hub, two_photos):
    source = tmp_path / "my---photos"
    two_photos.rename(source)
    out = tmp_path / "out---put"  # a fresh process, as a user runs it: the card records the command line
    code, err = cli_process("build", "rotation", "--source", f"folder:{source}", "--out", out, "-q")
    assert code == 0, err
    code, err = run_cli("push", out, REPO)
    assert code == 0, err


@pytest.mark.parametrize("tag", ["main", "bad tag", "../../x", "v1..2", "x.lock", "a:b", "refs/heads/main", "-x", ""])
def test_bad_tag_names_are_refused(tmp_path, run_cli, hub, built_three_shards, tag):
    code, err = run_cli("push", built_three_shards, REPO, "--tag", tag)
    one_line(code, err)
    assert "tag" in err and REPO not in hub.state.repos


def test_a_branch_name_is_not_taken_as_a_tag(run_cli, hub, built_three_shards):
    from huggingface_hub import HfApi

    HfApi().create_repo(REPO, repo_type="dataset")
    HfApi().create_branch(REPO, branch="dev", repo_type="dataset")
    code, err = run_cli("push", built_three_shards, REPO, "--tag", "dev")
    one_line(code, err)
    assert "branch" in err


def test_the_card_command_carries_no_local_paths(tmp_path, two_photos):
    code, err = cli_process("build", "rotation", "--source", f"folder:{two_photos}", "--out", tmp_path / "d", "-q")
    assert code == 0, err
    text = (tmp_path / "d" / "README.md").read_text()
    assert str(tmp_path) not in text
    assert card(tmp_path / "d")["command"] == "ssl4rl-data build rotation --source folder:photos --out d -q"


# --- Tracebacks where one line was promised ------------------------------------------------------------


def test_a_file_name_that_is_not_utf8_is_read(tmp_path, two_photos, run_cli):
    name = os.path.join(os.fsencode(two_photos), b"caf\xe9.jpg")
    with open(name, "wb") as handle:
        handle.write(jpeg_bytes(gradient(300, 200)))
    code, err = run_cli("build", "rotation", "--source", f"folder:{two_photos}", "--out", tmp_path / "d", "-q")
    assert code == 0, err
    assert "folder:caf%E9.jpg" in {row["source_id"] for row in read_rows(tmp_path / "d")}


@pytest.mark.parametrize("content", [b"", b"PAR1 not really a parquet file"])
def test_a_damaged_parquet_file_is_named_in_one_line(tmp_path, run_cli, content):
    from ssl4rl_data.errors import UserError
    from ssl4rl_train.eval_data import read_mmbench

    (tmp_path / "dev.parquet").write_bytes(content)
    code, err = run_cli("build", "rotation", "--source", f"mmbench:{tmp_path}/dev.parquet", "--out", tmp_path / "d")
    one_line(code, err)
    assert "dev.parquet" in err
    with pytest.raises(UserError, match="dev.parquet"):
        read_mmbench(tmp_path / "dev.parquet")


@pytest.mark.parametrize("how", ["truncated", "not-a-tar"])
def test_a_damaged_tar_is_named_in_one_line(tmp_path, run_cli, how):
    import benchmark_files as bf

    root = bf.write_imagenet_tars(tmp_path / "tars")
    shard = sorted(root.glob("*.tar"))[0]
    data = shard.read_bytes()
    shard.write_bytes(data[:700] if how == "truncated" else b"\x89PNG not a tar at all" * 40)
    code, err = run_cli("build", "rotation", "--source", f"imagenet:{root}", "--out", tmp_path / "d", "-q")
    one_line(code, err)
    assert shard.name in err


def test_an_invalid_repo_id_gets_one_line(run_cli, hub, built_three_shards):
    for repo in ["not a repo!", "a/b/c", "-bad/--name"]:
        code, err = run_cli("push", built_three_shards, repo)
        one_line(code, err)


def test_a_connection_dropped_mid_upload_gets_one_line(run_cli, hub, built_three_shards, monkeypatch):
    import socket

    from ssl4rl_data import hub_handler

    def drop(self, oid):
        self.connection.shutdown(socket.SHUT_RDWR)

    monkeypatch.setattr(hub_handler.Handler, "lfs_upload", drop)
    monkeypatch.setattr(time, "sleep", lambda seconds: None)  # the client's retries, without their back-off
    code, err = run_cli("push", built_three_shards, REPO)
    one_line(code, err)
    assert "cannot reach the Hub" in err or "push to" in err


def test_a_server_dying_mid_upload_gets_one_line(run_cli, hub, built_three_shards, monkeypatch):
    import threading

    from ssl4rl_data import hub_handler

    def die(self, oid):
        threading.Thread(target=hub.stop).start()
        self.connection.close()

    monkeypatch.setattr(hub_handler.Handler, "lfs_upload", die)
    monkeypatch.setattr(time, "sleep", lambda seconds: None)
    code, err = run_cli("push", built_three_shards, REPO)
    one_line(code, err)
    assert "cannot reach the Hub" in err or "push to" in err


@pytest.mark.parametrize(
    "text", ["---\nssl4rl: [unclosed\n---\n", "---\nssl4rl:\n  version: 1\n---\n", "\x00\x01\x02binary"]
)
def test_a_corrupt_card_gets_one_line(tmp_path, run_cli, hub, built_three_shards, text):
    import shutil

    shutil.copytree(built_three_shards, tmp_path / "d")
    (tmp_path / "d" / "README.md").write_bytes(text.encode() + b"\xff\xfe")
    code, err = run_cli("push", tmp_path / "d", REPO)
    one_line(code, err)


def test_a_binary_recipe_gets_one_line(tmp_path, run_cli):
    (tmp_path / "r.yaml").write_bytes(bytes(range(256)))
    one_line(*run_cli("build", "--recipe", tmp_path / "r.yaml", "--out", tmp_path / "d"))
    one_line(*run_cli("build", "rotation", "--recipe", tmp_path / "r.yaml", "--out", tmp_path / "d"))


def test_preview_mistakes_get_one_line(tmp_path, run_cli, built_three_shards):
    one_line(*run_cli("preview", built_three_shards, "--rows", "0", "--out", tmp_path / "x.png"))
    code, err = run_cli("preview", built_three_shards, "--out", tmp_path / "missing_dir" / "x.png")
    one_line(code, err)
    assert "Errno" not in err
    one_line(*run_cli("preview", built_three_shards, "--out", tmp_path / "x.unknown"))


def test_out_that_is_an_existing_file_is_refused(tmp_path, run_cli):
    (tmp_path / "file").write_text("keep me")
    code, err = run_cli("build", "rotation", "--limit", "2", "--out", tmp_path / "file", "-q", "--overwrite")
    one_line(code, err)
    assert "Errno" not in err
    assert (tmp_path / "file").read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def predictions_cases(tmp_path):
    import json

    good = json.dumps(
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
        }
    )
    return {
        "truncated": good + "\n" + good[:40],
        "binary": b"\x00\xff\xfe binary",
        "wrong-type": json.dumps([1, 2, 3]) + "\n",
        "wrong-field-type": good.replace('"output": "<answer>90</answer>"', '"output": 90') + "\n",
        "missing-field": json.dumps({"benchmark": "mmbench", "output": "A"}) + "\n",
        "empty": "",
    }


@pytest.mark.parametrize(
    "case", ["truncated", "binary", "wrong-type", "wrong-field-type", "missing-field", "empty", "missing-file"]
)
def test_evaluate_predictions_mistakes_get_one_line(tmp_path, capsys, case):
    from ssl4rl_train import evaluate

    path = tmp_path / "predictions.jsonl"
    if case != "missing-file":
        content = predictions_cases(tmp_path)[case]
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    code = evaluate.main(["--predictions", str(path), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    one_line(code, err)


def test_evaluate_compare_with_a_missing_folder_gets_one_line(tmp_path, capsys):
    from ssl4rl_train import evaluate

    (tmp_path / "a").mkdir()
    code = evaluate.main(["--compare", str(tmp_path / "a"), str(tmp_path / "missing"), "--out", str(tmp_path / "o")])
    one_line(code, capsys.readouterr().err)


def test_a_huge_file_named_jpg_is_skipped_unread(tmp_path, two_photos):
    with open(two_photos / "huge.jpg", "wb") as handle:
        handle.truncate(3 << 30)  # sparse: 3 GB on paper
    code, err = cli_process(
        "build", "rotation", "--source", f"folder:{two_photos}", "--out", tmp_path / "d", "-q", memory=3 << 30
    )
    assert code == 0, err
    assert card(tmp_path / "d")["skipped"] == {"file-too-large": 1}


def test_a_huge_tsv_row_is_skipped_with_bounded_memory(tmp_path):
    tsv = write_tsv(tmp_path / "MMBench_DEV_EN.tsv", QUESTIONS[:2])
    with open(tsv, "ab") as handle:
        handle.write(b"7\tq\ta\tb\tA\tc\t")
        handle.truncate(handle.tell() + (2 << 30))  # a 2 GB cell
    code, err = cli_process(
        "build", "rotation", "--source", f"mmbench:{tsv}", "--out", tmp_path / "d", "-q", memory=3 << 30, timeout=120
    )
    assert code == 0, err
    assert card(tmp_path / "d")["skipped"] == {"row-too-large": 1} and len(read_rows(tmp_path / "d")) == 2


# --- Also ---------------------------------------------------------------------------------------------


def hf_layouts(root):
    import benchmark_files as bf
    from datasets import Dataset, DatasetDict, Features
    from datasets import Image as ImageFeature

    images = [{"bytes": bf.encoded(bf.photo(i)), "path": None} for i in range(3)]
    dataset = Dataset.from_dict(
        {"image": images, "label": [0, 1, 0]},
        features=Features({"image": ImageFeature(), "label": __import__("datasets").Value("int64")}),
    )
    (root / "folder" / "train").mkdir(parents=True)
    for index in range(3):
        bf.photo(index).save(root / "folder" / "train" / f"{index}.png")
    dataset.to_parquet(root / "one.parquet")
    DatasetDict({"train": dataset}).save_to_disk(str(root / "saved_dict"))
    dataset.save_to_disk(str(root / "saved"))


@pytest.mark.parametrize("layout", ["folder", "one.parquet", "saved"])  # (a saved DatasetDict loaded already)
def test_hf_reads_local_layouts(tmp_path, run_cli, layout):
    hf_layouts(tmp_path)
    code, err = run_cli("build", "rotation", "--source", f"hf:{tmp_path / layout}", "--out", tmp_path / "d", "-q")
    assert code == 0, err
    assert len(read_rows(tmp_path / "d")) == 3


def test_hf_names_the_layouts_it_takes(tmp_path, run_cli):
    (tmp_path / "notes.txt").write_text("no images")
    code, err = run_cli("build", "rotation", "--source", f"hf:{tmp_path / 'notes.txt'}", "--out", tmp_path / "d", "-q")
    one_line(code, err)
    assert "save_to_disk" in err


def test_stale_partial_folders_are_removed(tmp_path, two_photos, run_cli):
    stale = tmp_path / ".d.partial-0123456789abcdef"
    (stale / "data").mkdir(parents=True)
    (stale / "data" / "train-00000-of-00001.parquet").write_bytes(b"old inputs")
    code, err = run_cli("build", "rotation", "--source", f"folder:{two_photos}", "--out", tmp_path / "d", "-q")
    assert code == 0, err
    assert not stale.exists() and "removed 1 stale partial build(s)" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d", "photos"]
