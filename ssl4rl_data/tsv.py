"""VLMEvalKit TSV tables (a `tables.Table`), read as pandas writes them, with rows found again by byte offset."""

import csv
import io
import sys
from pathlib import Path

from .errors import UserError
from .files import DEFAULT_MAX_FILE_BYTES

csv.field_size_limit(sys.maxsize)  # base64 image cells are megabytes long


class TsvTable:
    """A VLMEvalKit TSV, read as pandas writes it: tab-separated, a field quoted only when it is quoted
    whole (it starts with `"`, `""` inside is one quote, and it may span lines); a quote inside an
    unquoted field (`5" screen`) is a plain character. A row that cannot be read (a wrong number of
    fields, or more than `max_record_bytes`) is reported to `on_skip` and left out, never merged into
    its neighbours. Non-UTF-8 bytes are replaced. Records are found by byte offset, so a row can be
    re-read without a scan."""

    max_record_bytes = DEFAULT_MAX_FILE_BYTES
    on_skip = staticmethod(lambda reason: None)

    def __init__(self, path: Path, split, config):
        self.name, self.split, self.config = path.name, split, config  # the `tables.Table` interface
        self.path = path
        self.offsets: dict[int, int] = {}
        with open(path, "rb") as handle:
            header = self._record(handle)
        if header is TOO_LARGE:
            raise UserError(f"{path}: the header line is longer than {self.max_record_bytes} bytes; not a TSV table")
        self._header = self._parse(header or b"")

    @property
    def columns(self):
        return self._header

    def rows(self, columns):
        wanted = [self._header.index(c) for c in columns]
        with open(self.path, "rb") as handle:
            self._record(handle)
            number = 0
            while True:
                offset = handle.tell()
                fields = self._row(handle)
                if fields is None:
                    return
                if isinstance(fields, str):
                    self.on_skip(fields)
                    continue
                self.offsets[number] = offset
                yield number, {name: fields[i] for name, i in zip(columns, wanted, strict=True)}
                number += 1

    def cell(self, row, column):
        """One cell, by row number; the rows' offsets are indexed first when no scan has done it."""
        if row not in self.offsets:
            for number, _ in self.rows([]):
                if number == row:
                    break
            else:
                raise IndexError(f"{self.path}: no row {row}")
        with open(self.path, "rb") as handle:
            handle.seek(self.offsets[row])
            fields = self._row(handle)
        if not isinstance(fields, list):  # the file changed since it was scanned
            raise OSError(f"{self.path}: row {row} can no longer be read")
        return fields[self._header.index(column)]

    def _row(self, handle) -> list[str] | str | None:
        """The next row's fields; a skip reason for a row that cannot be read; None at the end. Blank
        lines are passed over."""
        while True:
            start = handle.tell()
            record = self._record(handle)
            if record is None:
                return None
            if record is TOO_LARGE:
                return "row-too-large"
            if record.strip():
                break
        fields = self._parse(record)
        if len(fields) != len(self._header) and record.count(b"\n") > 1:
            # A field that opened a quote and never closed it properly swallowed the following lines:
            # read the first line alone, its quotes as plain characters, and go on from the next line.
            handle.seek(start)
            line = handle.readline()
            fields = next(
                csv.reader([line.decode("utf-8", "replace").rstrip("\r\n")], delimiter="\t", quoting=csv.QUOTE_NONE)
            )
        return fields if len(fields) == len(self._header) else "unreadable-row"

    def _record(self, handle):
        """One record's bytes (lines are joined while a quoted field is open); TOO_LARGE past the limit
        (the rest of its line is passed over); None at the end of the file."""
        limit = self.max_record_bytes
        record = handle.readline(limit + 1)
        if not record:
            return None
        position, quoted = 0, False
        while True:
            if len(record) > limit:
                while record and not record.endswith(b"\n"):
                    record = handle.readline(1 << 20)
                return TOO_LARGE
            if quoted:  # find the closing quote: a '"' not followed by another
                end = record.find(b'"', position)
                while end >= 0 and record[end + 1 : end + 2] == b'"':
                    end = record.find(b'"', end + 2)
                if end < 0:
                    line = handle.readline(limit + 1 - len(record))
                    if not line:
                        return record
                    position, record = len(record), record + line
                    continue
                quoted, position = False, end + 1
            elif record[position : position + 1] == b'"':  # a field quoted whole
                quoted, position = True, position + 1
                continue
            tab = record.find(b"\t", position)
            if tab < 0:
                return record
            position = tab + 1

    @staticmethod
    def _parse(record: bytes) -> list[str]:
        text = record.decode("utf-8", "replace")
        return next(csv.reader(io.StringIO(text), delimiter="\t")) if text.strip() else []


TOO_LARGE = object()


REFERENCE_MAX_CHARS = 64  # VLMEvalKit: an image cell this short is the `index` of the row holding the image


def as_int(value) -> int | None:
    """An index cell as an int (`12`, `12.0`, 12), or None (empty, not a number, inf)."""
    try:
        return int(float(value))
    except (TypeError, ValueError, OverflowError):
        return None


def is_reference(cell) -> bool:
    return isinstance(cell, str) and len(cell.strip()) <= REFERENCE_MAX_CHARS


def resolve_image_references(rows, image_column: str, index_column: str = "index"):
    """`(row, values, holder)` for each `(row, values)`: `holder` is the row number whose image cell
    holds this row's image (the row itself, unless its cell is a reference), or None for a reference
    that names no row holding an image. VLMEvalKit resolves a reference against the whole file, so a
    reference may name a later row: such rows are yielded after the pass, so a holder always comes
    before the rows that refer to it. Only the referring rows' requested cells are kept meanwhile."""
    held, pending = {}, []
    for row, values in rows:
        cell = values.get(image_column)
        if is_reference(cell):
            holder = held.get(as_int(cell))
            if holder is None:
                pending.append((row, values))
            else:
                yield row, values, holder
            continue
        index = as_int(values.get(index_column))
        if index is not None:
            held.setdefault(index, row)
        yield row, values, row
    for row, values in pending:
        yield row, values, held.get(as_int(values.get(image_column)))
