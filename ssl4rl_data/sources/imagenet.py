"""`imagenet:PATH[?split=train,val]`: ImageNet images from Hub parquet / save_to_disk, ImageFolder, a flat folder or webdataset tars.

File paths and names carry the class (`train/n01440764/...`), so ids are content hashes
(`imagenet:HASH`) and no path reaches the output; the `label` column is never read. The known bad
files (a PNG named .JPEG, CMYK JPEGs, greyscale) decode like any other image.
"""

import functools
import tarfile
from pathlib import Path

from ..errors import SkipImage, UserError
from ..files import read_file
from ..registry import register_source
from ..table_source import Cell, TableSource, image_bytes
from .folder import IMAGE_SUFFIXES, image_file_names, image_files

FOLDER_SPLITS = ("train", "val", "validation", "test")


@register_source("imagenet")
class ImageNetSource(TableSource):
    benchmark = "ImageNet-1K"
    licence = "ImageNet terms of access: non-commercial research and educational use only"
    split_aliases = {"validation": "val"}
    expected = "parquet files, a save_to_disk folder, an ImageFolder or flat folder of images, or .tar shards"

    @functools.cached_property
    def folder_layout(self) -> str:
        """tables, tars or folder: what this path holds."""
        return layout(self.path)

    def open_tables(self, path):
        return super().open_tables(path) if self.folder_layout == "tables" else []

    def refs(self):
        if self.folder_layout == "tables":
            for table_index, table in self.selected_tables():
                column = self.image_column(table)
                for row, values in table.rows([column]):
                    ref = self.ref(None, Cell(table_index, row, column), image_bytes(values[column]))
                    if ref is not None:
                        yield ref
        elif self.folder_layout == "tars":
            for shard in self._tar_files():
                yield from self._tar_refs(shard)
        else:
            for path, relative in image_file_names(self.path, on_error=lambda error: self.skip("unreadable-folder")):
                split = self._folder_split(relative)
                if self.splits is not None and split not in self.splits:
                    self.exclude("other-split")
                    continue
                try:
                    data = read_file(path, self.max_file_bytes)
                except SkipImage as skip:  # one bad file (unreadable, a link loop, a pipe) skips that file only
                    self.skip(skip.reason)
                    continue
                yield self.ref(None, ("file", path), data)

    def _tar_refs(self, shard):
        try:
            with tarfile.open(shard) as archive:
                for member in archive:
                    if member.isfile() and Path(member.name).suffix.lower() in IMAGE_SUFFIXES:
                        if member.size > self.max_file_bytes:
                            self.skip("file-too-large")
                            continue
                        data = archive.extractfile(member).read()
                        yield self.ref(None, ("tar", str(shard), member.offset_data, member.size), data)
        except (tarfile.TarError, OSError, EOFError) as error:
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise UserError(f"source imagenet: {shard} is not a readable tar file ({reason.rstrip(':')})") from None

    def read(self, locator):
        if isinstance(locator, Cell):
            return super().read(locator)
        if locator[0] == "tar":
            _, shard, offset, size = locator
            with open(shard, "rb") as handle:
                handle.seek(offset)
                return handle.read(size)
        return read_file(locator[1], self.max_file_bytes)

    def _tar_files(self):
        return [self.path] if self.path.is_file() else sorted(self.path.rglob("*.tar"))

    def _folder_split(self, relative: str) -> str:
        first = relative.split("/")[0].lower()
        return self.split_aliases.get(first, first) if first in FOLDER_SPLITS else "unknown"

    def describe(self):
        description = {**super().describe(), "layout": self.folder_layout}
        if self.folder_layout != "tables":
            description["splits"] = sorted(self.splits) if self.splits else ["all"]
        return description


def layout(path: Path) -> str:
    """tables, tars or folder (the evaluator tells layouts apart with it too)."""
    if path.is_file():
        if path.suffix == ".tar":
            return "tars"
        if path.suffix in (".parquet", ".tsv"):
            return "tables"
        raise UserError(f"source imagenet: {path}: expected {ImageNetSource.expected}")
    if (path / "dataset_dict.json").exists() or (path / "state.json").exists() or next(path.rglob("*.parquet"), None):
        return "tables"
    if next(path.rglob("*.tar"), None):
        return "tars"
    if next(image_files(path), None):
        return "folder"
    raise UserError(f"source imagenet: {path} holds no images; expected {ImageNetSource.expected}")
