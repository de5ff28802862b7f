"""`--ray`'s address and a worker's errors, without a cluster: a mistyped address or a head that is not
there is one line at once (ray.init raised ValueError tracebacks, or waited minutes for the head), and a
worker's OSError reaches the user as itself (Ray's wrapper carried the worker's traceback into the line)."""

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import ray  # in the dev extra: missing, these tests fail rather than skip

BIN = Path(sys.executable).parent


def ssl4rl_data(*args) -> subprocess.CompletedProcess:
    return subprocess.run([BIN / "ssl4rl-data", *map(str, args)], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("address", ["bogus", "", "127.0.0.2:notaport", "127.0.0.2:70000"])
def test_an_address_that_is_not_host_port_is_one_line(tmp_path, address):
    result = ssl4rl_data("build", "rotation", "--ray", address, "--out", tmp_path / "o", "-q")
    assert result.returncode == 1 and not (tmp_path / "o").exists()
    assert result.stderr == (
        f"ssl4rl-data: error: --ray: {address!r} is not HOST:PORT of a Ray cluster's head (or no value: the local one)\n"
    )


def test_a_head_that_is_not_there_is_one_line_at_once(tmp_path):
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.2", 0))
        port = sock.getsockname()[1]
    started = time.monotonic()
    result = ssl4rl_data("build", "rotation", "--ray", f"127.0.0.2:{port}", "--out", tmp_path / "o", "-q")
    assert result.returncode == 1 and time.monotonic() - started < 30
    assert result.stderr.startswith(f"ssl4rl-data: error: --ray: cannot reach a Ray cluster at 127.0.0.2:{port}: ")
    assert result.stderr.count("\n") == 1 and not (tmp_path / "o").exists()


def test_a_workers_os_error_is_raised_as_itself(monkeypatch):
    from ssl4rl_data import ray_engine

    def failed(ref):  # what ray.get raises for a task that raised PermissionError on its node
        cause = PermissionError(13, "Permission denied", "/shared/out/.o.partial-1/data/x.parquet")
        raise ray.exceptions.RayTaskError(
            "build", "Traceback (most recent call last):\n  ...", cause
        ).as_instanceof_cause()

    monkeypatch.setattr(ray_engine.ray, "get", failed)
    with pytest.raises(PermissionError) as raised:
        ray_engine._result(None)
    assert type(raised.value) is PermissionError
    assert str(raised.value) == "[Errno 13] Permission denied: '/shared/out/.o.partial-1/data/x.parquet'"
