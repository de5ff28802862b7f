"""Shards on a Ray cluster: the same `ShardBuilder.build_shard` as a local build, one Ray task a shard.

- The builder travels once, through the object store. Its image list is first saved into the staging
  folder (`ItemList.save`), which every node must see, and pickles as that path: no list is serialized.
- Shards, records and the staging folder are those of a local build (paths made absolute: workers do
  not run in the driver's working folder), so the bytes are the same, `--out` appears only when whole,
  and a rerun resumes from finished shards. A task lost with its worker or node is run again
  (MAX_RETRIES); each attempt writes its own temporary file.
- Before building, one small task on every node with CPUs checks that it sees the source paths and
  the staging folder: a node that does not is named, with the path, in one line.
- Progress: workers report rows to a small actor on the driver's node (not one that may die mid-build); the
  driver's bar reads it.
- The scan hashes files the sources do not hash themselves in Ray tasks (`RayHasher`).
- An address must be HOST:PORT where something answers (ray.init would wait minutes for a head that is
  not there); a worker's OSError (a full disk, a folder it may not write) is raised as itself.
"""

import copy
import functools
import os
import shutil
import socket
from concurrent.futures import Future
from pathlib import Path

from .errors import UserError
from .workers import keep_freed_memory

try:
    import ray
except ImportError:  # the `ray` extra is not installed
    ray = None

INSTALL_HINT = "--ray needs Ray, which is not installed: pip install 'ssl4rl[ray]'"
MAX_RETRIES = 3  # attempts after a task's worker or node is lost (application errors are not retried)
SCAN_PART = 512  # refs hashed per scan task


class RayEngine:
    """`address`: "auto" or None for the cluster `ray start` made on this machine (else a new local one),
    or HOST:PORT of a cluster's head. Connects on entering, disconnects on leaving (only if it connected)."""

    def __init__(self, address: str | None = "auto"):
        if ray is None:
            raise UserError(INSTALL_HINT)
        self.address = None if address in (None, "auto") else check_address(address)
        self.connected, self.nodes = False, []
        self.hasher = None  # set while connected: the scan's file hashing in Ray tasks

    def __enter__(self):
        if not ray.is_initialized():
            if self.address is not None and not self.address.startswith("ray://"):
                reachable(self.address)  # ray.init would wait minutes for a head that is not there
            try:
                ray.init(address=self.address, include_dashboard=False, log_to_driver=False, logging_level="error")
            except ConnectionError as error:
                raise UserError(
                    f"--ray: cannot reach a Ray cluster at {self.address}: {error} (a cluster `ray start` made "
                    "asks for its token: set RAY_AUTH_MODE=token where ~/.ray/auth_token holds it)"
                ) from None
            self.connected = True
        self.nodes = [node for node in ray.nodes() if node["Alive"] and node["Resources"].get("CPU", 0) > 0]
        if not self.nodes:
            raise UserError("--ray: the cluster has no node with CPUs to build on")
        self.hasher = RayHasher(self, sum(int(node["Resources"]["CPU"]) for node in self.nodes))
        return self

    def __exit__(self, *exc):
        self.hasher = None
        if self.connected:  # the job's workers stop with it
            ray.shutdown()
            self.connected = False
        return False

    def describe(self) -> dict:
        return {
            "name": "ray",
            "nodes": len(self.nodes),
            "workers": int(sum(n["Resources"]["CPU"] for n in self.nodes)),
        }

    def check_paths(self, paths: list[Path]) -> None:
        """UserError naming the first node, and path, that a node with CPUs cannot see."""
        tasks = _remote()["check"]
        strategy = ray.util.scheduling_strategies.NodeAffinitySchedulingStrategy
        missing = ray.get(
            [
                tasks.options(scheduling_strategy=strategy(node["NodeID"], soft=False)).remote([str(p) for p in paths])
                for node in self.nodes
            ]
        )
        for node, (host, unseen) in zip(self.nodes, missing, strict=True):
            if unseen:
                raise UserError(
                    f"--ray: node {node['NodeManagerAddress']} ({host}) cannot see {unseen[0]}; every node must see "
                    "the sources and --out's folder at the same path (shared storage)"
                )

    def run(self, builder, todo: list[int], bar) -> None:
        staging = builder.staging.absolute()
        self.check_paths([*(_absolute(s.path) for s in builder.sources if s.path is not None), staging])
        shipped = copy.copy(builder)
        shipped.staging, shipped.on_rows = staging, None
        shipped.items = builder.items.save(staging / ".shards" / "items")  # .shards/ never reaches --out
        try:
            self._run(ray.put(shipped), builder.shards, todo, bar)
        finally:
            shipped.items.close()
            shutil.rmtree(staging / ".shards" / "items", ignore_errors=True)

    def _run(self, builder_ref, shards, todo: list[int], bar) -> None:
        """Tasks submitted a few per CPU ahead (the driver holds no task per shard of a huge build); the bar
        counts finished shards' images plus the rows running tasks report."""
        tasks = _remote()
        # The bar's actor lives on the driver's node (Ray Client: the head's): placed by Ray it may share a node
        # that dies mid-build, and its loss would sink a build whose shards Ray retries elsewhere.
        here = ray.util.scheduling_strategies.NodeAffinitySchedulingStrategy(
            ray.get_runtime_context().get_node_id(), soft=False
        )
        progress = tasks["Progress"].options(scheduling_strategy=here).remote()
        window, queue, pending, done = 2 * self.describe()["workers"], list(reversed(todo)), {}, bar.n
        while queue or pending:
            while queue and len(pending) < window:
                index = queue.pop()
                pending[tasks["build"].remote(builder_ref, index, progress)] = index
            ready, _ = ray.wait(list(pending), num_returns=len(pending), timeout=0.5)
            for ref in ready:
                start, stop = shards[pending.pop(ref)]
                _result(ref)
                done += stop - start
            bar.update(done + ray.get(progress.running.remote()) - bar.n)


def check_address(address: str) -> str:
    """`address` if it is HOST:PORT (or a Ray Client ray://HOST:PORT); else a UserError.

    >>> check_address("127.0.0.2:6379"), check_address("ray://head:10001")
    ('127.0.0.2:6379', 'ray://head:10001')
    """
    host, colon, port = address.removeprefix("ray://").rpartition(":")
    if not (host and colon and port.isdigit() and 0 < int(port) < 65536):
        raise UserError(f"--ray: {address!r} is not HOST:PORT of a Ray cluster's head (or no value: the local one)")
    return address


def reachable(address: str, seconds: float = 10) -> None:
    """UserError unless something answers at HOST:PORT within `seconds`."""
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=seconds).close()
    except OSError as error:
        raise UserError(f"--ray: cannot reach a Ray cluster at {address}: {error}") from None


def absolute_source(spec: str) -> str:
    """A `--source` spec whose path, where it is one on this machine, is made absolute (a Hub repo id stays).

    >>> absolute_source("sample"), absolute_source("hf:user/no-such-repo"), absolute_source("folder:/") == "folder:/"
    ('sample', 'hf:user/no-such-repo', True)
    """
    name, colon, rest = spec.partition(":")
    path, mark, query = rest.partition("?")
    return f"{name}:{os.path.abspath(path)}{mark}{query}" if path and os.path.exists(path) else spec


def _absolute(path: Path) -> Path:
    """A source's path as workers must get it: absolute (they do not run in this process's folder)."""
    if not path.is_absolute():
        raise UserError(f"--ray: source path {path} is relative; give sources to a Ray build by absolute path")
    return path


def _result(ref):
    """A task's result; a worker's UserError (a path it cannot read) or OSError (a full disk, a folder it may
    not write) raised here as itself, without the worker's traceback in its message."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as error:
        if isinstance(error.cause, UserError | OSError):
            raise error.cause from None
        raise


class RayHasher:
    """The scan's hashing of files a source does not hash itself, in Ray tasks; parts whose refs carry
    their digests (table sources) never leave the driver. Used by scan.scan through `submit`."""

    part_size = SCAN_PART

    def __init__(self, engine: RayEngine, cpus: int):
        self.engine, self.window = engine, 2 * cpus  # parts hashed ahead of the scan: its memory stays bounded
        self._source, self._ref = None, None

    def submit(self, source, refs) -> Future:
        """A future of `refs`' digests (scan._digests)."""
        if all(ref.digest for ref in refs):
            given = Future()
            given.set_result([ref.digest for ref in refs])
            return given
        if source is not self._source:  # the first part to hash of this source: check and ship it once
            if source.path is not None:
                self.engine.check_paths([_absolute(source.path)])
            self._source, self._ref = source, ray.put(source)
        return _remote()["digests"].remote(self._ref, refs).future()


@functools.cache
def _remote() -> dict:
    """The remote functions and actor, made on first use (ray is imported only by builds that use it)."""

    @ray.remote(num_cpus=1, max_retries=MAX_RETRIES)
    def build(builder, index: int, progress) -> None:
        keep_freed_memory()  # Ray's worker processes exist to run these tasks (see workers.keep_freed_memory)
        progress.start.remote(index)  # a retried shard counts from zero again
        builder.on_rows = functools.partial(_report, progress, index)
        builder.build_shard(index)
        ray.get(progress.done.remote(index))  # after this task's reports: the actor takes one caller's calls in order

    @ray.remote(num_cpus=1, max_retries=MAX_RETRIES)
    def digests(source, refs):
        from .scan import _digests

        return _digests(source, refs)

    @ray.remote(num_cpus=0)
    def check(paths: list[str]) -> tuple[str, list[str]]:
        return socket.gethostname(), [path for path in paths if not os.path.exists(path)]

    @ray.remote(num_cpus=0)
    class Progress:
        """Rows done by each running shard, as its task reports them."""

        def __init__(self):
            self.rows = {}

        def start(self, index: int):
            self.rows[index] = 0

        def add(self, index: int, rows: int):
            self.rows[index] = self.rows.get(index, 0) + rows

        def done(self, index: int):
            self.rows.pop(index, None)  # the driver counts a finished shard whole

        def running(self) -> int:
            return sum(self.rows.values())

    return {"build": build, "digests": digests, "check": check, "Progress": Progress}


def _report(progress, index: int, rows: int) -> None:
    progress.add.remote(index, rows)
