"""`hf:PATH_OR_REPO[?column=image&split=train&config=NAME]`: any dataset `datasets` can load, by its image column.

Local layouts: a folder `datasets` loads (an image folder, a folder of data files), one .parquet
file, or a `save_to_disk` folder (a Dataset or a DatasetDict). A Hub repo id needs to be online (or
cached). Only the image column is read; images an image folder references by path are read from
there (regular files only, within --max-file-bytes). Ids are `hf:SPLIT:ROW`.
"""

import functools
import json
import os
from pathlib import Path

from ..errors import SkipImage, UserError
from ..files import read_file
from ..registry import register_source
from ..table_source import Cell, TableSource, image_bytes
from ..tables import ArrowTable, ParquetTable

LAYOUTS = (
    "a Hub dataset id, a folder `datasets` loads (an image folder, a folder of data files), "
    "a .parquet file or a save_to_disk folder"
)


@register_source("hf")
class HfSource(TableSource):
    takes_path = False  # a repo id is not a local path

    @property
    def split(self) -> str:
        return self.options.get("split", "train")

    def open_tables(self, path):
        """The one table the dataset is, checked to hold an image column; nothing is kept on the source."""
        if not path:
            raise UserError("source hf needs a dataset: --source hf:PATH_OR_REPO_ID")
        local = Path(path)
        if local.is_file() and local.suffix == ".parquet" and self.split == "train":
            # Streamed a page at a time by our own reader, where `datasets` would first convert it to an Arrow
            # cache (whole row groups in memory: 1 GiB at 300,000 small images); the same rows, columns, ids.
            table = ParquetTable(local, self.split, self.options.get("config"))
        else:
            try:
                dataset = _load(local, path, self.options.get("config"), self.split)
            except UserError:
                raise
            except Exception as error:  # datasets raises many kinds; the user needs its message, on one line
                message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
                raise UserError(
                    f"source hf: cannot load {path!r} (split {self.split!r}): {message} (hf: takes {LAYOUTS})"
                ) from None
            table = ArrowTable(dataset, str(path), self.split, self.options.get("config"))
        column = _image_column(table, self.options)
        if column not in table.columns:
            raise UserError(
                f"source hf: {path} has no image column {column!r}; pick one with ?column=NAME "
                f"(columns: {', '.join(table.columns)})"
            )
        return [table]

    @functools.cached_property
    def column(self) -> str:
        return _image_column(self.tables[0], self.options)

    def image_column(self, table):
        return _image_column(table, self.options)

    def option_names(self):
        return ("column", "split", "config")

    def refs(self):
        for row, values in self.tables[0].rows([self.column]):
            try:
                data = self._image(values[self.column])
            except SkipImage as skip:
                self.skip(skip.reason)
                continue
            ref = self.ref(f"hf:{self.split}:{row}", Cell(0, row, self.column), data)
            if ref is not None:
                yield ref

    def read(self, locator: Cell) -> bytes:
        data = self._image(self.tables[locator.table].cell(locator.row, locator.column))
        if data is None:
            raise OSError(f"no image bytes at {locator}")
        return data

    def _image(self, value) -> bytes | None:
        """The image's bytes; an image folder's rows hold only the file's path."""
        if (
            isinstance(value, dict)
            and value.get("bytes") is None
            and isinstance(value.get("path"), str)
            and os.path.isabs(value["path"])
        ):
            return read_file(value["path"], self.max_file_bytes)
        return image_bytes(value)


def _image_column(table, options: dict) -> str | None:
    """`?column=`, else the first column `datasets` types as an Image."""
    if options.get("column"):
        return options["column"]
    if isinstance(table, ParquetTable):
        features = _hf_features(table.file.schema_arrow)
        return next((n for n, f in features.items() if isinstance(f, dict) and f.get("_type") == "Image"), None)
    return next((n for n, f in table.dataset.features.items() if type(f).__name__ == "Image"), None)


def _hf_features(schema) -> dict:
    """The `datasets` features a parquet file's schema metadata records ({} when it records none)."""
    try:
        info = json.loads((schema.metadata or {}).get(b"huggingface", b"{}"))
        features = info.get("info", {}).get("features", {})
        return features if isinstance(features, dict) else {}
    except (ValueError, AttributeError):
        return {}


def _load(local: Path, path: str, config: str | None, split: str):
    import datasets

    if local.is_file():
        if local.suffix != ".parquet":
            raise UserError(f"source hf: {path} is a file that is not .parquet; hf: takes {LAYOUTS}")
        return datasets.load_dataset("parquet", data_files=str(local), split="train")
    if local.is_dir() and ((local / "dataset_dict.json").exists() or (local / "state.json").exists()):
        loaded = datasets.load_from_disk(str(local))
        if isinstance(loaded, datasets.DatasetDict):
            if split not in loaded:
                raise UserError(f"source hf: {path} has no split {split!r} (splits: {', '.join(loaded)})")
            return loaded[split]
        return loaded
    return datasets.load_dataset(path, name=config, split=split)
