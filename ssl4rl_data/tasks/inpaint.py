"""Inpaint: one grid cell of the picture is grey; answer which of K candidate patches was cut from it.

No candidate is visible in the picture shown, so none can be ruled out by finding it there (other
cells of the picture would be): the picture is an R x C window in one corner of an (R+1) x (C+1) grid
laid on the photo, and the distractors are cell-sized windows of the L-shaped margin outside it, on
the same 16 px grid (JPEG blocks in one phase), of the same size, from the same photo (same
sharpness, noise and compression), none touching another. They are the margin windows nearest the
answer in colour and, recoloured, at least as like some visible cell as the answer is. Then every
candidate but one, drawn at random, takes that one's per-channel mean and spread: colour statistics
(against the grey cell's surroundings or anything else) do not single the answer out, nor does
being the one candidate left untouched (a remapped patch's histogram has gaps or doubled levels),
nor resemblance to the picture; what does is how the candidate continues the picture across the
grey cell's edges. Recolouring the answer keeps its content, and its colours change little: the
distractors were chosen near it in colour.
"""

from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from ..errors import SkipImage
from ..registry import register_task
from ..task import ANSWER_FORMAT, Sample, Task
from .jigsaw import parse_grid

GREY = (128, 128, 128)
MIN_CELL = 32  # the reference skips pieces under 28 px; 32 is the next size on the 16 px grid
# Candidates whose 16x16 box-averaged thumbnails differ by less than this mean absolute difference
# (0..255) look alike (jigsaw's unit and value): two right answers, or two wrong ones a solver could
# strike out for being the same. Only mutually distinct cells are offered.
MIN_CANDIDATE_DIFFERENCE = 4.0
# Units of colour distance (sum over channels of mean and spread differences, 0..255 each) that one unit
# of excess distance to the nearest visible cell costs a distractor (tests/test_new_tasks.py: the
# 'most similar to a visible cell' baseline picked the answer 34% of the time, chance 25%, with colour
# alone; 18% with this).
NEAR_WEIGHT = 6.0
MATCH_ROUNDS = 3


@dataclass
class InpaintConfig:
    grid: str = field(
        default="3",
        metadata={"help": "Grid of the picture shown: N for N x N, or RxC (rows x columns), 2..6 per side."},
    )
    candidates: int = field(
        default=4, metadata={"help": "Number K of candidate patches, the answer among them (2..R+C-1)."}
    )

    def __post_init__(self):
        self.grid = str(self.grid).lower()
        self.rows, self.cols = parse_grid(self.grid)
        most = self.rows + self.cols - 1  # about as many cells of the margin as do not touch
        if not 2 <= self.candidates <= most:
            raise ValueError(
                f"--candidates must be between 2 and {most} for --grid {self.grid}, got {self.candidates}"
            )


def margin_windows(blocks_h: int, blocks_w: int, window: tuple[int, int, int, int], cell: tuple[int, int]):
    """Every cell-sized window on the 16 px grid that lies wholly outside `window` (all in 16 px blocks,
    as (top, left, bottom, right)), as (top, left) pairs.

    >>> sorted(margin_windows(3, 3, (0, 0, 2, 2), (1, 1)))
    [(0, 2), (1, 2), (2, 0), (2, 1), (2, 2)]
    """
    cell_h, cell_w = cell
    top, left, bottom, right = window
    return [
        (y, x)
        for y in range(blocks_h - cell_h + 1)
        for x in range(blocks_w - cell_w + 1)
        if y + cell_h <= top or y >= bottom or x + cell_w <= left or x >= right
    ]


def pick_distractors(
    fine: np.ndarray, hole: tuple[int, int], visible: list, pool: list, cell: tuple[int, int], count: int
) -> list:
    """`count` windows of `pool` (all places in 16 px blocks), the most answer-like first, each differing
    from the hole and from every window taken by at least MIN_CANDIDATE_DIFFERENCE on 16 px block
    means, and none overlapping or touching another (no two candidates that continue each other);
    fewer when the pool runs out.

    Answer-like: near the hole in colour (per-channel mean and spread of 4 px block means), and, once
    recoloured like the hole, at least as close as the hole to some `visible` cell (16 px block means),
    each unit it is farther costing NEAR_WEIGHT units of colour: the answer is not the candidate that
    most resembles the picture."""
    cell_h, cell_w = cell
    # Window sums of the 4 px block means and of their squares, from summed-area tables of 16 px blocks.
    shape = (fine.shape[0] // 4, 4, fine.shape[1] // 4, 4, 3)
    fine = fine.astype(np.float64)
    sums = [part.reshape(shape).sum(axis=(1, 3)) for part in (fine, fine * fine)]
    tables = [np.pad(np.cumsum(np.cumsum(part, 0), 1), ((1, 0), (1, 0), (0, 0))) for part in sums]
    area = 16 * cell_h * cell_w

    def stats(y, x):
        s1, s2 = (t[y + cell_h, x + cell_w] - t[y, x + cell_w] - t[y + cell_h, x] + t[y, x] for t in tables)
        mean = s1 / area
        return np.concatenate([mean, np.sqrt(np.maximum(s2 / area - mean * mean, 0))])

    blocks = sums[0] / 16  # 16 px block means

    def thumb(y, x):
        return blocks[y : y + cell_h, x : x + cell_w]

    target = stats(*hole)
    cells = np.stack([thumb(y, x) for y, x in visible])

    def nearest_cell(y, x):
        own = stats(y, x)
        recoloured = (thumb(y, x) - own[:3]) * (target[3:] / np.maximum(own[3:], 0.5)) + target[:3]
        return float(np.abs(cells - recoloured).mean(axis=(1, 2, 3)).min())

    hole_nearest = nearest_cell(*hole)
    distance = [
        float(np.abs(stats(y, x) - target).sum()) + NEAR_WEIGHT * max(0.0, nearest_cell(y, x) - hole_nearest)
        for y, x in pool
    ]
    taken = []
    for index in np.argsort(distance, kind="stable"):
        if len(taken) == count:
            break
        y, x = pool[index]
        if any(abs(y - ty) <= cell_h and abs(x - tx) <= cell_w for ty, tx in taken):
            continue
        if min(np.abs(thumb(y, x) - thumb(*other)).mean() for other in [hole, *taken]) >= MIN_CANDIDATE_DIFFERENCE:
            taken.append((y, x))
    return taken


def colour_stats(patch: Image.Image) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation of a patch's pixels."""
    return _stats(np.asarray(patch.histogram(), np.float64).reshape(3, 256), np.arange(256.0)[None, :])


def _stats(counts: np.ndarray, levels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation of pixels whose values, counted by level in `counts`, are
    mapped to `levels` (both 3 x 256)."""
    total = counts.sum(axis=1)
    mean = (counts * levels).sum(axis=1) / total
    return mean, np.sqrt(np.maximum((counts * levels**2).sum(axis=1) / total - mean**2, 0))


def match_colours(patch: Image.Image, target: tuple[np.ndarray, np.ndarray]) -> Image.Image:
    """`patch` with each channel's mean and standard deviation set to `target`'s (`colour_stats`): an
    affine map per channel, rounded and clipped (one lookup table), so colour statistics say nothing
    about which candidate is the answer.

    >>> flat = Image.new("RGB", (2, 1), (10, 20, 30)); flat.putpixel((1, 0), (30, 20, 10))
    >>> match_colours(flat, colour_stats(Image.new("RGB", (2, 1), (100, 100, 100)))).getpixel((1, 0))
    (100, 100, 100)
    """
    new_mean, new_spread = target
    counts = np.asarray(patch.histogram(), np.float64).reshape(3, 256)
    table = np.tile(np.arange(256.0), (3, 1))  # level -> mapped level, per channel
    for _ in range(MATCH_ROUNDS):  # clipping at 0 and 255 narrows the spread: later rounds make up for it
        mean, spread = _stats(counts, table)
        scale = np.divide(new_spread, spread, out=np.zeros(3), where=spread > 0.5)
        table = np.clip(np.rint((table - mean[:, None]) * scale[:, None] + new_mean[:, None]), 0, 255)
    return Image.fromarray(table.astype(np.uint8)[np.arange(3), np.asarray(patch)])


@register_task("inpaint")
class Inpaint(Task):
    Config = InpaintConfig

    def make(self, image, rng):
        rows, cols, count = self.config.rows, self.config.cols, self.config.candidates
        cell_w = image.width // (cols + 1) // 16 * 16
        cell_h = image.height // (rows + 1) // 16 * 16
        if min(cell_w, cell_h) < MIN_CELL:
            raise SkipImage("too-small")
        # The (R+1) x (C+1) grid, centred with its corner on the 16 px grid (JPEG blocks in one phase).
        left = (image.width - cell_w * (cols + 1)) // 2 // 16 * 16
        top = (image.height - cell_h * (rows + 1)) // 2 // 16 * 16
        box = (left, top, left + cell_w * (cols + 1), top + cell_h * (rows + 1))
        fine = np.asarray(image.reduce(4, box=box), dtype=np.float32)  # 4 px block means
        cell = (cell_h // 16, cell_w // 16)
        # The window shown: R x C cells in one of the four corners of the grid; the rest is the margin.
        shift_x, shift_y = int(rng.integers(2)), int(rng.integers(2))
        window = (shift_y * cell[0], shift_x * cell[1], (shift_y + rows) * cell[0], (shift_x + cols) * cell[1])
        hole = int(rng.integers(rows * cols))
        hole_at = (window[0] + hole // cols * cell[0], window[1] + hole % cols * cell[1])
        visible = [
            (window[0] + r * cell[0], window[1] + c * cell[1])
            for r in range(rows)
            for c in range(cols)
            if r * cols + c != hole
        ]
        pool = margin_windows(fine.shape[0] // 4, fine.shape[1] // 4, window, cell)
        pool = [pool[i] for i in rng.permutation(len(pool))]  # ties in colour broken at random
        distractors = pick_distractors(fine, hole_at, visible, pool, cell, count - 1)
        if len(distractors) < count - 1:
            raise SkipImage("no-distinct-candidates")
        answer = int(rng.integers(count))
        shown = [*distractors[:answer], hole_at, *distractors[answer:]]
        patches = [
            image.crop((left + 16 * x, top + 16 * y, left + 16 * x + cell_w, top + 16 * y + cell_h)) for y, x in shown
        ]
        # Every candidate takes the colour statistics of one drawn at random (the answer 1 time in K),
        # which stays as cut: a ring-colour or contrast comparison cannot pick the answer, nor can the
        # histogram traces of remapping, which every candidate but a random one bears.
        reference = int(rng.integers(count))
        target = colour_stats(patches[reference])
        patches = [p if i == reference else match_colours(p, target) for i, p in enumerate(patches)]
        window_x, window_y = left + 16 * window[1], top + 16 * window[0]
        picture = image.crop((window_x, window_y, window_x + cols * cell_w, window_y + rows * cell_h))
        hole_x, hole_y = (hole % cols) * cell_w, (hole // cols) * cell_h
        picture.paste(GREY, (hole_x, hole_y, hole_x + cell_w, hole_y + cell_h))
        question = (
            f"The first image is a picture in which one cell of a grid of {rows} rows and {cols} columns has been "
            f"filled with flat grey. The next {count} images are candidate patches of that cell's size, numbered 1 "
            f"to {count} in the order shown. Exactly one of them was cut out of the grey cell; the others were cut "
            "from other parts of the same photo, outside the part shown. All of them were given the same "
            f"average colour and contrast. Which candidate belongs in the grey cell? Answer with its number only, "
            f"1 to {count}. " + ANSWER_FORMAT.format(example=min(3, count))
        )
        return Sample(images=[picture, *patches], question=question, answer=str(answer + 1))
