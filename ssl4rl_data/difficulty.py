"""Each row's model-free difficulty (the `difficulty` column) and `build --difficulty TIER`.

The score is the one `ssl4rl-data audit` reports: the task's checker (ssl4rl_data/audit/) run on the
row, 0 (the answer stands far apart from every other) to 1 (another answer fits the pixels as well).
The build scores the views before they are encoded, the audit the decoded files: the two differ by
what JPEG q95 changes (PNG builds: not at all). A task without a checker, or a row its checker cannot
score (or scores NaN), has no score (null), and is in no tier: `--difficulty` drops it (the
card counts such rows as `unscored`).

Tiers are thirds of the scores of the whole build, so they can only be cut once every shard is
written: `keep_tier` then rewrites each shard with its tier's rows. Rows with equal scores share a tier
(a cut that falls on them puts them all below it), so many equal scores make tiers uneven; a tier left
without a row is refused in one line before any shard is rewritten. The cuts are saved first, and each
rewritten shard's record says so, so a build interrupted while rewriting resumes where it stopped.
"""

import json
import math
from collections import Counter

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from .audit.checks import Row, get_checker  # the checkers alone: the audit's statistics stay unloaded
from .errors import UserError
from .output import write_atomic
from .records import ShardStats, file_record
from .schema import ARROW_SCHEMA, PARQUET_WRITER_OPTIONS, SOURCE_ID_SEPARATOR

TIERS = ("easy", "medium", "hard")
DIGITS = 4  # stored rounded: last-bit differences (another machine's numpy) change a score only at a rounding edge


def check_tier(tier: str | None) -> None:
    if tier is not None and tier not in TIERS:
        raise UserError(f"--difficulty must be one of {', '.join(TIERS)}, got {tier!r}")


def tier_cuts(scores) -> np.ndarray | None:
    """The scores at the first and second thirds; None without a score."""
    known = np.array([s for s in scores if s is not None], float)
    return np.quantile(known, [1 / 3, 2 / 3]) if len(known) else None


def tier_of(score: float | None, cuts) -> str | None:
    """'easy' up to the first cut, 'medium' up to the second, 'hard' above; None without a score."""
    return None if score is None or cuts is None else TIERS[int(np.searchsorted(cuts, score, side="left"))]


def difficulty_tiers(scores: list) -> tuple[dict | None, list]:
    """Summary of the rows' difficulty scores and each row's tier (thirds by score; None without a score)."""
    cuts = tier_cuts(scores)
    if cuts is None:
        return None, [None] * len(scores)
    known = np.array([s for s in scores if s is not None], float)
    tiers = [tier_of(s, cuts) for s in scores]
    summary = {
        "rows_scored": int(len(known)),
        "quantiles": {
            q: round(float(np.quantile(known, float(q))), 4) for q in ("0", "0.25", "0.5", "0.75", "0.9", "1")
        },
        "tier_cuts": [round(float(c), 4) for c in cuts],
        "tiers": dict(Counter(t for t in tiers if t)),
    }
    return summary, tiers


class RowScorer:
    """The difficulty of a sample as the task's checker scores it (None for a task without one)."""

    def __init__(self, task):
        self.checker = get_checker(task.name, task.parameters(), score_only=True)

    def __call__(self, answer: str, images: list[Image.Image], encoded: list[bytes], source_ids: list[str]):
        if self.checker is None:
            return None
        row = Row(-1, encoded, answer, SOURCE_ID_SEPARATOR.join(source_ids))
        rgb = [image if image.mode == "RGB" else image.convert("RGB") for image in images]
        _, score = self.checker.examine(row, rgb)
        if score is None or not math.isfinite(score):  # NaN would make every tier cut NaN
            return None
        return round(float(score), DIGITS)


def keep_tier(builder, tier: str) -> tuple[ShardStats, dict, dict]:
    """Rewrite every shard of `builder` (a ShardBuilder whose shards are all built) with only the rows of
    `tier`; returns the build's stats, its files' manifest and a summary for the card."""
    saved = builder.staging / ".shards" / "difficulty.json"
    if saved.exists():
        summary = json.loads(saved.read_text())
    else:  # no shard is rewritten before the cuts are saved: every shard still holds all its rows
        scores = [
            score
            for index in range(len(builder.shards))
            for score in pq.read_table(builder.shard_path(index), columns=["difficulty"]).column(0).to_pylist()
        ]
        if not scores:  # every image was skipped: the build says so, with the reasons
            return (*_collect(builder), {})
        cuts = tier_cuts(scores)
        if cuts is None:
            raise UserError(
                f"--difficulty {tier}: the checker of task {builder.task.name!r} scored none of the {_rows(len(scores))}"
            )
        if not any(tier_of(score, cuts) == tier for score in scores):
            raise UserError(
                f"--difficulty {tier}: no row falls in this tier ({_rows(len(scores))}, cuts at {cuts[0]:.4g} and "
                f"{cuts[1]:.4g}; rows with equal scores share a tier, so few rows or many equal scores leave "
                "a tier empty)"
            )
        summary = {
            "tier": tier,
            "cuts": [float(c) for c in cuts],
            "rows_before": len(scores),
            "unscored": sum(s is None for s in scores),
        }
        write_atomic(saved, json.dumps(summary))
    stats, files = _collect(builder, summary)
    return stats, files, {**summary, "rows_kept": stats.rows}


def _rows(count: int) -> str:
    return f"{count} row" if count == 1 else f"{count} rows"


def _collect(builder, summary: dict | None = None) -> tuple[ShardStats, dict]:
    """The build's stats and manifest from its shard records; with a tier's `summary`, every shard not yet
    cut to that tier is rewritten first."""
    stats, files = ShardStats(), {}
    for index in range(len(builder.shards)):
        shard_stats, entry = builder.record(index)
        if summary is not None and entry.get("tier") != summary["tier"]:
            shard_stats, entry = _rewrite(builder, index, shard_stats, summary)
        stats.add(shard_stats)
        files[f"data/{builder.shard_path(index).name}"] = {k: entry[k] for k in ("bytes", "sha256")}
    return stats, files


def _rewrite(builder, index: int, old: ShardStats, summary: dict) -> tuple[ShardStats, dict]:
    """Shard `index` with its tier's rows only, row group by row group (groups stay within their bounds),
    replacing the file atomically, then its record (marked with the tier)."""
    path, cuts = builder.shard_path(index), np.array(summary["cuts"])
    source = pq.ParquetFile(path)
    kept = []
    for group in range(source.num_row_groups):
        table = source.read_row_group(group)
        mask = [tier_of(score, cuts) == summary["tier"] for score in table.column("difficulty").to_pylist()]
        kept.append(table.filter(pa.array(mask, pa.bool_())))
    temporary = builder.stats_path(index).with_name(f"{index:05d}.parquet.tier")
    with pq.ParquetWriter(temporary, ARROW_SCHEMA, **PARQUET_WRITER_OPTIONS) as writer:
        for table in kept:
            if len(table):
                writer.write_table(table)
    rows = pa.concat_tables(kept) if kept else ARROW_SCHEMA.empty_table()  # a shard whose images were all skipped
    temporary.replace(path)
    stats = ShardStats(
        rows=len(rows),
        rows_by_source=_rows_by_source(builder, index, rows.column("source_id").to_pylist()),
        skipped=old.skipped,
        answers=Counter(rows.column("answer").to_pylist()),
        refused=old.refused,
    )
    entry = {**file_record(path), "tier": summary["tier"]}
    write_atomic(builder.stats_path(index), stats.to_json(entry))
    return stats, entry


def _rows_by_source(builder, index: int, source_ids: list[str]) -> Counter:
    """Rows per source of a shard's kept rows: their pictures, matched in order to the shard's items."""
    start, stop = builder.shards[index]
    wanted = iter(source_id.split(SOURCE_ID_SEPARATOR)[0] for source_id in source_ids)
    counts, target = Counter(), next(wanted, None)
    for position in range(start, stop):
        if target is None:
            break
        item = builder.items[position]
        if item.ref.source_id == target:
            counts[item.source_index] += 1
            target = next(wanted, None)
    return counts
