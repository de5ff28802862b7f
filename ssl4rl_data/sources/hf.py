"""`hf:PATH_OR_REPO[?column=image&split=train&config=NAME]`: any dataset `datasets` can load, by its image column.

Local layouts: a folder `datasets` loads (an image folder, a folder of data files), one .parquet
file, or a `save_to_disk` folder (a Dataset or a DatasetDict). A Hub repo id needs to be online (or
cached). Only the image column is read; images an image folder references by path are read from
there (regular files only, within --max-file-bytes). Ids are `hf:SPLIT:ROW`.
"""

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

    def open_tables(self, path):
        if not path:
            raise UserError("source hf needs a dataset: --source hf:PATH_OR_REPO_ID")
        split = self.options.get("split", "train")
        local = Path(path)
        if local.is_file() and local.suffix == ".parquet" and split == "train":
            return self._parquet_file(local, path, split)
        try:
            dataset = _load(local, path, self.options.get("config"), split)
        except UserError:
            raise
        except Exception as error:  # datasets raises many kinds; the user needs its message, on one line
            message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise UserError(
                f"source hf: cannot load {path!r} (split {split!r}): {message} (hf: takes {LAYOUTS})"
            ) from None
        column = self.options.get("column") or next(
            (name for name, feature in dataset.features.items() if type(feature).__name__ == "Image"), None
        )
        if column not in dataset.column_names:
            raise UserError(
                f"source hf: {path} has no image column {column!r}; pick one with ?column=NAME "
                f"(columns: {', '.join(dataset.column_names)})"
            )
        self.column, self.split = column, split
        return [ArrowTable(dataset, str(path), split, self.options.get("config"))]

    def _parquet_file(self, local: Path, path: str, split: str) -> list[ParquetTable]:
        """One parquet file, streamed a page at a time by our own reader, where `datasets` would first
        convert it to an Arrow cache (whole row groups in memory: 1 GiB at 300,000 small images) and then
        map it; the rows, columns and ids are those `load_dataset("parquet", ...)` gives."""
        table = ParquetTable(local, split, self.options.get("config"))
        column = self.options.get("column") or next(
            (
                name
                for name, feature in _hf_features(table.file.schema_arrow).items()
                if isinstance(feature, dict) and feature.get("_type") == "Image"
            ),
            None,
        )
        if column not in table.columns:
            raise UserError(
                f"source hf: {path} has no image column {column!r}; pick one with ?column=NAME "
                f"(columns: {', '.join(table.columns)})"
            )
        self.column, self.split = column, split
        return [table]

    def image_column(self, table):
        return self.column

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
