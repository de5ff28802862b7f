"""`folder:PATH`: every image file under a folder, recursively, in sorted path order."""

import os
from pathlib import Path
from typing import Iterator

from ..files import read_file
from ..registry import register_source
from ..source import ImageRef, Source, id_from_path

IMAGE_SUFFIXES = {
    ".jpg",
    ".jpeg",
    ".jpe",
    ".jfif",
    ".png",
    ".bmp",
    ".gif",
    ".tif",
    ".tiff",
    ".webp",
    ".ppm",
    ".pgm",
    ".pbm",
}


def image_file_names(root: Path, on_error=None) -> Iterator[tuple[str, str]]:
    """(path, path relative to `root` with '/' separators) of the image files below `root`, in a sorted,
    filesystem-independent order; hidden entries are ignored. Plain strings: pathlib objects would
    cost more than hashing the files on an ImageNet-size folder. `on_error(OSError)` hears of each
    folder that cannot be listed (it is skipped)."""
    top = os.fspath(root)
    for directory, subdirs, files in os.walk(top, onerror=on_error):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
        relative = os.path.relpath(directory, top)
        prefix = "" if relative == os.curdir else relative.replace(os.sep, "/") + "/"
        for name in sorted(files):
            if not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES:
                yield os.path.join(directory, name), prefix + name


def image_files(root: Path) -> Iterator[Path]:
    return (Path(path) for path, _ in image_file_names(root))


@register_source("folder")
class FolderSource(Source):
    def refs(self):
        if self.path.is_dir():
            files = image_file_names(self.path, on_error=lambda error: self.skip("unreadable-folder"))
        else:
            files = [(str(self.path), self.path.name)]
        for path, relative in files:
            yield ImageRef(source_id=f"folder:{id_from_path(relative)}", locator=path)

    def read(self, locator) -> bytes:
        return read_file(locator, self.max_file_bytes)
