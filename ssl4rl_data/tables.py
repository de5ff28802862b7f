"""Lazy, column-projected readers for the tabular files benchmarks ship as.

A `Table` streams `(row_number, {column: value})` for exactly the columns asked for, and fetches one
cell again by row number, so a source can hand out light references and re-read an image in any
worker. The builder's sources ask for image and id columns only (`table_source.py`); the evaluator
also asks for the label columns it scores against. Formats: VLMEvalKit TSV (`tsv.py`: base64 cells,
quoted multi-line fields), parquet files and Hub-layout folders of them, and `save_to_disk` folders.
"""

import os
import pickle
import re
import tempfile
from array import array
from pathlib import Path
from typing import Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from .errors import UserError
from .tsv import TsvTable

BATCH_ROWS = 64
# Parquet is read through a buffered stream of this size, a page at a time: without it pyarrow reads a whole
# column chunk (every image of a row group, all of a file pandas wrote) into memory before the first row.
READ_BUFFER_BYTES = 1 << 20
# A row group's image column up to this size (uncompressed) is cached whole for re-reading cells at random;
# a larger one is streamed from a cursor, BATCH_ROWS at a time.
CACHED_GROUP_BYTES = 64 << 20
SPLIT_FROM_NAME = re.compile(r"^([A-Za-z]+)(?:[-_.]\d|$)")
KNOWN_SPLITS = ("train", "dev", "val", "validation", "test")


class Table:
    """One split of one file (or `save_to_disk` dataset)."""

    def __init__(self, name: str, split: str | None, config: str | None):
        self.name, self.split, self.config = name, split, config

    @property
    def columns(self) -> list[str]:
        raise NotImplementedError

    def rows(self, columns: list[str]) -> Iterator[tuple[int, dict]]:
        raise NotImplementedError

    def cell(self, row: int, column: str):
        raise NotImplementedError

    def holds_text(self, column: str) -> bool:
        """Whether `column`'s cells may be text: only a text cell (a row's index) can refer to another row's
        image, so a table whose image column holds none needs no reference resolution (nor its memory)."""
        return True


def _text_type(data_type) -> bool:
    """A string type (or dictionary-encoded strings): the only cells `to_pylist` gives as `str`."""
    if pa.types.is_dictionary(data_type):
        data_type = data_type.value_type
    return pa.types.is_string(data_type) or pa.types.is_large_string(data_type) or pa.types.is_string_view(data_type)


class ParquetTable(Table):
    """A parquet file, read BATCH_ROWS rows at a time through a small buffer: memory stays flat whatever
    the size of its row groups (a 300,000-row file of one row group scans in the memory of a 30,000-row
    one; benchmarks/scan_memory.py)."""

    def __init__(self, path: Path, split, config):
        super().__init__(path.name, split, config)
        self.path = path
        self._file, self._pid = None, None
        self._cached = (None, None, None)  # (row group, column, values): sequential reads hit it
        self._cursor = None  # (row group, column, first row of `batch`, batch, batches) for large groups
        self._spool = None  # (file, columns, offsets): a full rows() pass over a file with large groups

    def __getstate__(self):
        """Pickled for a Ray worker: the path, without this process's handle, caches or spool file (the
        worker opens its own; without the spool, a cell of a large row group is streamed to)."""
        return {
            **self.__dict__,
            "_file": None,
            "_pid": None,
            "_cached": (None, None, None),
            "_cursor": None,
            "_spool": None,
        }

    @property
    def file(self) -> pq.ParquetFile:
        if self._file is None or self._pid != os.getpid():  # each forked worker opens its own handle
            try:
                self._file = pq.ParquetFile(self.path, buffer_size=READ_BUFFER_BYTES, pre_buffer=False)
                self._pid, self._cached, self._cursor = os.getpid(), (None, None, None), None  # (the spool is kept)
            except (pa.ArrowException, OSError, ValueError) as error:
                raise _damaged(self.path, error) from None
        return self._file

    @property
    def columns(self):
        return self.file.schema_arrow.names

    def holds_text(self, column):
        return _text_type(self.file.schema_arrow.field(column).type)

    def rows(self, columns):
        """Every row's `columns`. Where a row group's columns are over CACHED_GROUP_BYTES (pandas writes
        one group per file), the pass also keeps each row's cells in an anonymous spool file, so `cell`
        reads any of them back at once (partners are drawn at random) without holding the group."""
        spool = None
        if self._spool is None and self._large_groups(columns):
            spool = (tempfile.TemporaryFile(prefix="ssl4rl-table-"), list(columns), array("q", [0]))
        for number, values in self._batched_rows(columns):
            if spool is not None:
                record = pickle.dumps(values, protocol=pickle.HIGHEST_PROTOCOL)
                spool[0].write(record)
                spool[2].append(spool[2][-1] + len(record))
            yield number, values
        if spool is not None:  # a complete pass: its cells can be read back
            spool[0].flush()
            self._spool = spool

    def _large_groups(self, columns) -> bool:
        return any(
            sum(self._group_bytes(group, column) for column in columns) > CACHED_GROUP_BYTES
            for group in range(self.file.num_row_groups)
        )

    def _batched_rows(self, columns):
        # One thread: pyarrow's reader threads work ahead and, with its allocator, hold more memory the
        # longer the table (30,000 -> 300,000 rows: +52 MiB with threads, +10 MiB without).
        number, batches = 0, self.file.iter_batches(batch_size=BATCH_ROWS, columns=columns, use_threads=False)
        while True:
            try:
                batch = next(batches, None)
            except (pa.ArrowException, OSError, ValueError) as error:  # a damaged page in the middle
                raise _damaged(self.path, error) from None
            if batch is None:
                return
            for values in batch.to_pylist():
                yield number, values
                number += 1

    def cell(self, row, column):
        if self._spool is not None and column in self._spool[1] and row + 1 < len(self._spool[2]):
            handle, _, offsets = self._spool
            return pickle.loads(os.pread(handle.fileno(), offsets[row + 1] - offsets[row], offsets[row]))[column]
        group, offset = self._locate(row)
        if self._group_bytes(group, column) > CACHED_GROUP_BYTES:
            return self._streamed_cell(group, offset, column)
        if self._cached[:2] != (group, column):
            self._cached = (group, column, self.file.read_row_group(group, columns=[column]).column(0))
        return self._cached[2][offset].as_py()

    def _group_bytes(self, group: int, column: str) -> int:
        """Uncompressed bytes of `column` (all its leaves: an Image struct has two) in row group `group`."""
        metadata = self.file.metadata.row_group(group)
        return sum(
            metadata.column(i).total_uncompressed_size
            for i in range(metadata.num_columns)
            if metadata.column(i).path_in_schema.split(".")[0] == column
        )

    def _streamed_cell(self, group: int, offset: int, column: str):
        """A cell of a large row group, from a cursor that moves forward BATCH_ROWS rows at a time: the
        builder's reads of one shard go forward, so each batch is read once; a read behind the cursor
        starts the group again."""
        cursor = self._cursor
        if cursor is None or cursor[:2] != (group, column) or offset < cursor[2]:
            batches = self.file.iter_batches(
                batch_size=BATCH_ROWS, row_groups=[group], columns=[column], use_threads=False
            )
            cursor = (group, column, 0, next(batches).column(0), batches)
        while offset >= cursor[2] + len(cursor[3]):
            cursor = (group, column, cursor[2] + len(cursor[3]), next(cursor[4]).column(0), cursor[4])
        self._cursor = cursor
        return cursor[3][offset - cursor[2]].as_py()

    def _locate(self, row):
        for group in range(self.file.num_row_groups):
            size = self.file.metadata.row_group(group).num_rows
            if row < size:
                return group, row
            row -= size
        raise IndexError(row)


def _damaged(path: Path, error: Exception) -> UserError:
    message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return UserError(f"{path} is not a readable parquet file ({message})")


class ArrowTable(Table):
    """A split written by `Dataset.save_to_disk`: memory-mapped, read as raw Arrow (no image decoding)."""

    def __init__(self, dataset, name, split, config):
        super().__init__(name, split, config)
        self.dataset = dataset.with_format("arrow")

    @property
    def columns(self):
        return self.dataset.column_names

    def holds_text(self, column):
        return _text_type(self.dataset.data.schema.field(column).type)

    def rows(self, columns):
        files = self._files()
        if files is None:
            subset = self.dataset.select_columns(columns)
            for start in range(0, len(subset), BATCH_ROWS):
                for offset, values in enumerate(subset[start : start + BATCH_ROWS].to_pylist()):
                    yield start + offset, values
            return
        # Read, not mapped: the pages of a mapped file stay in the process's memory once touched (a scan of
        # 300,000 small images peaked 340 MiB above one of 30,000); read, a record batch at a time.
        number = 0
        for path in files:
            with pa.OSFile(path) as handle:
                for batch in pa.ipc.open_stream(handle):
                    batch = batch.select(columns)
                    for start in range(0, batch.num_rows, BATCH_ROWS):
                        for values in batch.slice(start, BATCH_ROWS).to_pylist():
                            yield number, values
                            number += 1
        if number != len(self.dataset):  # the guard below should make this impossible
            raise UserError(f"{self.name}: read {number} rows from its files, expected {len(self.dataset)}")

    def _files(self) -> list[str] | None:
        """The Arrow stream files that hold exactly this dataset's rows in order, or None (an indices
        mapping, a slice or any other transform: then the mapped table is read)."""
        from datasets.table import ConcatenationTable, MemoryMappedTable

        if getattr(self.dataset, "_indices", None) is not None:
            return None
        table = getattr(self.dataset, "_data", None)
        blocks = [[table]] if isinstance(table, MemoryMappedTable) else getattr(table, "blocks", None)
        if not isinstance(table, (MemoryMappedTable, ConcatenationTable)) or not blocks:
            return None
        files = []
        for row in blocks:
            if len(row) != 1 or not isinstance(row[0], MemoryMappedTable):
                return None
            if any(replay[0] != "replace_schema_metadata" for replay in row[0].replays or ()):
                return None
            files.append(row[0].path)
        return files

    def cell(self, row, column):
        return self.dataset.select_columns([column])[row : row + 1].column(0)[0].as_py()


def split_of(path: Path, root: Path) -> tuple[str | None, str | None]:
    """(split, config) from a Hub-style path: `en/dev-00000-of-00001.parquet` -> ('dev', 'en').

    >>> split_of(Path("r/en/dev-00000-of-00001.parquet"), Path("r")), split_of(Path("r/data/test.parquet"), Path("r"))
    (('dev', 'en'), ('test', None))
    >>> split_of(Path("r/MMBench_DEV_EN.tsv"), Path("r"))
    ('dev', None)
    """
    match = SPLIT_FROM_NAME.match(path.stem)
    split = match.group(1).lower() if match else None
    if split is None:  # VLMEvalKit names such as MMBench_DEV_EN.tsv
        split = next((t for t in re.split(r"[-_.]", path.stem.lower()) if t in KNOWN_SPLITS), None)
    parts = path.relative_to(root).parts[:-1]
    if split is None and parts:
        split, parts = parts[-1].lower(), parts[:-1]
    config = parts[0] if parts and parts[0] != "data" else None
    return split, config


def open_tables(path: Path) -> list[Table]:
    """Every table under `path`: a .tsv/.parquet file, a `save_to_disk` folder, or a folder of parquet files."""
    if path.is_file():
        if path.suffix == ".tsv":
            return [TsvTable(path, *split_of(path, path.parent))]
        if path.suffix == ".parquet":
            return [ParquetTable(path, *split_of(path, path.parent))]
        raise UserError(f"{path}: expected a .tsv or .parquet file")
    if (path / "dataset_dict.json").exists() or (path / "state.json").exists():
        from datasets import load_from_disk

        loaded = load_from_disk(str(path))
        splits = loaded.items() if hasattr(loaded, "keys") else [(None, loaded)]
        return [ArrowTable(dataset, f"{path.name}/{split}", split, None) for split, dataset in splits]
    files = sorted(path.rglob("*.parquet")) or sorted(path.rglob("*.tsv"))
    return [(TsvTable if f.suffix == ".tsv" else ParquetTable)(f, *split_of(f, path)) for f in files]
