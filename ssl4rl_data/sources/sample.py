"""`sample`: real photos bundled with scikit-image, so a build works offline with no data at all."""

import importlib.util
from pathlib import Path

from ..errors import UserError
from ..registry import register_source
from ..source import ImageRef, Source

# Photographs only (no synthetic charts or binary masks): nine colour and three greyscale.
PHOTOS = (
    "astronaut.png",
    "chelsea.png",
    "coffee.png",
    "hubble_deep_field.jpg",
    "ihc.png",
    "retina.jpg",
    "rocket.jpg",
    "motorcycle_left.png",
    "motorcycle_right.png",
    "camera.png",
    "moon.png",
    "coins.png",
)


def photo_dir() -> Path:
    spec = importlib.util.find_spec("skimage")  # located without importing scikit-image
    if spec is None or not spec.submodule_search_locations:
        raise UserError("the sample source needs scikit-image installed (pip install scikit-image)")
    return Path(spec.submodule_search_locations[0]) / "data"


@register_source("sample")
class SampleSource(Source):
    takes_path = False
    licence = "scikit-image sample data; each image's terms are listed in skimage/data/README.txt"

    def refs(self):
        for filename in PHOTOS:
            yield ImageRef(source_id=f"sample:{Path(filename).stem}", locator=filename)

    def read(self, locator) -> bytes:
        return (photo_dir() / locator).read_bytes()
