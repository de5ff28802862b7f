"""Shard records: what a finished shard leaves in `.shards/NNNNN.json` beside its parquet file.

A record holds the shard's counts (rows, rows per source, skips, answers) and its file's size and
SHA-256, which become the card's manifest. It is written atomically after the shard, so a shard
counts as finished only with a whole record that matches its file; anything else is built again.
"""

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from .output import write_atomic


@dataclass
class ShardStats:
    rows: int = 0
    rows_by_source: Counter = field(default_factory=Counter)
    skipped: Counter = field(default_factory=Counter)
    answers: Counter = field(default_factory=Counter)
    refused: Counter = field(default_factory=Counter)  # contrastive partners drawn again, by reason

    def add(self, other: "ShardStats"):
        self.rows += other.rows
        self.rows_by_source.update(other.rows_by_source)
        self.skipped.update(other.skipped)
        self.answers.update(other.answers)
        self.refused.update(other.refused)

    def to_json(self, shard: dict | None = None) -> str:
        return json.dumps(
            {
                "rows": self.rows,
                "rows_by_source": self.rows_by_source,
                "skipped": self.skipped,
                "answers": self.answers,
                "refused": self.refused,
                "shard": shard,
            }
        )

    @classmethod
    def from_dict(cls, data: dict) -> "ShardStats":
        return cls(
            rows=data["rows"],
            rows_by_source=Counter({int(k): v for k, v in data["rows_by_source"].items()}),
            skipped=Counter(data["skipped"]),
            answers=Counter(data["answers"]),
            refused=Counter(data.get("refused", {})),
        )


def file_record(path: Path) -> dict:
    """The manifest entry of one output file: its size and SHA-256 (what `push` checks before uploading)."""
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return {"bytes": size, "sha256": digest.hexdigest()}


def write_record(path: Path, stats: ShardStats, shard: Path) -> None:
    write_atomic(path, stats.to_json(file_record(shard)))


def read_record(path: Path, shard: Path) -> tuple[ShardStats, dict] | None:
    """(stats, file record) of a finished shard; None if the record is missing or damaged (a full disk,
    a kill) or does not match the shard's file."""
    try:
        data = json.loads(path.read_text())
        entry = data["shard"]
        if shard.stat().st_size != entry["bytes"]:
            return None
        return ShardStats.from_dict(data), entry
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
