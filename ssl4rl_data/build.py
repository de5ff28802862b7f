"""source -> normalize -> task -> encode -> write: the one data path every build takes.

The image list is scanned once (lightweight references and content hashes only), deduplicated, and
cut into shards whose boundaries depend only on the number of images. Each shard is built from its
own samples' keys and written as one parquet file into a staging folder next to `--out`, so the
bytes never depend on `--num-proc`, memory stays bounded, an interrupted build resumes from its
finished shards, and `--out` only ever appears complete (one rename at the end).
"""

import ctypes
import dataclasses
import functools
import hashlib
import itertools
import json
import multiprocessing
import os
import queue
import shutil
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from PIL import ImageChops
from tqdm import tqdm

from . import __version__
from .errors import SkipImage, UserError
from .images import IMAGE_FORMATS, content_digest, decode, encode, sample_rng
from .items import ItemList, ItemWriter, first_occurrences
from .schema import ARROW_SCHEMA, PARQUET_WRITER_OPTIONS, RowBatch
from .source import Source
from .task import Task

SHARD_TARGET_COUNT = 64  # small shards on small builds: every core busy to the end
SHARD_MIN_ROWS, SHARD_MAX_ROWS = 32, 1000
PARTNER_TRIES = 8
SCAN_BATCH, SCAN_PART = 1024, 64  # refs the scan's threads work ahead on, and per task


@dataclass
class BuildOptions:
    seed: int = 0
    limit: int | None = None
    image_format: str = "jpeg"
    max_side: int = 448

    def __post_init__(self):
        if self.image_format not in IMAGE_FORMATS:
            raise UserError(f"--image-format must be one of {', '.join(IMAGE_FORMATS)}, got {self.image_format!r}")
        if self.limit is not None and self.limit < 1:
            raise UserError(f"--limit must be at least 1, got {self.limit}")
        if self.max_side < 0:
            raise UserError(f"--max-side must be 0 (no limit) or positive, got {self.max_side}")


@dataclass
class ShardStats:
    rows: int = 0
    rows_by_source: Counter = field(default_factory=Counter)
    skipped: Counter = field(default_factory=Counter)
    answers: Counter = field(default_factory=Counter)

    def add(self, other: "ShardStats"):
        self.rows += other.rows
        self.rows_by_source.update(other.rows_by_source)
        self.skipped.update(other.skipped)
        self.answers.update(other.answers)

    def to_json(self) -> str:
        return json.dumps({"rows": self.rows, "rows_by_source": self.rows_by_source,
                           "skipped": self.skipped, "answers": self.answers})

    @classmethod
    def from_json(cls, text: str) -> "ShardStats":
        data = json.loads(text)
        return cls(
            rows=data["rows"],
            rows_by_source=Counter({int(k): v for k, v in data["rows_by_source"].items()}),
            skipped=Counter(data["skipped"]),
            answers=Counter(data["answers"]),
        )


@dataclass
class SourceScan:
    spec: str
    description: dict
    images: int = 0
    duplicates: int = 0
    unreadable: int = 0
    fingerprint: str = ""


@dataclass
class BuildResult:
    out: Path
    version: str
    stats: ShardStats
    scans: list[SourceScan]
    seconds: float


def scan(sources: list[Source], specs: list[str], progress: bool) -> tuple[ItemList, list[SourceScan]]:
    """List every image once: drop repeated ids within a source and repeated content across all sources.

    Files the source does not hash itself (a `folder:` source; one whose ids are content hashes, such
    as `imagenet:`, hashes them in `refs()`) are read and hashed on a thread per core: both release the
    GIL, and for an ImageNet-size folder that is 140 GB, minutes on one core.
    """
    writer, scans = ItemWriter(), []
    bar = tqdm(desc="scanning", unit="img", disable=not progress, mininterval=0.5)
    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        for index, (source, spec) in enumerate(zip(sources, specs)):
            summary = SourceScan(spec=spec, description={})
            for batch in _batches(source.refs(), SCAN_BATCH):
                parts = [batch[start:start + SCAN_PART] for start in range(0, len(batch), SCAN_PART)]
                digests = itertools.chain.from_iterable(pool.map(functools.partial(_digests, source), parts))
                for ref, digest in zip(batch, digests):
                    bar.update()
                    summary.images += 1
                    if digest is None:
                        summary.unreadable += 1
                    else:
                        writer.add(index, ref, bytes.fromhex(digest))
            summary.description = source.describe()  # after the scan: it may count what the scan excluded
            scans.append(summary)
    bar.close()
    return _deduplicate(writer.finish(), scans), scans


def _batches(refs, size: int):
    """Lists of up to `size` refs: the pool works ahead on a batch, never on the whole source."""
    while batch := list(itertools.islice(refs, size)):
        yield batch


def _digests(source: Source, refs) -> list[str | None]:
    """Each ref's content digest, reading the image if the source did not hash it; None if unreadable."""
    digests = []
    for ref in refs:
        try:
            digests.append(ref.digest or content_digest(source.read(ref.locator)))
        except OSError:
            digests.append(None)
    return digests


def _deduplicate(items: ItemList, scans: list[SourceScan]) -> ItemList:
    """Keep the first of each id within a source and the first of each content across all sources;
    count what is dropped and fingerprint each source (ids and digests, repeats of an id excluded)."""
    keep = np.zeros(len(items), dtype=bool)
    for index, summary in enumerate(scans):
        positions = np.flatnonzero(items.source_index == index)
        first = first_occurrences(items.id_hashes[positions])
        keep[positions[first]] = True
        summary.duplicates = int((~first).sum())
        fingerprint = np.stack([items.id_hashes[positions[first]], items.digests[positions[first]]], axis=1)
        summary.fingerprint = hashlib.blake2b(fingerprint.tobytes(), digest_size=16).hexdigest()
    kept = np.flatnonzero(keep)
    repeated = kept[~first_occurrences(items.digests[kept])]
    for index, count in zip(*np.unique(items.source_index[repeated], return_counts=True)):
        scans[index].duplicates += int(count)
    keep[repeated] = False
    return items.select(np.flatnonzero(keep))


def shard_bounds(count: int) -> list[tuple[int, int]]:
    """Contiguous shards that depend on `count` alone (never on the number of processes).

    >>> shard_bounds(100)
    [(0, 32), (32, 64), (64, 96), (96, 100)]
    """
    size = min(SHARD_MAX_ROWS, max(SHARD_MIN_ROWS, -(-count // SHARD_TARGET_COUNT)))
    return [(start, min(start + size, count)) for start in range(0, count, size)]


class ShardBuilder:
    """Turns items into rows. Created once, then shared with worker processes by fork."""

    def __init__(self, task: Task, sources: list[Source], items: ItemList, options: BuildOptions, staging: Path):
        self.task, self.sources, self.items, self.options = task, sources, items, options
        self.staging = staging
        self.shards = shard_bounds(len(items))
        self.on_rows = None  # called with the number of images done, for the progress bar

    def shard_path(self, index: int) -> Path:
        return self.staging / "data" / f"train-{index:05d}-of-{len(self.shards):05d}.parquet"

    def stats_path(self, index: int) -> Path:
        return self.staging / ".shards" / f"{index:05d}.json"

    def finished(self, index: int) -> bool:
        return self.shard_path(index).exists() and self.stats_path(index).exists()

    def build_shard(self, index: int) -> ShardStats:
        start, stop = self.shards[index]
        stats, rows = ShardStats(), RowBatch()
        temporary = self.shard_path(index).with_suffix(".tmp")
        with pq.ParquetWriter(temporary, ARROW_SCHEMA, **PARQUET_WRITER_OPTIONS) as writer:
            for position in range(start, stop):
                self._add_row(position, stats, rows)
                if rows.full or (position == stop - 1 and rows):
                    writer.write_table(rows.table())
                    rows = RowBatch()
                if self.on_rows is not None and ((position - start) % 16 == 15 or position == stop - 1):
                    self.on_rows((position - start) % 16 + 1)
        os.replace(temporary, self.shard_path(index))  # the shard exists only once it is whole
        self.stats_path(index).write_text(stats.to_json())
        return stats

    def _add_row(self, position: int, stats: ShardStats, rows: RowBatch):
        item = self.items[position]
        try:
            image = self._decode(item)
            rng = sample_rng(self.options.seed, self.task.name, item.ref.source_id)
            sample = self.task.make(image, rng, lambda rng: self._other_image(position, image, rng))
        except SkipImage as skip:
            stats.skipped[skip.reason] += 1
            return
        except Exception as error:  # one odd image must not sink a long build: count it, report it
            stats.skipped[f"failed-{type(error).__name__}"] += 1
            return
        stats.rows += 1
        stats.rows_by_source[item.source_index] += 1
        stats.answers[sample.answer] += 1
        rows.add(
            task=self.task.name,
            question=sample.question,
            images=[encode(view, self.options.image_format) for view in sample.images],
            answer=sample.answer,
            source_ids=[item.ref.source_id, *sample.extra_source_ids],
        )

    def _decode(self, item):
        try:
            data = self.sources[item.source_index].read(item.ref.locator)
        except OSError:
            raise SkipImage("unreadable") from None
        return decode(data, self.options.max_side)

    def _other_image(self, position: int, image, rng):
        """A different image for a contrastive negative: different content, not just a different row."""
        if len(self.items) > 1:
            for _ in range(PARTNER_TRIES):
                other = int(rng.integers(len(self.items) - 1))
                other += other >= position
                if self.items.digests[other] == self.items.digests[position]:
                    continue
                item = self.items[other]
                try:
                    candidate = self._decode(item)
                except SkipImage:
                    continue
                if _same_pixels(candidate, image):
                    continue
                return item.ref.source_id, candidate
        raise SkipImage("no-distinct-partner")


def _subset(items: ItemList, count: int, seed: int) -> ItemList:
    """`count` items drawn uniformly by a key of (seed, source id), in source order: taking the first
    `count` would take, say, only the first classes of an ImageFolder."""
    prefix = f"{seed}\0subset\0".encode()
    ranks = [hashlib.blake2b(prefix + bytes(key), digest_size=8).digest() for key in items.id_hashes]
    return items.select(np.sort(np.argsort(np.array(ranks, dtype="V8"), kind="stable")[:count]))


def _same_pixels(first, second) -> bool:
    """Exact. One middle row tells almost any two different pictures apart without a full pass (0.3 ms).

    >>> from PIL import Image
    >>> picture = Image.new("RGB", (4, 4)); corner = picture.copy(); corner.putpixel((0, 0), (1, 0, 0))
    >>> _same_pixels(picture, picture.copy()), _same_pixels(picture, corner)
    (True, False)
    """
    if first.size != second.size:
        return False
    middle = (0, first.height // 2, first.width, first.height // 2 + 1)
    if first.crop(middle).tobytes() != second.crop(middle).tobytes():
        return False
    return ImageChops.difference(first, second).getbbox() is None


def build_version(task: Task, options: BuildOptions, scans: list[SourceScan]) -> str:
    """A content-derived version: the same inputs, parameters and generator give the same version."""
    recipe = {
        "generator": f"ssl4rl-data {__version__}",
        "task": task.name,
        "parameters": task.parameters(),
        "options": dataclasses.asdict(options),
        "sources": [[s.description, s.fingerprint] for s in scans],
    }
    return hashlib.blake2b(json.dumps(recipe, sort_keys=True).encode(), digest_size=8).hexdigest()


def build(
    task: Task,
    sources: list[Source],
    specs: list[str],
    options: BuildOptions,
    out: Path,
    *,
    num_proc: int = 1,
    overwrite: bool = False,
    progress: bool = True,
    write_card=None,
) -> BuildResult:
    """Build a dataset folder at `out`. `write_card(folder, result)` renders its README before publishing."""
    started = time.perf_counter()
    out = Path(out)
    if out.exists() and not overwrite:
        raise UserError(f"{out} already exists; pass --overwrite to replace it")
    if num_proc < 1:
        raise UserError(f"--num-proc must be at least 1, got {num_proc}")
    items, scans = scan(sources, specs, progress)
    if options.limit is not None and len(items) > options.limit:
        items = _subset(items, options.limit, options.seed)
    if not items:
        raise UserError("the sources hold no usable image")
    version = build_version(task, options, scans)
    staging = out.parent / f".{out.name}.partial-{version}"
    (staging / "data").mkdir(parents=True, exist_ok=True)
    (staging / ".shards").mkdir(exist_ok=True)
    builder = ShardBuilder(task, sources, items, options, staging)
    keep_freed_memory()
    try:
        stats = _run_shards(builder, num_proc, progress)
    finally:
        items.close()
    unreadable = sum(scan.unreadable for scan in scans)
    if unreadable:
        stats.skipped["unreadable"] += unreadable
    shutil.rmtree(staging / ".shards")
    if stats.rows == 0:
        shutil.rmtree(staging)
        reasons = ", ".join(f"{reason} {n}" for reason, n in sorted(stats.skipped.items()))
        raise UserError(f"no rows: every source image was skipped ({reasons})")
    result = BuildResult(out=out, version=version, stats=stats, scans=scans, seconds=time.perf_counter() - started)
    if write_card is not None:
        write_card(staging, result)
    _publish(staging, out)
    result.seconds = time.perf_counter() - started
    return result


def keep_freed_memory() -> None:
    """Every decoded picture, tile and encoded view is a fresh 0.1-1 MB allocation. glibc returns
    blocks that size to the kernel when they are freed (mmap threshold, heap trimming), so the next
    image faults its pages in again: about half a million page faults per thousand jigsaw images,
    about 15% of the build. Keep freed memory for reuse instead (peak memory is unchanged)."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc
        return
    mallopt(-3, 32 * 2**20)  # M_MMAP_THRESHOLD: the largest value glibc accepts
    mallopt(-1, 2**30)  # M_TRIM_THRESHOLD


_FORKED_BUILDER: ShardBuilder | None = None


def _build_forked_shard(index: int) -> None:
    _FORKED_BUILDER.build_shard(index)


def _run_shards(builder: ShardBuilder, num_proc: int, progress: bool) -> ShardStats:
    todo = [i for i in range(len(builder.shards)) if not builder.finished(i)]
    done_items = sum(stop - start for i, (start, stop) in enumerate(builder.shards) if i not in todo)
    bar = tqdm(total=len(builder.items), initial=done_items, desc="building", unit="img",
               disable=not progress, mininterval=0.5)
    if num_proc == 1 or len(todo) <= 1:
        builder.on_rows = bar.update
        for index in todo:
            builder.build_shard(index)
    else:
        global _FORKED_BUILDER
        context = multiprocessing.get_context("fork")
        progress_queue = context.Queue()
        builder.on_rows = progress_queue.put
        _FORKED_BUILDER = builder  # workers inherit it by fork; only shard numbers cross the pipe
        try:
            with context.Pool(min(num_proc, len(todo))) as pool:
                pending = pool.map_async(_build_forked_shard, todo, chunksize=1)
                while not pending.ready():
                    try:
                        bar.update(progress_queue.get(timeout=0.2))
                    except queue.Empty:
                        pass
                pending.get()  # re-raise a worker's error here
        finally:
            _FORKED_BUILDER = None
    builder.on_rows = None
    bar.close()
    stats = ShardStats()
    for index in range(len(builder.shards)):
        stats.add(ShardStats.from_json(builder.stats_path(index).read_text()))
    return stats


def _publish(staging: Path, out: Path):
    """Move the finished folder into place; an existing `out` is replaced only after the new one is whole."""
    if out.exists():
        trash = out.parent / f".{out.name}.replaced-{os.getpid()}"
        os.replace(out, trash)
        os.replace(staging, out)
        shutil.rmtree(trash)
    else:
        os.replace(staging, out)
