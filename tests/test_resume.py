"""An interrupted build never leaves a partial dataset at --out, and the same command completes it."""

import os
import signal
import subprocess
import sys
import time

from conftest import read_rows

from ssl4rl_data import build as build_module


def shard_bytes(folder):
    return [f.read_bytes() for f in sorted((folder / "data").glob("*.parquet"))]


def test_killed_build_leaves_no_output_and_the_rerun_completes(tmp_path, photo_folder, run_cli):
    out = tmp_path / "d"
    command = [
        sys.executable,
        "-m",
        "ssl4rl_data.cli",
        "build",
        "jigsaw",
        "--source",
        f"folder:{photo_folder}",
        "--out",
        str(out),
        "-q",
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not list(tmp_path.glob(".d.partial-*/data/*.parquet")):
        time.sleep(0.01)
    os.kill(process.pid, signal.SIGKILL)  # midway: the first shard is written, the others are not
    process.wait()
    assert not out.exists()
    staging = list(tmp_path.glob(".d.partial-*"))
    assert len(staging) == 1 and len(list(staging[0].glob("data/*.parquet"))) < 3
    code, _ = run_cli("build", "jigsaw", "--source", f"folder:{photo_folder}", "--out", out, "-q")
    assert code == 0 and not list(tmp_path.glob(".d.partial-*"))
    run_cli("build", "jigsaw", "--source", f"folder:{photo_folder}", "--out", tmp_path / "fresh", "-q")
    assert shard_bytes(out) == shard_bytes(tmp_path / "fresh")
    assert len(read_rows(out)) == len(read_rows(tmp_path / "fresh")) > 60


def test_resume_reuses_finished_shards(tmp_path, photo_folder, run_cli, monkeypatch):
    original = build_module.ShardBuilder.build_shard
    built = []

    def interrupted_after_first(self, index):
        if built:
            raise KeyboardInterrupt
        built.append(index)
        return original(self, index)

    monkeypatch.setattr(build_module.ShardBuilder, "build_shard", interrupted_after_first)
    code, err = run_cli("build", "rotation", "--source", f"folder:{photo_folder}", "--out", tmp_path / "d", "-q")
    assert code == 130 and "run the same command again to resume" in err
    assert not (tmp_path / "d").exists()

    rebuilt = []

    def counting(self, index):
        rebuilt.append(index)
        return original(self, index)

    monkeypatch.setattr(build_module.ShardBuilder, "build_shard", counting)
    code, _ = run_cli("build", "rotation", "--source", f"folder:{photo_folder}", "--out", tmp_path / "d", "-q")
    assert code == 0
    assert rebuilt == [1, 2]  # shard 0 was finished before the interruption and is reused
    monkeypatch.setattr(build_module.ShardBuilder, "build_shard", original)
    run_cli("build", "rotation", "--source", f"folder:{photo_folder}", "--out", tmp_path / "fresh", "-q")
    assert shard_bytes(tmp_path / "d") == shard_bytes(tmp_path / "fresh")
