"""What build_throughput.py times: whole builds with their peak memory and CPU time, the decode+encode floor,
the build's resize, the machine's multi-process ceiling, the task's own work and the naive `datasets` path."""

import io
import multiprocessing
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq
from PIL import Image

from ssl4rl_data import registry
from ssl4rl_data.difficulty import RowScorer
from ssl4rl_data.errors import SkipImage
from ssl4rl_data.images import _fit, decode, downscale, encode, sample_rng
from ssl4rl_data.near_duplicates import perceptual_hash
from ssl4rl_data.partners import HASH_DECODE_SIDE
from ssl4rl_data.task import Task
from ssl4rl_data.workers import keep_freed_memory

RESIZE_BUDGET = 0.001  # CPU seconds per image the issue allows the default resize (issue 22)


def tree_rss(pid: int) -> int:
    """Resident memory of a process and all its descendants, in bytes."""
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        try:
            with open(f"/proc/{current}/status") as status:
                total += next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmRSS:"))
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as children:
                    stack += [int(child) for child in children.read().split()]
        except (FileNotFoundError, ProcessLookupError, StopIteration):
            continue
    return total


def timed_build(task: str, source: Path, out: Path, procs: int, extra: list[str]) -> tuple[float, int, float]:
    """Wall seconds, peak tree memory and CPU seconds (user + system, all its processes) of one
    `ssl4rl-data build` subprocess. The previous run's output is deleted and the disk synced first,
    untimed: otherwise the kernel's write-back and discards of the previous run's files land in this
    one (2-process rotation builds of 5,000 images here: 14.8-18.7 s without, 15.1-16.3 s with)."""
    shutil.rmtree(out, ignore_errors=True)
    os.sync()
    command = [
        sys.executable,
        "-m",
        "ssl4rl_data.cli",
        "build",
        task,
        "--source",
        f"folder:{source}",
        "--out",
        str(out),
        "--num-proc",
        str(procs),
        "-q",
        *task_options(task),
        *extra,
    ]
    used = _children_cpu()
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak = 0
    while process.poll() is None:
        peak = max(peak, tree_rss(process.pid))
        time.sleep(0.05)
    seconds = time.perf_counter() - started
    if process.returncode != 0:
        raise SystemExit(f"build failed: {process.stderr.read()}")
    return seconds, peak, _children_cpu() - used


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # every waited-for descendant, workers included
    return usage.ru_utime + usage.ru_stime


def floor_seconds(source: Path, built: Path) -> tuple[float, float]:
    """Decode every source image at full size, then encode every output image the build wrote, on this
    core (with the build's memory settings, so both pay the same for allocation): wall and CPU seconds.
    No resize: with --max-side the issue's floor adds a budget of RESIZE_BUDGET per image to it."""
    keep_freed_memory()
    files = sorted(source.glob("*.jpg"))
    started, cpu = time.perf_counter(), time.process_time()
    for file in files:
        decode(file.read_bytes(), 0)
    decoding, cpu = time.perf_counter() - started, time.process_time() - cpu
    encoding = 0.0
    for shard in sorted(built.glob("data/*.parquet")):  # a shard at a time: all outputs would not fit in memory
        outputs = [
            Image.open(io.BytesIO(image["bytes"])).convert("RGB")
            for row in pq.read_table(shard, columns=["images"]).column("images").to_pylist()
            for image in row
        ]
        started, cpu_started = time.perf_counter(), time.process_time()
        for image in outputs:
            encode(image, "jpeg")
        encoding += time.perf_counter() - started
        cpu += time.process_time() - cpu_started
    return decoding + encoding, cpu


def resize_cpu(source: Path, max_side: int, count: int = 500) -> tuple[float, float]:
    """CPU seconds per image of the build's resize (`images.downscale`) and of Pillow's Lanczos, the
    resize before generator 0.4.0, on the first `count` sources decoded at full size, interleaved, with
    the build's memory settings (without them each resize's fresh buffers cost page faults: 1.7 ms, not 0.7)."""
    keep_freed_memory()
    images = [decode(file.read_bytes(), 0) for file in sorted(source.glob("*.jpg"))[:count]]
    sizes = [_fit(image.size, max_side) for image in images]
    downscale(images[0], sizes[0])  # OpenCV imported, untimed
    ours, lanczos = [], []
    for _ in range(3):
        cpu = time.process_time()
        for image, size in zip(images, sizes):
            if size != image.size:
                downscale(image, size)
        ours.append(time.process_time() - cpu)
        cpu = time.process_time()
        for image, size in zip(images, sizes):
            if size != image.size:
                image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
        lanczos.append(time.process_time() - cpu)
    return min(ours) / len(images), min(lanczos) / len(images)


def machine_scaling(source: Path, procs: int, repeat: int) -> float:
    """How much faster `procs` processes run a plain decode + JPEG encode loop over the sources than one
    does: the most any build can gain from those processes on this machine (cores share caches and
    memory bandwidth)."""
    files = sorted(source.glob("*.jpg"))
    parts = [files[k::procs] for k in range(procs)]
    with multiprocessing.get_context("fork").Pool(procs) as pool:
        one = min(_timed_loop(files) for _ in range(repeat))
        many = []
        for _ in range(repeat):
            started = time.perf_counter()
            pool.map(_timed_loop, parts, chunksize=1)
            many.append(time.perf_counter() - started)
    return one / min(many)


def _timed_loop(files: list[Path]) -> float:
    keep_freed_memory()
    started = time.perf_counter()
    for file in files:
        encode(decode(file.read_bytes(), 0), "jpeg")
    return time.perf_counter() - started


JIGSAW_GRID = "2"  # --jigsaw-grid: the README's headline command is `build jigsaw --grid 3`


def default_task(name: str) -> Task:
    """The task with its default parameters (jigsaw: --jigsaw-grid), made (and its libraries imported)
    before any timing."""
    task_cls = registry.get_task(name)
    return task_cls(task_cls.Config(grid=JIGSAW_GRID) if name == "jigsaw" else task_cls.Config())


def task_options(name: str) -> list[str]:
    return ["--grid", JIGSAW_GRID] if name == "jigsaw" else []


def task_samples(task: Task, files: list[Path], max_side: int):
    """The task's samples made straight from the files, with none of the builder around them: each
    source decoded, its sample drawn from the same per-sample key, a contrastive negative's partner
    decoded from another file drawn from the sample's generator. Skipped images yield nothing."""
    for index, file in enumerate(files):

        def other_image(rng, index=index):
            partner = files[(index + 1 + int(rng.integers(len(files) - 1))) % len(files)]
            return partner.name, decode(partner.read_bytes(), max_side)

        try:
            key = f"folder:{file.name}"  # the build's source id: the same samples, the same skips
            partner = (other_image,) if task.pairs_pictures else ()
            yield task.make(decode(file.read_bytes(), max_side), sample_rng(0, task.name, key), *partner)
        except SkipImage:
            continue


def task_work_seconds(task_name: str, source: Path, max_side: int) -> float:
    """The floor plus the task's own pixel work (look-alike checks, crops, SimCLR views, partner
    decodes and, for a task that pairs pictures, the partner index's perceptual hashes) and each row's
    difficulty score (row content computed from the pixels, like an augmentation; its own cost is in
    difficulty_cost.py), on this core, in wall seconds. A build's time over this is what the builder itself
    adds (scan, seeding, rows, parquet, start-up)."""
    keep_freed_memory()
    files, task = sorted(source.glob("*.jpg")), default_task(task_name)
    score = RowScorer(task)
    started = time.perf_counter()
    if task.pairs_pictures:  # the partner index: every picture's perceptual hash, so no negative pairs copies
        for file in files:
            perceptual_hash(decode(file.read_bytes(), HASH_DECODE_SIDE))
    for sample in task_samples(task, files, max_side):
        encoded = [encode(view, "jpeg") for view in sample.images]
        score(sample.answer, sample.images, encoded, ["folder:x", *sample.extra_source_ids])
    return time.perf_counter() - started


def naive_rate(task_name: str, source: Path, count: int, max_side: int) -> float:
    """Images/s when the task's PIL images go to `datasets` to encode (its default: PNG)."""
    from datasets import Dataset, Features, List, Value, disable_progress_bars
    from datasets import Image as ImageFeature

    disable_progress_bars()  # its bar would land in the middle of the table
    files, task = sorted(source.glob("*.jpg"))[:count], default_task(task_name)
    started = time.perf_counter()
    rows = []
    for sample in task_samples(task, files, max_side):
        for view in sample.images:
            view.format = None  # as the reference builders' images: `datasets` PNG-encodes them
        rows.append({"images": sample.images, "answer": sample.answer})
    features = Features({"images": List(ImageFeature()), "answer": Value("string")})
    with tempfile.TemporaryDirectory() as folder:
        Dataset.from_list(rows, features=features).to_parquet(f"{folder}/naive.parquet")
    return len(files) / (time.perf_counter() - started)
