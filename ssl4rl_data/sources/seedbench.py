"""`seedbench:PATH[?split=test]`: SEED-Bench image-question images (lmms-lab parquet or VLMEvalKit TSV), one each.

Video questions (several frames, or `data_type` video) are excluded and counted. Images shared by
several questions become one (`seedbench:DATA_ID`, else the row's index, plus content hashes).
Only the id, `data_type` and image columns are ever read.
"""

from ..registry import register_source
from ..tables import Cell, TableSource, image_bytes


@register_source("seedbench")
class SeedBenchSource(TableSource):
    benchmark = "SEED-Bench"
    licence = "SEED-Bench (AILab-CVC) terms of use; image questions use CC3M images"

    def refs(self):
        for table_index, table in self.selected_tables():
            image_column = self.image_column(table)
            columns = [c for c in ("data_id", "index", "data_type", image_column) if c in table.columns]
            for row, values in table.rows(columns):
                cell, item = values[image_column], None
                if isinstance(cell, list):
                    if len(cell) != 1:
                        self.exclude("video")
                        continue
                    cell, item = cell[0], 0
                if str(values.get("data_type", "image")).lower() != "image":
                    self.exclude("video")
                    continue
                key = values.get("data_id") or values.get("index") or f"{table.split}-{row}"
                ref = self.ref(f"seedbench:{key}", Cell(table_index, row, image_column, item), image_bytes(cell))
                if ref is not None:
                    yield ref
