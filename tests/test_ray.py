"""Builds on a real two-node Ray cluster on loopback, through the real console script.

The cluster (a head and a second node, one CPU each, started with `ray start`) is shared by the module's
tests and stopped at the end by the pids of its own processes: `ray stop` would stop every cluster of the
machine. Ray replaces 127.0.0.1 with the machine's address, so the nodes listen on 127.0.0.2. The test that
kills a node starts a cluster of its own.
"""

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import benchmark_files as bf
import psutil
import pytest
import yaml

BIN = Path(sys.executable).parent
HOST = "127.0.0.2"
NODE_PORTS = ["--node-manager-port", "--object-manager-port", "--metrics-export-port"]
NODE_PORTS += ["--dashboard-agent-listen-port", "--dashboard-agent-grpc-port", "--runtime-env-agent-port"]
WORKER_PORTS = 16  # ports each node's worker processes may take


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind((HOST, 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def node_options(ports: list[int]) -> list[str]:
    named = [f"{flag}={port}" for flag, port in zip(NODE_PORTS, ports, strict=False)]
    workers = ",".join(map(str, ports[len(NODE_PORTS) :]))
    return [f"--node-ip-address={HOST}", "--num-cpus=1", *named, f"--worker-port-list={workers}"]


def cluster_processes(temp_dir: str) -> list[psutil.Process]:
    """Every process of this cluster: those whose command line names its temp dir, and their descendants
    (the worker processes, whose titles Ray rewrites)."""
    found = {}
    for process in psutil.process_iter(["cmdline"]):
        if process.pid != os.getpid() and any(temp_dir in part for part in process.info["cmdline"] or []):
            found[process.pid] = process
            for child in process.children(recursive=True):
                found[child.pid] = child
    return list(found.values())


def stop(temp_dir: str, timeout: float = 3) -> None:
    """SIGTERM this cluster's processes by pid, SIGKILL what is left after `timeout` seconds."""
    processes = cluster_processes(temp_dir)
    for process in processes:
        try:
            process.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(processes, timeout=timeout)
    for process in alive:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=5)


@dataclass
class Cluster:
    address: str  # HOST:PORT of the head
    temp_dir: str  # named in the command line of each of its processes
    # What the second `ray start` left running: that node's raylet (its workers are the raylet's children), its
    # agents and its log monitor
    second: list[psutil.Process] = field(default_factory=list)


@contextlib.contextmanager
def two_node_cluster(**config: str):
    """A fresh two-node cluster, `config` given to Ray as RAY_NAME=VALUE; stopped (by pid, bounded in time) even
    if its user fails."""
    temp_dir = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths have a length limit
    ports = free_ports(1 + 2 * (len(NODE_PORTS) + WORKER_PORTS))
    head, ports = ports[0], ports[1:]
    common = [f"--temp-dir={temp_dir}", "--disable-usage-stats"]
    # Loopback only: no token (`ray start --head` otherwise requires one, which a driver sends only in token mode)
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", **{f"RAY_{name}": value for name, value in config.items()}}
    size = len(NODE_PORTS) + WORKER_PORTS
    try:
        subprocess.run(
            [BIN / "ray", "start", "--head", f"--port={head}", "--include-dashboard=false"]
            + common
            + node_options(ports[:size]),
            check=True,
            capture_output=True,
            timeout=120,
            env=env,
        )
        before = {process.pid for process in cluster_processes(temp_dir)}
        subprocess.run(
            [BIN / "ray", "start", f"--address={HOST}:{head}", *common, *node_options(ports[size : 2 * size])],
            check=True,
            capture_output=True,
            timeout=120,
            env=env,
        )
        # new processes not started by one of the head's (a worker the head's raylet started meanwhile)
        second = [p for p in cluster_processes(temp_dir) if p.pid not in before and p.ppid() not in before]
        yield Cluster(f"{HOST}:{head}", temp_dir, second)
    finally:
        stop(temp_dir)
        shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster():
    """A fresh two-node cluster shared by the module's tests."""
    with two_node_cluster() as made:
        yield made


def ssl4rl_data(*args, **popen) -> subprocess.Popen:
    return subprocess.Popen([BIN / "ssl4rl-data", *map(str, args)], stderr=subprocess.PIPE, text=True, **popen)


def build(*args) -> str:
    """Run a build to the end; its stderr."""
    process = ssl4rl_data("build", *args, "-q")
    _, err = process.communicate(timeout=300)
    assert process.returncode == 0, err
    return err


def shards(folder: Path) -> list[bytes]:
    return [path.read_bytes() for path in sorted((folder / "data").glob("*.parquet"))]


def card(folder: Path) -> dict:
    text = (folder / "README.md").read_text()
    return yaml.safe_load(text.split("---")[1])["ssl4rl"]


def engine(folder: Path) -> dict:
    return card(folder)["engine"]


@pytest.fixture(scope="module")
def many_photos(tmp_path_factory, photo_folder) -> Path:
    """480 photos (the 72 crops, each also mirrored and shifted): a build long enough to disturb midway."""
    from PIL import Image, ImageOps

    folder = tmp_path_factory.mktemp("many")
    for index, path in enumerate(sorted(photo_folder.glob("*.jpg")) * 7):
        image = Image.open(path).convert("RGB")
        image = ImageOps.mirror(image) if index % 2 else image
        image.point(lambda v, s=index: min(255, v + s % 29)).save(folder / f"{index:04d}.jpg", quality=90)
    return folder


def test_ray_build_is_byte_identical_to_local(cluster, tmp_path, photo_folder):
    # contrastive draws partners from the whole image list: the list the workers read is the driver's
    for task in ("contrastive", "jigsaw"):
        common = [task, "--source", f"folder:{photo_folder}", "--seed", "3"]
        build(*common, "--num-proc", "2", "--out", tmp_path / f"{task}-local")
        build(*common, "--ray", cluster.address, "--out", tmp_path / f"{task}-ray")
        local, remote = shards(tmp_path / f"{task}-local"), shards(tmp_path / f"{task}-ray")
        assert len(local) == 3 and local == remote
        assert engine(tmp_path / f"{task}-ray") == {"name": "ray", "nodes": 2, "workers": 2}
        assert engine(tmp_path / f"{task}-local") == {"name": "local", "nodes": 1, "workers": 2}
        assert not list(tmp_path.glob(".*partial*"))


def test_ray_build_of_table_sources_is_byte_identical_to_local(cluster, tmp_path):
    # parquet tables (MMBench, lmms layout) and webdataset tars (ImageNet) read by workers from their own handles
    bf.write_mmbench_lmms_folder(tmp_path / "mmbench")
    bf.write_imagenet_tars(tmp_path / "imagenet")
    common = [
        "position",
        "--source",
        f"mmbench:{tmp_path / 'mmbench'}",
        "--source",
        f"imagenet:{tmp_path / 'imagenet'}",
    ]
    build(*common, "--out", tmp_path / "local")
    build(*common, "--ray", cluster.address, "--out", tmp_path / "ray")
    assert shards(tmp_path / "local") and shards(tmp_path / "ray") == shards(tmp_path / "local")


def worker_running_a_shard(cluster: Cluster, timeout: float = 60) -> psutil.Process | None:
    """A worker process of `cluster` whose title says it runs the `build` task (Ray titles a busy worker
    ray::TASK)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for process in cluster_processes(cluster.temp_dir):
            try:
                if process.cmdline()[0].startswith("ray::build"):
                    return process
            except (psutil.NoSuchProcess, IndexError):
                continue
        time.sleep(0.02)
    return None


def test_killed_worker_is_retried_and_output_identical(cluster, tmp_path, many_photos):
    common = ["rotation", "--source", f"folder:{many_photos}"]
    build(*common, "--num-proc", "2", "--out", tmp_path / "local")
    process = ssl4rl_data("build", *common, "--ray", cluster.address, "--out", tmp_path / "ray", "-q")
    worker = worker_running_a_shard(cluster)
    assert worker is not None and process.poll() is None, "no shard was running"
    worker.kill()  # by its pid
    _, err = process.communicate(timeout=300)
    assert process.returncode == 0, err
    assert not psutil.pid_exists(worker.pid) or worker.status() == psutil.STATUS_ZOMBIE
    assert shards(tmp_path / "ray") == shards(tmp_path / "local")


def test_node_dying_mid_build_its_shards_are_retried_and_output_identical(tmp_path, many_photos):
    # A cluster of its own: the second node dies for good. The GCS checks each node every second here (3 s by
    # default) and declares it dead after 5 missed checks: the lost shards wait ~5 s for their retry, not ~15 s.
    common = ["rotation", "--source", f"folder:{many_photos}"]
    build(*common, "--num-proc", "2", "--out", tmp_path / "local")
    with two_node_cluster(health_check_period_ms="1000") as cluster:
        raylet = next(p for p in cluster.second if Path(p.cmdline()[0]).name == "raylet")
        process = ssl4rl_data("build", *common, "--ray", cluster.address, "--out", tmp_path / "ray")  # with its bar
        try:
            deadline = time.monotonic() + 60
            while not shard_running_under(raylet) and process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.02)
            assert shard_running_under(raylet) and process.poll() is None, "no shard was running on the second node"
            # the whole node at once, as a machine dying: its raylet, the raylet's workers, its agents, its log monitor
            node = list({p.pid: p for p in [raylet, *raylet.children(recursive=True), *cluster.second]}.values())
            for part in node:
                with contextlib.suppress(psutil.NoSuchProcess):
                    part.kill()
            _, err = process.communicate(timeout=120)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate(timeout=10)
        assert not psutil.wait_procs(node, timeout=5)[1]
    assert process.returncode == 0, err
    assert shards(tmp_path / "ray") == shards(tmp_path / "local")
    # the card names the cluster the build started on; the version is the local build's
    assert engine(tmp_path / "ray") == {"name": "ray", "nodes": 2, "workers": 2}
    assert card(tmp_path / "ray")["version"] == card(tmp_path / "local")["version"]
    # the bar ends at every row, and never counted a retried shard twice on the way
    counts = [(int(n), int(total)) for n, total in re.findall(r"building:[^\r\n]*?(\d+)/(\d+)", err)]
    assert counts[-1] == (504, 504) and all(n <= total for n, total in counts), counts
    assert not list(tmp_path.glob(".*partial*"))


def shard_running_under(raylet: psutil.Process) -> bool:
    """Whether one of `raylet`'s worker processes runs the `build` task (Ray titles a busy worker ray::TASK)."""
    for child in raylet.children():
        with contextlib.suppress(psutil.NoSuchProcess, IndexError):
            if child.cmdline()[0].startswith("ray::build"):
                return True
    return False


def test_interrupted_ray_build_resumes(cluster, tmp_path, many_photos):
    common = ["rotation", "--source", f"folder:{many_photos}", "--seed", "5"]
    out = tmp_path / "ray"
    process = ssl4rl_data("build", *common, "--ray", cluster.address, "--out", out, "-q")
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob(".ray.partial-*/.shards/*.json")) and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130 and "run the same command again to resume" in err
    finished = {p.name: p.stat().st_mtime_ns for p in tmp_path.glob(".ray.partial-*/data/*.parquet")}
    assert finished and not out.exists()
    build(*common, "--ray", cluster.address, "--out", out)
    build(*common, "--num-proc", "2", "--out", tmp_path / "local")
    assert shards(out) == shards(tmp_path / "local")
    kept = {name: (out / "data" / name).stat().st_mtime_ns for name in finished}
    assert any(kept[name] == finished[name] for name in finished)  # finished shards were reused


def test_a_source_no_worker_sees_is_named_with_its_node(cluster, tmp_path, photo_folder):
    # /proc/self/fd/N is the photo folder in the driver only: in every Ray worker that fd is not open.
    fd = os.open(photo_folder, os.O_RDONLY | os.O_DIRECTORY)
    os.dup2(fd, 901, inheritable=True)
    try:
        process = ssl4rl_data(
            "build",
            "rotation",
            "--source",
            "folder:/proc/self/fd/901",
            "--ray",
            cluster.address,
            "--out",
            tmp_path / "o",
            "-q",
            pass_fds=[901],
        )
        _, err = process.communicate(timeout=120)
    finally:
        os.close(901)
        os.close(fd)
    assert process.returncode == 1
    assert err.strip().count("\n") == 0, err
    assert f"node {HOST}" in err and "cannot see /proc/self/fd/901" in err


def test_ray_option_without_ray_installed_says_how_to_install(tmp_path):
    code = "import sys; sys.modules['ray'] = None; from ssl4rl_data.cli import main; sys.exit(main(sys.argv[1:]))"
    result = subprocess.run(
        [sys.executable, "-c", code, "build", "rotation", "--ray", "--out", tmp_path / "o"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr == "ssl4rl-data: error: --ray needs Ray, which is not installed: pip install 'ssl4rl[ray]'\n"
    assert not (tmp_path / "o").exists()


def test_a_build_without_ray_option_never_imports_ray(tmp_path):
    code = (
        "import sys; from ssl4rl_data.cli import main; "
        "code = main(['build', 'rotation', '--out', sys.argv[1], '-q']); print(code, 'ray' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code, tmp_path / "o"], capture_output=True, text=True, timeout=60)
    assert result.stdout.split() == ["0", "False"], result.stderr
