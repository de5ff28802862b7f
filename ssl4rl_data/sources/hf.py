"""`hf:PATH_OR_REPO[?column=image&split=train&config=NAME]`: any dataset `datasets` can load, by its image column.

A local folder or file loads offline; a Hub repo id needs to be online (or cached). Only the image
column is read. Ids are `hf:SPLIT:ROW`.
"""

from ..errors import UserError
from ..registry import register_source
from ..tables import ArrowTable, Cell, TableSource, image_bytes


@register_source("hf")
class HfSource(TableSource):
    takes_path = False  # a repo id is not a local path

    def open_tables(self, path):
        if not path:
            raise UserError("source hf needs a dataset: --source hf:PATH_OR_REPO_ID")
        import datasets

        split = self.options.get("split", "train")
        try:
            dataset = datasets.load_dataset(path, name=self.options.get("config"), split=split)
        except Exception as error:  # datasets raises many kinds; the user needs its message, on one line
            message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise UserError(f"source hf: cannot load {path!r} (split {split!r}): {message}") from None
        column = self.options.get("column") or next(
            (name for name, feature in dataset.features.items() if type(feature).__name__ == "Image"), None)
        if column not in dataset.column_names:
            raise UserError(f"source hf: {path} has no image column {column!r}; pick one with ?column=NAME "
                            f"(columns: {', '.join(dataset.column_names)})")
        self.column, self.split = column, split
        return [ArrowTable(dataset, str(path), split, self.options.get("config"))]

    def image_column(self, table):
        return self.column

    def option_names(self):
        return ("column", "split", "config")

    def refs(self):
        for row, values in self.tables[0].rows([self.column]):
            ref = self.ref(f"hf:{self.split}:{row}", Cell(0, row, self.column), image_bytes(values[self.column]))
            if ref is not None:
                yield ref
