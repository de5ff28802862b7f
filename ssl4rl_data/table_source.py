"""The base of the table-backed sources (MMBench, SEED-Bench, ImageNet tables, hf:), beside them.

A table source lists light references (`Cell`: table, row, column) to the image cells of the tables
`tables.py` opens, projecting only image and id columns when it scans, and re-reads one cell by
reference in any worker. The evaluator reads the same tables through the same readers, with the label
columns it needs (`sources/mmbench.py`, `sources/seedbench.py`).
"""

import base64
import binascii
from dataclasses import dataclass
from typing import Iterator

from .errors import UserError
from .images import content_digest
from .source import ImageRef, Source
from .tables import Table, open_tables


def image_bytes(value) -> bytes | None:
    """Encoded image bytes from a cell: an Image struct, raw bytes or a base64 string; None otherwise."""
    if isinstance(value, dict):
        value = value.get("bytes")
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, str) and len(value) > 64:
        try:
            return base64.b64decode(value, validate=False)
        except (binascii.Error, ValueError):
            return None
    return None


class HeldImages:
    """Row number -> (content digest, item) of the image that row holds, for rows that refer to another
    row's image: 17 bytes a row in one bytearray, where a dict of refs took about 450 bytes a row (130 MiB
    for a 300,000-row table)."""

    WIDTH = 17  # a flag (0: no image, 1: item None, 2: item 0), then the 16-byte digest

    def __init__(self):
        self._data = bytearray()

    def add(self, row: int, digest: str, item: int | None = None):
        start = row * self.WIDTH
        if len(self._data) < start + self.WIDTH:
            self._data.extend(bytes(start + self.WIDTH - len(self._data)))
        self._data[start] = 1 if item is None else 2 + item
        value = bytes.fromhex(digest)
        if len(value) != self.WIDTH - 1 or item not in (None, 0):
            raise ValueError(f"cannot hold digest {digest!r} with item {item!r}")
        self._data[start + 1 : start + self.WIDTH] = value

    def get(self, row: int | None) -> tuple[str, int | None] | None:
        start = -1 if row is None else row * self.WIDTH
        if start < 0 or start >= len(self._data) or not self._data[start]:
            return None
        flag = self._data[start]
        return self._data[start + 1 : start + self.WIDTH].hex(), None if flag == 1 else flag - 2


@dataclass(frozen=True)
class Cell:
    table: int
    row: int
    column: str
    item: int | None = None  # position inside a list-valued cell


class TableSource(Source):
    """A benchmark source over tables: `?split=a,b` picks splits; subclasses say which rows and ids."""

    image_columns = ("image",)
    split_aliases: dict[str, str] = {}
    expected = "a TSV or parquet file, a folder of them, or a save_to_disk folder"

    def __init__(self, path, options):
        super().__init__(path, options)
        wanted = self.options.get("split")
        self.splits = {self.split_aliases.get(s, s) for s in wanted.split(",")} if wanted else None
        self.excluded: dict[str, int] = {}
        self.tables = self.open_tables(path)
        for table in self.tables:
            table.split = self.split_aliases.get(table.split, table.split)
            if self.image_column(table) is None:
                raise UserError(
                    f"source {self.name}: {table.name} has no image column ({' or '.join(self.image_columns)}); "
                    f"expected {self.expected}"
                )

    def open_tables(self, path: str) -> list[Table]:
        tables = open_tables(self.path)
        if not tables:
            raise UserError(f"source {self.name}: no tables in {path}; expected {self.expected}")
        return tables

    def option_names(self):
        return ("split",)

    def image_column(self, table: Table) -> str | None:
        return next((c for c in self.image_columns if c in table.columns), None)

    def selected_tables(self) -> Iterator[tuple[int, Table]]:
        for index, table in enumerate(self.tables):
            table.max_record_bytes, table.on_skip = self.max_file_bytes, self.skip
            if self.splits is None or table.split in self.splits:
                yield index, table

    def exclude(self, reason: str):
        self.excluded[reason] = self.excluded.get(reason, 0) + 1

    def ref(self, source_id: str | None, locator, data: bytes | None) -> ImageRef | None:
        """A reference to `data`, or None (counted) when the row holds no image. A `source_id` of
        None means the content hash, for sources whose own ids would reveal labels."""
        if data is None:
            self.exclude("no-image-in-row")
            return None
        digest = content_digest(data)
        return ImageRef(source_id=source_id or f"{self.name}:{digest}", locator=locator, digest=digest)

    def read(self, locator: Cell) -> bytes:
        value = self.tables[locator.table].cell(locator.row, locator.column)
        if locator.item is not None:
            value = value[locator.item]
        data = image_bytes(value)
        if data is None:
            raise OSError(f"no image bytes at {locator}")
        return data

    def describe(self):
        used = sorted({t.split or "unknown" for _, t in self.selected_tables()})
        return {**super().describe(), "splits": used, "excluded_rows": dict(self.excluded)}
