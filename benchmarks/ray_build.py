"""`build_throughput.py --engine ray`: Ray builds against local `--num-proc N` builds of the same command.

Starts a one-node Ray cluster on loopback (127.0.0.2, free ports, N CPUs, its own temp dir; stopped by
the pids of its own processes, never `ray stop`), then for each task times, interleaved and the fastest
of each counting, a local `--num-proc N` build and a `--ray ADDRESS` build of the photos. The fixed
cost of a Ray build is measured on 12 photos: a `--ray` build's time there minus a local one's (connecting, the job's worker processes starting and importing, the per-node checks). The
cluster's own start is timed too: a user's cluster is already running, so no build pays it.
"""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

BIN = Path(sys.executable).parent
HOST = "127.0.0.2"  # Ray replaces 127.0.0.1 with the machine's address; 127.0.0.2 stays on loopback
PORT_FLAGS = ["--port", "--node-manager-port", "--object-manager-port", "--metrics-export-port"]
PORT_FLAGS += ["--dashboard-agent-listen-port", "--dashboard-agent-grpc-port", "--runtime-env-agent-port"]


def start_cluster(cpus: int) -> tuple[str, str, float]:
    """(HOST:PORT, temp dir, seconds it took) of a new one-node cluster."""
    sockets = [socket.socket() for _ in range(len(PORT_FLAGS) + 16)]
    for sock in sockets:
        sock.bind((HOST, 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    temp_dir = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths have a length limit
    started = time.perf_counter()
    subprocess.run(
        [BIN / "ray", "start", "--head", f"--node-ip-address={HOST}", f"--num-cpus={cpus}", f"--temp-dir={temp_dir}"]
        + ["--include-dashboard=false", "--disable-usage-stats"]
        + [f"{flag}={port}" for flag, port in zip(PORT_FLAGS, ports, strict=False)]
        + [f"--worker-port-list={','.join(map(str, ports[len(PORT_FLAGS) :]))}"],
        check=True,
        capture_output=True,
        env={**os.environ, "RAY_AUTH_MODE": "disabled"},  # loopback only
    )
    return f"{HOST}:{ports[0]}", temp_dir, time.perf_counter() - started


def stop_cluster(temp_dir: str) -> None:
    """Its processes (command lines naming its temp dir, and their children) by pid: SIGTERM, then SIGKILL."""
    processes = {}
    for process in psutil.process_iter(["cmdline"]):
        if process.pid != os.getpid() and any(temp_dir in part for part in process.info["cmdline"] or []):
            processes[process.pid] = process
            processes.update((child.pid, child) for child in process.children(recursive=True))
    for process in processes.values():
        process.terminate()
    _, alive = psutil.wait_procs(list(processes.values()), timeout=3)
    for process in alive:
        process.kill()


def run(args, source: Path, small: Path, timed_build) -> None:
    """`source`: the benchmark's photos; `small`: 12 of them, for the fixed cost."""
    procs = max(args.procs)
    address, temp_dir, start_seconds = start_cluster(procs)
    try:
        print(f"\nRay: a one-node cluster of {procs} CPUs on loopback started in {start_seconds:.1f} s (not counted)")
        with tempfile.TemporaryDirectory(dir=args.work) as work:
            out = Path(work) / "out"
            fixed = {
                ray: min(timed(timed_build, "rotation", small, out, procs, [], ray)[0] for _ in range(args.repeat))
                for ray in (None, address)
            }
            print(f"fixed cost of a Ray build (12 photos, --ray minus local): {fixed[address] - fixed[None]:.1f} s")
            scan_rates(source, address)
            print(
                f"{'task':<12}{'local s':>9}{'ray s':>8}{'local img/s':>13}{'ray img/s':>11}{'ray/local':>11}"
                f"{'driver MiB':>12}{'MB out/img':>12}"
            )
            for task in args.tasks:
                runs = {None: [], address: []}
                for _ in range(args.repeat):
                    for ray in runs:
                        extra = ["--max-side", str(args.max_side[0])]
                        runs[ray].append(timed(timed_build, task, source, out, procs, extra, ray))
                local, remote = min(r[0] for r in runs[None]), min(r[0] for r in runs[address])
                driver = max(r[1] for r in runs[address])  # the CLI process alone: Ray's workers are not its children
                written = sum(path.stat().st_size for path in out.glob("data/*.parquet"))
                print(
                    f"{task:<12}{local:>9.1f}{remote:>8.1f}{args.images / local:>13.0f}{args.images / remote:>11.0f}"
                    f"{local / remote:>10.2f}x{driver / 2**20:>12.0f}{written / args.images / 1e6:>12.3f}"
                )
    finally:
        stop_cluster(temp_dir)
        shutil.rmtree(temp_dir, ignore_errors=True)


def timed(timed_build, task, source, out, procs, extra, ray) -> tuple[float, int]:
    """Seconds and peak memory of the build's own process tree."""
    return timed_build(task, source, out, procs, extra + (["--ray", ray] if ray else []))[:2]


def scan_rates(source: Path, address: str) -> None:
    """Images/s of the scan (listing, reading and hashing every file, deduplicating) in this process: on
    its threads, and with the hashing in Ray tasks (on this same machine's CPUs)."""
    from ssl4rl_data.ray_engine import RayEngine
    from ssl4rl_data.scan import scan
    from ssl4rl_data.source import parse_source

    rates = {}
    with RayEngine(address) as engine:
        for name in ("threads", "ray"):
            for _ in range(2):  # the second counts: the job's workers have started and imported by then
                started = time.perf_counter()
                items, _ = scan([parse_source(f"folder:{source}")], False, engine.hasher if name == "ray" else None)
                rates[name] = len(items) / (time.perf_counter() - started)
                items.close()
    print(
        f"scan of the photos, files in the page cache: {rates['threads']:.0f} images/s on threads, "
        f"{rates['ray']:.0f} with Ray tasks hashing (workers warm)"
    )
