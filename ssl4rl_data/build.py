"""source -> normalize -> task -> encode -> write: the one data path every build takes.

The image list is scanned once (lightweight references and content hashes only), deduplicated, and
cut into shards whose boundaries depend only on the number of images. Each shard is built from its
own samples' keys and written as one parquet file into a staging folder next to `--out`, so the
bytes never depend on `--num-proc`, memory stays bounded, an interrupted build resumes from its
finished shards, and `--out` only ever appears complete (one rename at the end).
"""

import dataclasses
import functools
import hashlib
import json
import os
import secrets
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from . import __version__
from .difficulty import RowScorer, check_tier, keep_tier
from .errors import SkipImage, UserError
from .files import DEFAULT_MAX_FILE_BYTES
from .images import IMAGE_FORMATS, decode, encode, sample_rng
from .items import ItemList
from .output import check_out, move_into_place, out_lock, remove_stale_partials, staging_path
from .partners import draw_partner, partner_index
from .records import ShardStats, read_record, write_record
from .scan import SCAN_BATCH, SourceScan, scan  # noqa: F401 (SCAN_BATCH: tests read it here)
from .schema import ARROW_SCHEMA, PARQUET_WRITER_OPTIONS, RowBatch
from .source import Source
from .task import Task
from .workers import LocalEngine, run_shards

SHARD_TARGET_COUNT = 64  # small shards on small builds: every core busy to the end
SHARD_MIN_ROWS, SHARD_MAX_ROWS = 32, 1000


@dataclass
class BuildOptions:
    seed: int = 0
    limit: int | None = None
    image_format: str = "jpeg"
    max_side: int = 448
    difficulty: str | None = None  # keep one tier of the rows' difficulty scores (ssl4rl_data/difficulty.py)

    def __post_init__(self):
        check_tier(self.difficulty)
        if self.image_format not in IMAGE_FORMATS:
            raise UserError(f"--image-format must be one of {', '.join(IMAGE_FORMATS)}, got {self.image_format!r}")
        if self.limit is not None and self.limit < 1:
            raise UserError(f"--limit must be at least 1, got {self.limit}")
        if self.max_side < 0:
            raise UserError(f"--max-side must be 0 (no limit) or positive, got {self.max_side}")


@dataclass
class BuildResult:
    out: Path
    version: str
    stats: ShardStats
    scans: list[SourceScan]
    seconds: float
    files: dict = field(default_factory=dict)  # data/NAME -> {bytes, sha256}: the card's manifest
    removed: list = field(default_factory=list)  # stale staging folders of `out` this build removed
    difficulty: dict | None = None  # with --difficulty: the tier, its cuts, rows before and kept
    engine: dict = field(default_factory=dict)  # what ran the shards (the card's record; not in the version)


def shard_bounds(count: int) -> list[tuple[int, int]]:
    """Contiguous shards that depend on `count` alone (never on the number of processes).

    >>> shard_bounds(100)
    [(0, 32), (32, 64), (64, 96), (96, 100)]
    """
    size = min(SHARD_MAX_ROWS, max(SHARD_MIN_ROWS, -(-count // SHARD_TARGET_COUNT)))
    return [(start, min(start + size, count)) for start in range(0, count, size)]


class ShardBuilder:
    """Turns items into rows. Created once, then shared with worker processes by fork."""

    def __init__(
        self, task: Task, sources: list[Source], items: ItemList, options: BuildOptions, staging: Path, partners=None
    ):
        self.task, self.sources, self.items, self.options = task, sources, items, options
        self.partners = partners  # a PartnerIndex where the task pairs pictures
        self.staging = staging
        self.shards = shard_bounds(len(items))
        self.scorer = RowScorer(task)  # each row's difficulty column
        self.on_rows = None  # called with the number of images done, for the progress bar

    def shard_path(self, index: int) -> Path:
        return self.staging / "data" / f"train-{index:05d}-of-{len(self.shards):05d}.parquet"

    def stats_path(self, index: int) -> Path:
        return self.staging / ".shards" / f"{index:05d}.json"

    def record(self, index: int) -> tuple[ShardStats, dict] | None:
        """A finished shard's stats and file record; None if it is unfinished or its record is damaged."""
        return read_record(self.stats_path(index), self.shard_path(index))

    def finished(self, index: int) -> bool:
        return self.record(index) is not None

    def build_shard(self, index: int) -> ShardStats:
        start, stop = self.shards[index]
        stats, rows = ShardStats(), RowBatch()
        # A name of its own: a retried shard (a Ray worker lost, a partitioned node still writing) never shares
        # a temporary file with another attempt. Leftovers sit in .shards/, which never reaches --out.
        temporary = self.stats_path(index).with_name(f"{index:05d}.parquet.tmp-{secrets.token_hex(8)}")
        with pq.ParquetWriter(temporary, ARROW_SCHEMA, **PARQUET_WRITER_OPTIONS) as writer:
            for position in range(start, stop):
                self._add_row(position, stats, rows)
                if rows.full or (position == stop - 1 and rows):
                    writer.write_table(rows.table())
                    rows = RowBatch()
                if self.on_rows is not None and ((position - start) % 16 == 15 or position == stop - 1):
                    self.on_rows((position - start) % 16 + 1)
        os.replace(temporary, self.shard_path(index))  # the shard exists only once it is whole
        write_record(self.stats_path(index), stats, self.shard_path(index))
        return stats

    def _add_row(self, position: int, stats: ShardStats, rows: RowBatch):
        item = self.items[position]
        try:
            image = self._decode(item)
            rng = sample_rng(self.options.seed, self.task.sample_key(), item.ref.source_id)
            if self.task.pairs_pictures:
                draw = functools.partial(draw_partner, self.items, self.partners, position, image, self._decode, stats)
                sample = self.task.make(image, rng, draw)
            else:
                sample = self.task.make(image, rng)
        except SkipImage as skip:
            stats.skipped[skip.reason] += 1
            return
        except Exception as error:  # one odd image must not sink a long build: count it, report it
            stats.skipped[f"failed-{type(error).__name__}"] += 1
            return
        stats.rows += 1
        stats.rows_by_source[item.source_index] += 1
        stats.answers[sample.answer] += 1
        images = [encode(view, self.options.image_format) for view in sample.images]
        source_ids = [item.ref.source_id, *sample.extra_source_ids]
        rows.add(
            task=self.task.name,
            question=sample.question,
            images=images,
            answer=sample.answer,
            source_ids=source_ids,
            difficulty=self.scorer(sample.answer, sample.images, images, source_ids),
        )

    def _decode(self, item):
        try:
            data = self.sources[item.source_index].read(item.ref.locator)
        except OSError:
            raise SkipImage("unreadable") from None
        return decode(data, self.options.max_side)


def _subset(items: ItemList, count: int, seed: int) -> ItemList:
    """`count` items drawn uniformly by a key of (seed, source id), in source order: taking the first
    `count` would take, say, only the first classes of an ImageFolder."""
    prefix = f"{seed}\0subset\0".encode()
    ranks = [hashlib.blake2b(prefix + bytes(key), digest_size=8).digest() for key in items.id_hashes]
    return items.select(np.sort(np.argsort(np.array(ranks, dtype="V8"), kind="stable")[:count]))


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
    options: BuildOptions,
    out: Path,
    *,
    num_proc: int = 1,
    overwrite: bool = False,
    progress: bool = True,
    write_card=None,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
    engine=None,
) -> BuildResult:
    """Build a dataset folder at `out`. `write_card(folder, result)` renders its README before publishing.
    Input files and records over `max_file_bytes` are skipped and counted. `engine` runs the shards
    (workers.LocalEngine(num_proc) by default; ray_engine.RayEngine on a cluster)."""
    started = time.perf_counter()
    out = Path(out)
    if max_file_bytes < 1:
        raise UserError(f"--max-file-bytes must be at least 1, got {max_file_bytes}")
    if num_proc < 1:
        raise UserError(f"--num-proc must be at least 1, got {num_proc}")
    check_out(out, [s.path for s in sources if s.path is not None and s.path.exists()], overwrite)
    if options.difficulty and RowScorer(task).checker is None:  # said before the build, not after it
        raise UserError(f"--difficulty {options.difficulty}: task {task.name!r} has no checker to score its rows")
    for source in sources:
        source.max_file_bytes = max_file_bytes
    engine = LocalEngine(num_proc) if engine is None else engine
    with out_lock(out), engine:
        check_out(out, [], overwrite)  # again, now that no other build of `out` can run
        items, scans = scan(sources, progress, engine.hasher)
        if options.limit is not None and len(items) > options.limit:
            items = _subset(items, options.limit, options.seed)
        if not items:
            raise UserError("the sources hold no usable image")
        version = build_version(task, options, scans)
        staging = staging_path(out, version)
        removed = remove_stale_partials(out, keep=staging)
        (staging / "data").mkdir(parents=True, exist_ok=True)
        (staging / ".shards").mkdir(exist_ok=True)
        partners = partner_index(items, sources) if task.pairs_pictures else None
        if partners is not None:
            later = partners.later_copies()
            for index, summary in enumerate(scans):
                summary.near_duplicates = int(later[items.source_index == index].sum())
        builder = ShardBuilder(task, sources, items, options, staging, partners)
        try:
            stats, files = _run_shards(builder, engine, progress)
            tiered = keep_tier(builder, options.difficulty) if options.difficulty else None
            if tiered:
                stats, files = tiered[:2]
        finally:
            items.close()
        for summary in scans:
            stats.skipped.update(summary.skipped)
        records = {path.name: path.read_bytes() for path in (staging / ".shards").glob("*.json")}
        shutil.rmtree(staging / ".shards")
        if stats.rows == 0:
            shutil.rmtree(staging)
            reasons = ", ".join(f"{reason} {n}" for reason, n in sorted(stats.skipped.items()))
            raise UserError(f"no rows: every source image was skipped ({reasons})")
        result = BuildResult(
            out=out,
            version=version,
            stats=stats,
            scans=scans,
            files=files,
            removed=removed,
            engine=engine.describe(),
            difficulty=tiered[2] if tiered else None,
            seconds=time.perf_counter() - started,
        )
        if write_card is not None:
            write_card(staging, result)
        try:
            move_into_place(staging, out, overwrite)
        except UserError:  # refused: the staged data stays, with its records, for a rerun to reuse
            (staging / ".shards").mkdir(exist_ok=True)
            for name, data in records.items():
                (staging / ".shards" / name).write_bytes(data)
            raise
    result.seconds = time.perf_counter() - started
    return result


def _run_shards(builder: ShardBuilder, engine, progress: bool) -> tuple[ShardStats, dict]:
    run_shards(builder, engine, progress)
    stats, files = ShardStats(), {}
    for index in range(len(builder.shards)):
        record = builder.record(index)
        if record is None:
            raise OSError(f"the record of shard {index} in {builder.staging} was damaged while building; run again")
        stats.add(record[0])
        files[f"data/{builder.shard_path(index).name}"] = record[1]
    return stats, files
