"""Running a build's shards. An engine runs the same step, `ShardBuilder.build_shard`, for every
unfinished shard: `LocalEngine` in this process or in forked workers that die with it, `RayEngine`
(ray_engine.py) as tasks on a Ray cluster. Shards and their records land in the staging folder either
way, so the engine changes neither the bytes nor how a build resumes.

Forked workers inherit the ShardBuilder (only shard numbers cross the pipe) and report progress on a
queue; each arms PR_SET_PDEATHSIG, so a build killed with -9 leaves no worker writing behind it.
"""

import ctypes
import multiprocessing
import os
import queue

from tqdm import tqdm

from .output import die_with_parent


def keep_freed_memory() -> bool:
    """Every decoded picture, tile and encoded view is a fresh 0.1-1 MB allocation. glibc returns
    blocks that size to the kernel when they are freed (mmap threshold, heap trimming), so the next
    image faults its pages in again: about half a million page faults per thousand jigsaw images,
    about 15% of the build. Keep freed memory for reuse instead (peak memory is unchanged).

    This changes the whole process's allocator, so only processes that exist to build call it: the
    CLI's and the forked workers, never `build()` on behalf of a library caller. Returns whether the
    allocator took both settings (False where it is not glibc)."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    return mallopt(-3, 32 * 2**20) == 1 and mallopt(-1, 2**30) == 1  # M_MMAP_THRESHOLD (its maximum), M_TRIM_THRESHOLD


_FORKED_BUILDER = None


def _start_worker(parent_pid: int) -> None:
    die_with_parent(parent_pid)
    keep_freed_memory()


def _build_forked_shard(index: int) -> None:
    _FORKED_BUILDER.build_shard(index)


class LocalEngine:
    """This machine: `num_proc` forked processes (or this process alone)."""

    hasher = None  # the scan hashes on this machine's threads

    def __init__(self, num_proc: int = 1):
        self.num_proc = num_proc

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def describe(self) -> dict:
        """What the card records of the engine (outside the version: the bytes do not depend on it)."""
        return {"name": "local", "nodes": 1, "workers": self.num_proc}

    def run(self, builder, todo: list[int], bar) -> None:
        if self.num_proc == 1 or len(todo) <= 1:
            builder.on_rows = bar.update
            for index in todo:
                builder.build_shard(index)
            return
        global _FORKED_BUILDER
        context = multiprocessing.get_context("fork")
        progress_queue = context.Queue()
        builder.on_rows = progress_queue.put
        _FORKED_BUILDER = builder  # workers inherit it by fork; only shard numbers cross the pipe
        try:
            with context.Pool(
                min(self.num_proc, len(todo)), initializer=_start_worker, initargs=(os.getpid(),)
            ) as pool:
                pending = pool.map_async(_build_forked_shard, todo, chunksize=1)
                while not pending.ready():
                    try:
                        bar.update(progress_queue.get(timeout=0.2))
                    except queue.Empty:
                        pass
                pending.get()  # re-raise a worker's error here
        finally:
            _FORKED_BUILDER = None


def run_shards(builder, engine, progress: bool) -> None:
    """Build every unfinished shard of `builder` (a ShardBuilder) on `engine`."""
    todo = [i for i in range(len(builder.shards)) if not builder.finished(i)]
    unfinished = set(todo)
    done_items = sum(stop - start for i, (start, stop) in enumerate(builder.shards) if i not in unfinished)
    bar = tqdm(
        total=len(builder.items),
        initial=done_items,
        desc="building",
        unit="img",
        disable=not progress,
        mininterval=0.5,
    )
    try:
        engine.run(builder, todo, bar)
    finally:
        builder.on_rows = None
        bar.close()
