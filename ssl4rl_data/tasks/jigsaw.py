"""Jigsaw: the tiles of an R x C grid are shown shuffled; answer where each one belongs."""

from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from ..errors import SkipImage
from ..images import aligned_crop_box
from ..registry import register_task
from ..task import ANSWER_FORMAT, Sample, Task

MIN_TILE = 32  # the reference skips tiles under 28 px; 32 is the next size on the 16 px grid
MIN_TILE_DIFFERENCE = 4.0  # mean absolute difference (0..255) of 16x16 thumbnails below which tiles look alike
# The picture's outermost lines never reach a tile: resizing (a source's own, or --max-side) leaves
# them a few percent smoother, which told a border side from a cut one (issue 21: AUC 0.55 per side).
# 16 px, one JPEG block row, keeps the grid on the 16 px grid; tiles lose up to 32 px across the picture.
BORDER = 16


@dataclass
class JigsawConfig:
    grid: str = field(
        default="2", metadata={"help": "Grid size: N for N x N, or RxC (rows x columns), 2..6 per side."}
    )

    def __post_init__(self):
        self.rows, self.cols = parse_grid(str(self.grid))
        # One spelling per grid ('3x3' is '3'): the parameters are part of every sample's random key.
        self.grid = str(self.rows) if self.rows == self.cols else f"{self.rows}x{self.cols}"


def parse_grid(text: str) -> tuple[int, int]:
    """'3' -> (3, 3); '2x3' -> (2, 3). ValueError for anything else.

    >>> parse_grid("3"), parse_grid("2x3")
    ((3, 3), (2, 3))
    """
    parts = text.lower().split("x")
    if len(parts) not in (1, 2) or not all(p.strip().isdigit() for p in parts):
        raise ValueError(f"--grid must be N or RxC, e.g. 3 or 2x3, got {text!r}")
    rows, cols = int(parts[0]), int(parts[-1])
    if not (2 <= rows <= 6 and 2 <= cols <= 6):
        raise ValueError(f"--grid sides must be between 2 and 6, got {text!r}")
    return rows, cols


def shuffle(n: int, rng: np.random.Generator) -> tuple[list[int], list[int]]:
    """A uniform permutation as (shown, answer): shown[k] is the cell of the k-th shown tile, and
    answer[cell] is the 0-based position at which that cell's tile is shown (the inverse).

    >>> shown, answer = shuffle(6, np.random.default_rng(1))
    >>> all(answer[shown[k]] == k for k in range(6))
    True
    """
    shown = [int(i) for i in rng.permutation(n)]
    answer = [0] * n
    for position, cell in enumerate(shown):
        answer[cell] = position
    return shown, answer


@register_task("jigsaw")
class Jigsaw(Task):
    Config = JigsawConfig

    def make(self, image, rng):
        rows, cols = self.config.rows, self.config.cols
        # Equal tiles whose sides are multiples of 16: no size cue and JPEG seams in the same phase everywhere.
        tile_w = (image.width - 2 * BORDER) // cols // 16 * 16
        tile_h = (image.height - 2 * BORDER) // rows // 16 * 16
        if min(tile_w, tile_h) < MIN_TILE:
            raise SkipImage("too-small")
        box = aligned_crop_box(image.size, tile_w * cols, tile_h * rows)
        if _has_lookalike_tiles(image, box, rows, cols):
            # Two tiles that look the same make more than one answer right: skip rather than mislabel.
            raise SkipImage("lookalike-tiles")
        left, top = box[:2]
        tiles = [
            image.crop((left + c * tile_w, top + r * tile_h, left + (c + 1) * tile_w, top + (r + 1) * tile_h))
            for r in range(rows)
            for c in range(cols)
        ]
        shown, answer = shuffle(len(tiles), rng)
        n = len(tiles)
        example = "2,4,1,3" if n == 4 else ",".join(map(str, [*range(2, n + 1), 1]))
        question = (
            f"The {n} images are the pieces of one picture that was cut into a grid of {rows} rows and {cols} "
            f"columns and then shuffled. The pieces are numbered 1 to {n} in the order shown. Restore the "
            "picture: for each grid position, row by row from the top-left to the bottom-right, give the "
            f"number of the piece that belongs there, as {n} comma-separated numbers. "
            + ANSWER_FORMAT.format(example=example)
        )
        return Sample(
            images=[tiles[cell] for cell in shown],
            question=question,
            answer=",".join(str(position + 1) for position in answer),
        )

    def baseline(self):
        measured = {(2, 2): "98.6%", (3, 3): "97.4%"}.get((self.config.rows, self.config.cols))
        figure = (
            f"solves {measured} of {self.config.rows}x{self.config.cols} pictures (issue 21 audit)"
            if measured
            else "solves 98.6% of 2x2 and 97.4% of 3x3 pictures (issue 21 audit; this grid not measured)"
        )
        return f"matching the pixels along tile edges {figure}: the task measures exact visual comparison"

    @staticmethod
    def score(prediction: str, truth: str) -> float:
        """Fraction of grid cells given the right piece, for answers that are a permutation of 1..N.

        Spaces around the numbers are ignored. Anything that is not a permutation of the right
        length (repeats, missing or extra numbers, other text) scores 0.

        >>> [Jigsaw.score(p, "2,4,1,3") for p in ["2,4,1,3", "2, 4, 1, 3", "2,4,3,1", "1,1,1,1", "2,4,1", "4,2,3,1"]]
        [1.0, 1.0, 0.5, 0.0, 0.0, 0.0]
        """
        expected = truth.split(",")
        parts = [p.strip() for p in prediction.split(",")]
        if len(parts) != len(expected) or not all(p.isdigit() and p.isascii() for p in parts):
            return 0.0
        if sorted(int(p) for p in parts) != list(range(1, len(expected) + 1)):
            return 0.0
        return sum(int(p) == int(t) for p, t in zip(parts, expected, strict=True)) / len(expected)


def _has_lookalike_tiles(image: Image.Image, box: tuple[int, int, int, int], rows: int, cols: int) -> bool:
    """Whether two tiles' 16x16 box-averaged thumbnails are nearly equal. Tile sides are multiples of
    16, so one integer reduce of the grid's box yields every tile's thumbnail exactly (and no copy)."""
    width, height = box[2] - box[0], box[3] - box[1]
    small = image.reduce((width // cols // 16, height // rows // 16), box=box)
    thumbs = np.asarray(small, dtype=np.float32).reshape(rows, 16, cols, 16, 3).transpose(0, 2, 1, 3, 4)
    flat = thumbs.reshape(rows * cols, -1)
    differences = np.abs(flat[:, None, :] - flat[None, :, :]).mean(axis=2)
    np.fill_diagonal(differences, np.inf)
    return bool(differences.min() < MIN_TILE_DIFFERENCE)
