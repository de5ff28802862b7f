"""Flip: one cell of an R x C grid is mirrored left-right in place; answer which cell."""

from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from ..errors import SkipImage
from ..images import aligned_crop_box, crop
from ..registry import register_task
from ..task import ANSWER_FORMAT, Sample, Task
from .jigsaw import parse_grid

MIN_CELL = 32  # the reference skips pieces under 28 px; 32 is the next size on the 16 px grid
# A cell is usable only if its 16x16 box-averaged thumbnail and that thumbnail mirrored differ by at
# least this mean absolute difference (0..255): the unit and value of jigsaw's look-alike test. A cell
# below it looks the same mirrored (symmetric or flat content), so flipping it would change nothing
# a model could see.
MIN_MIRROR_DIFFERENCE = 4.0


@dataclass
class FlipConfig:
    grid: str = field(
        default="3", metadata={"help": "Grid size: N for N x N, or RxC (rows x columns), 2..6 per side."}
    )

    def __post_init__(self):
        self.grid = str(self.grid).lower()
        self.rows, self.cols = parse_grid(self.grid)


def mirror_differences(image: Image.Image, box: tuple[int, int, int, int], rows: int, cols: int) -> np.ndarray:
    """For each cell in row-major order, the mean absolute difference between its 16x16 thumbnail and
    that thumbnail mirrored. Cell sides are multiples of 16, so one integer reduce of the grid's box
    yields every cell's thumbnail exactly, and the mirror of a thumbnail is the thumbnail of the mirror.

    >>> half = Image.new("RGB", (64, 32)); half.paste((255, 255, 255), (0, 0, 16, 32))
    >>> mirror_differences(half, (0, 0, 64, 32), 1, 2).round(1).tolist()
    [255.0, 0.0]
    """
    width, height = box[2] - box[0], box[3] - box[1]
    small = image.reduce((width // cols // 16, height // rows // 16), box=box)
    thumbs = np.asarray(small, dtype=np.float32).reshape(rows, 16, cols, 16, 3).transpose(0, 2, 1, 3, 4)
    return np.abs(thumbs - thumbs[:, :, :, ::-1]).mean(axis=(2, 3, 4)).reshape(-1)


@register_task("flip")
class Flip(Task):
    Config = FlipConfig

    def make(self, image, rng):
        rows, cols = self.config.rows, self.config.cols
        # Equal cells on the 16 px grid: a mirrored cell's JPEG blocks land on the same block grid.
        cell_w = image.width // cols // 16 * 16
        cell_h = image.height // rows // 16 * 16
        if min(cell_w, cell_h) < MIN_CELL:
            raise SkipImage("too-small")
        box = aligned_crop_box(image.size, cell_w * cols, cell_h * rows)
        usable = np.flatnonzero(mirror_differences(image, box, rows, cols) >= MIN_MIRROR_DIFFERENCE)
        if not len(usable):
            raise SkipImage("no-asymmetric-cell")
        cell = int(usable[rng.integers(len(usable))])
        picture = crop(image, box)
        picture = picture.copy() if picture is image else picture  # never paste into the caller's image
        left, top = (cell % cols) * cell_w, (cell // cols) * cell_h
        region = (left, top, left + cell_w, top + cell_h)
        picture.paste(picture.crop(region).transpose(Image.Transpose.FLIP_LEFT_RIGHT), region)
        n = rows * cols
        question = (
            f"The image is a picture divided into a grid of {rows} rows and {cols} columns of equal cells, "
            f"numbered 1 to {n} row by row from the top-left to the bottom-right. Exactly one cell has been "
            "mirrored left to right in place; the rest of the picture is unchanged. Which cell was mirrored? "
            "Answer with its number only. " + ANSWER_FORMAT.format(example=min(5, n))
        )
        return Sample(images=[picture], question=question, answer=str(cell + 1))
