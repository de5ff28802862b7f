"""`seedbench:PATH[?split=test]`: SEED-Bench image-question images (lmms-lab parquet or VLMEvalKit TSV), one each.

Video questions (several frames, or `data_type` video) are excluded and counted. Images shared by
several questions become one (`seedbench:DATA_ID`, else the row's index, plus content hashes); a
VLMEvalKit TSV's short image cell is the index of the row holding the image. The builder reads only
the id, `data_type` and image columns; `seedbench_rows` is also the evaluator's reader
(train/eval_data.py), which asks for the label columns too.
"""

from ..registry import register_source
from ..source import ImageRef
from ..table_source import Cell, HeldImages, TableSource, image_bytes
from ..tsv import resolve_image_references

IMAGE_COLUMNS = ("image",)
LMMS_OPTIONS = ("choice_a", "choice_b", "choice_c", "choice_d")
LABEL_COLUMNS = (
    "question",
    "answer",
    "question_id",
    "question_type_id",
    "category",
    *LMMS_OPTIONS,
    "A",
    "B",
    "C",
    "D",
)


def image_column(table) -> str | None:
    return next((c for c in IMAGE_COLUMNS if c in table.columns), None)


def seedbench_rows(table, labels=(), on_exclude=lambda reason: None):
    """`(row, values, holder, item)` for every image question of a SEED-Bench table: `holder` is the row
    whose image cell holds the image (None: a reference to no image), `item` the position inside a
    list-valued cell (lmms-lab parquet) or None. Video questions go to `on_exclude("video")`."""
    column = image_column(table)
    columns = [c for c in ("data_id", "index", "data_type", column, *labels) if c in table.columns]

    def image_rows():
        for row, values in table.rows(columns):
            cell = values[column]
            if isinstance(cell, list) and len(cell) != 1 or str(values.get("data_type") or "image").lower() != "image":
                on_exclude("video")
                continue
            yield row, values

    if getattr(table, "holds_text", lambda column: True)(column):  # a TSV's cells are all text
        resolved = resolve_image_references(image_rows(), column)
    else:  # Image structs, lists of them or bytes: no row refers to another (nothing to keep)
        resolved = ((row, values, row) for row, values in image_rows())
    for row, values, holder in resolved:
        yield row, values, holder, 0 if isinstance(values[column], list) else None


@register_source("seedbench")
class SeedBenchSource(TableSource):
    benchmark = "SEED-Bench"
    licence = "SEED-Bench (AILab-CVC) terms of use; image questions use CC3M images"
    image_columns = IMAGE_COLUMNS

    def refs(self):
        for table_index, table in self.selected_tables():
            column = self.image_column(table)
            held = HeldImages()  # row number -> the image it holds, for the rows that refer to it
            for row, values, holder, item in seedbench_rows(table, on_exclude=self.exclude):
                key = values.get("data_id") or values.get("index") or f"{table.split}-{row}"
                if holder != row:
                    target = held.get(holder)
                    if target is None:
                        self.exclude("unresolved-image-reference")
                    else:
                        digest, holder_item = target
                        yield ImageRef(f"seedbench:{key}", Cell(table_index, holder, column, holder_item), digest)
                    continue
                cell = values[column][item] if item is not None else values[column]
                ref = self.ref(f"seedbench:{key}", Cell(table_index, row, column, item), image_bytes(cell))
                if ref is not None:
                    held.add(row, ref.digest, item)
                    yield ref
