"""`mmbench:PATH[?split=dev,test]`: MMBench images (VLMEvalKit TSV, Hub parquet, or save_to_disk), one per question.

Each question appears once per rotation of its options (row index + k x 1,000,000), and VLMEvalKit
TSVs store a repeated image as the index of the row that holds it: both become one image, with the
id `mmbench:[config/]split:question`. Only the `index`, `split` and image columns are ever read.
"""

import dataclasses

from ..registry import register_source
from ..tables import Cell, TableSource, image_bytes

COPY_STRIDE = 1_000_000
REFERENCE_MAX_CHARS = 64  # a shorter image cell names the row whose image it reuses


@register_source("mmbench")
class MMBenchSource(TableSource):
    benchmark = "MMBench"
    licence = "MMBench (OpenCompass) terms of use; images were gathered from public sources by the benchmark authors"
    split_aliases = {"validation": "dev", "val": "dev"}

    def refs(self):
        for table_index, table in self.selected_tables():
            image_column = self.image_column(table)
            columns = [c for c in ("index", "split", image_column) if c in table.columns]
            held = {}  # row index -> ref of the row that holds that image (for TSV references)
            for row, values in table.rows(columns):
                split = self.split_aliases.get(values.get("split"), values.get("split")) or table.split or "unknown"
                if self.splits is not None and split not in self.splits:
                    self.exclude("other-split")
                    continue
                index = _as_int(values.get("index"), default=row)
                scope = f"{table.config}/{split}" if table.config else split
                source_id = f"mmbench:{scope}:{index % COPY_STRIDE}"
                cell = values[image_column]
                if isinstance(cell, str) and len(cell.strip()) <= REFERENCE_MAX_CHARS:
                    target = held.get(_as_int(cell, default=None))
                    if target is None:
                        self.exclude("unresolved-image-reference")
                    else:
                        yield dataclasses.replace(target, source_id=source_id)
                    continue
                ref = self.ref(source_id, Cell(table_index, row, image_column), image_bytes(cell))
                if ref is not None:
                    held[index] = ref
                    yield ref


def _as_int(value, default):
    try:
        return int(float(value))
    except (TypeError, ValueError, OverflowError):  # not a number, or inf
        return default
