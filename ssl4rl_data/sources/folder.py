"""`folder:PATH`: every image file under a folder, recursively, in sorted path order."""

import os
from pathlib import Path

from ..registry import register_source
from ..source import ImageRef, Source, id_from_path

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm"}


def image_files(root: Path):
    """Image files below `root` in a sorted, filesystem-independent order; hidden entries are ignored."""
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith(".") and Path(name).suffix.lower() in IMAGE_SUFFIXES:
                yield Path(directory) / name


@register_source("folder")
class FolderSource(Source):
    def refs(self):
        root = self.path if self.path.is_dir() else self.path.parent
        files = image_files(self.path) if self.path.is_dir() else [self.path]
        for file in files:
            yield ImageRef(source_id=f"folder:{id_from_path(file.relative_to(root))}", locator=str(file))

    def read(self, locator) -> bytes:
        return Path(locator).read_bytes()
