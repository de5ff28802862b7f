"""`mmbench:PATH[?split=dev,test]`: MMBench images (VLMEvalKit TSV, Hub parquet, or save_to_disk), one per question.

Each question appears once per rotation of its options (row index + k x 1,000,000), and VLMEvalKit
TSVs store a repeated image as the index of the row that holds it (any row, before or after): both
become one image, with the id `mmbench:[config/]split:question`. The builder reads only the `index`,
`split` and image columns; `mmbench_rows` is also the evaluator's reader (train/eval_data.py), which
asks for the label columns too.
"""

from ..registry import register_source
from ..source import ImageRef
from ..table_source import Cell, HeldImages, TableSource, image_bytes
from ..tsv import REFERENCE_MAX_CHARS, as_int, resolve_image_references  # noqa: F401  (REFERENCE_MAX_CHARS re-exported)

COPY_STRIDE = 1_000_000
IMAGE_COLUMNS = ("image",)
LABEL_COLUMNS = (
    "question",
    "hint",
    "A",
    "B",
    "C",
    "D",
    "E",
    "F",
    "G",
    "H",
    "answer",
    "category",
    "l2-category",
    "L2-category",
)


def image_column(table) -> str | None:
    return next((c for c in IMAGE_COLUMNS if c in table.columns), None)


def mmbench_rows(table, labels=()):
    """`(row, values, holder)` for every row of an MMBench table: `values` has `index`, `split`, the
    image column and the asked-for `labels` columns that exist; `holder` is the row whose image is this
    row's (None: a reference to no image). Rows that refer to a later row come last."""
    column = image_column(table)
    columns = [c for c in ("index", "split", column, *labels) if c in table.columns]
    if not getattr(table, "holds_text", lambda column: True)(column):  # Image structs or bytes (a TSV: text)
        return ((row, values, row) for row, values in table.rows(columns))
    return resolve_image_references(table.rows(columns), column)


@register_source("mmbench")
class MMBenchSource(TableSource):
    benchmark = "MMBench"
    licence = "MMBench (OpenCompass) terms of use; images were gathered from public sources by the benchmark authors"
    split_aliases = {"validation": "dev", "val": "dev"}
    image_columns = IMAGE_COLUMNS

    def refs(self):
        for table_index, table in self.selected_tables():
            column = self.image_column(table)
            held = HeldImages()  # row number -> the image it holds, for the rows that refer to it
            for row, values, holder in mmbench_rows(table):
                split = self.split_aliases.get(values.get("split"), values.get("split")) or table.split or "unknown"
                if self.splits is not None and split not in self.splits:
                    self.exclude("other-split")
                    continue
                index = as_int(values.get("index"))
                scope = f"{table.config}/{split}" if table.config else split
                source_id = f"mmbench:{scope}:{(row if index is None else index) % COPY_STRIDE}"
                if holder != row:
                    target = held.get(holder)
                    if target is None:
                        self.exclude("unresolved-image-reference")
                    else:
                        yield ImageRef(source_id, Cell(table_index, holder, column), target[0])
                    continue
                ref = self.ref(source_id, Cell(table_index, row, column), image_bytes(values[column]))
                if ref is not None:
                    held.add(row, ref.digest)
                    yield ref
