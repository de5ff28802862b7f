"""The audit's checkers for the built-in tasks: each re-derives the answer from the row's pixels by a
plain non-learned solver (pixel or seam matching) that shares no code with the task's `make`."""

import itertools

import numpy as np
from PIL import Image

from .checks import OK, UNSURE, WRONG, Checker, register_checker
from .matching import window_errors

QUADRANTS = ("top-left", "top-right", "bottom-left", "bottom-right")


def grey(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("L"), np.float64)


def closeness(errors: dict, answer) -> float:
    """Difficulty from per-answer errors: the answer's error over the best other one's, at most 1."""
    if answer not in errors or len(errors) < 2:
        return 1.0
    rival = min(v for k, v in errors.items() if k != answer)
    return float(min(1.0, errors[answer] / rival)) if rival > 0 else 1.0


def verdict(errors: dict, answer, margin: float) -> str:
    """OK when the answer has the smallest error; WRONG when another is smaller by more than `margin`."""
    best = min(errors, key=errors.get)
    if best == answer:
        return OK
    return WRONG if answer not in errors or errors[answer] > errors[best] + margin else UNSURE


@register_checker("rotation")
class RotationCheck(Checker):
    """Rotate the first view by every allowed angle; the answer must match the second view best."""

    def check(self, row, images):
        step = int(self.parameters.get("step", 90))
        first, second = images[0], images[1]
        if first.size != second.size or first.width != first.height:
            return WRONG
        errors = {}
        if step % 90 == 0:
            small_a, small_b = grey(first.reduce(4)), grey(second.reduce(4))
            for angle in range(0, 360, step):
                errors[str(angle)] = float(np.abs(np.rot90(small_a, angle // 90) - small_b).mean())
            # Difficulty: how alike the picture looks under its other rotations, against its own contrast.
            alike = min(float(np.abs(np.rot90(small_a, k) - small_a).mean()) for k in range(1, 4))
            self.difficulty = 1 / (1 + alike / (np.abs(small_a - small_a.mean()).mean() + 1))  # 1: alike
        else:
            side = first.width
            yy, xx = np.mgrid[:side, :side] - (side - 1) / 2
            disc = np.hypot(xx, yy) < 0.45 * side
            target = grey(second)[disc]
            for angle in range(0, 360, step):
                turned = grey(first.rotate(angle, Image.Resampling.BICUBIC))
                errors[str(angle)] = float(np.abs(turned[disc] - target).mean())
        if self.difficulty is None:
            self.difficulty = closeness(errors, row.answer.strip())  # another angle fits almost as well: hard
        return verdict(errors, row.answer.strip(), margin=2.0)

    def picture(self, row, images):
        return images[0]


def grid_shape(parameters: dict, default: str) -> tuple[int, int]:
    text = str(parameters.get("grid", default)).lower()
    rows, _, cols = text.partition("x")
    return int(rows), int(cols or rows)


def seam_costs(tiles: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """right[i, j]: mean absolute step from tile i's right column to tile j's left column; below[i, j]
    likewise from i's bottom row to j's top row."""
    right = np.array([[np.abs(a[:, -1] - b[:, 0]).mean() for b in tiles] for a in tiles])
    below = np.array([[np.abs(a[-1] - b[0]).mean() for b in tiles] for a in tiles])
    return right, below


def arrangement_cost(order, right, below, rows, cols) -> float:
    """Mean seam step of an arrangement; order[cell] is the index of the tile placed in that cell."""
    total = sum(right[order[r * cols + c], order[r * cols + c + 1]] for r in range(rows) for c in range(cols - 1))
    total += sum(below[order[r * cols + c], order[(r + 1) * cols + c]] for r in range(rows - 1) for c in range(cols))
    return total / (rows * (cols - 1) + (rows - 1) * cols)


def parse_order(answer: str, n: int) -> list[int] | None:
    parts = answer.split(",")
    if len(parts) != n or not all(p.strip().isdigit() for p in parts):
        return None
    order = [int(p) - 1 for p in parts]
    return order if sorted(order) == list(range(n)) else None


@register_checker("jigsaw")
class JigsawCheck(Checker):
    """Reassemble the tiles as the answer says; no other arrangement may have clearly smoother seams (every
    arrangement up to 6 tiles, every swap of two tiles beyond)."""

    content_statistics = True

    def check(self, row, images):
        rows, cols = grid_shape(self.parameters, "2")
        order = parse_order(row.answer, rows * cols)
        if order is None or len(images) != rows * cols or len({im.size for im in images}) != 1:
            return WRONG
        tiles = [grey(im) for im in images]
        right, below = seam_costs(tiles)
        own = arrangement_cost(order, right, below, rows, cols)
        # The step between a tile's two outermost lines: what a seam inside the picture looks like.
        inner = (
            np.mean(
                [
                    np.abs(t[:, 1] - t[:, 0]).mean()
                    + np.abs(t[:, -1] - t[:, -2]).mean()
                    + np.abs(t[1] - t[0]).mean()
                    + np.abs(t[-1] - t[-2]).mean()
                    for t in tiles
                ]
            )
            / 4
        )
        if rows * cols <= 6:
            others = itertools.permutations(range(rows * cols))
        else:
            others = (
                [*order[:i], order[j], *order[i + 1 : j], order[i], *order[j + 1 :]]
                for i, j in itertools.combinations(range(rows * cols), 2)
            )
        best = min((arrangement_cost(o, right, below, rows, cols) for o in others if list(o) != order), default=np.inf)
        self.difficulty = float(min(1.0, own / best)) if best > 0 else 1.0  # seams barely better than a wrong layout
        if own <= best:
            return OK
        # Wrong: another arrangement is clearly smoother and the answer's seams clearly rougher than the
        # tiles' own texture; otherwise (fine or periodic textures such as a brick wall, whose true seams
        # may cut through mortar lines) UNSURE. Measured on 500 clean 2x2 rows of photo crops: the answer's
        # seams are at most 2.5 times (inner + 1), so no clean row is called wrong; 83% of rows given a
        # random other arrangement are (the rest UNSURE or, rarely, OK).
        return WRONG if best < 0.6 * own and own > 3.0 * (inner + 1.0) else UNSURE

    def picture(self, row, images):
        rows, cols = grid_shape(self.parameters, "2")
        order = parse_order(row.answer, rows * cols)
        if order is None or len(images) != rows * cols:
            return None
        width, height = images[0].size
        canvas = Image.new("RGB", (width * cols, height * rows))
        for cell, tile in enumerate(order):
            canvas.paste(images[tile], ((cell % cols) * width, (cell // cols) * height))
        return canvas


@register_checker("position")
class PositionCheck(Checker):
    """Find the crop in the full image: its best window must lie in the answer's quadrant."""

    content_statistics = True

    def check(self, row, images):
        full, crop = images[0], images[1]
        if crop.width > full.width // 2 or crop.height > full.height // 2:
            return WRONG
        normalised, answer = bool(self.parameters.get("augment_crop")), row.answer.strip()
        # Difficulty: how nearly another quadrant matches, with the crop reduced to 16-31 px (a third of the
        # cost of the finer match below, which a build scoring its rows skips).
        coarse = self.quadrant_errors(full, crop, max(1, 1 << (min(crop.size) // 16).bit_length() - 1), normalised)
        if not coarse:
            return UNSURE
        self.difficulty = closeness(coarse, answer)
        if self.score_only:
            return UNSURE
        errors = self.quadrant_errors(full, crop, 2 if min(crop.size) >= 56 else 1, normalised)
        return verdict(errors, answer, margin=0.15 if normalised else 2.0) if errors else UNSURE

    @staticmethod
    def quadrant_errors(full, crop, scale: int, normalised: bool) -> dict:
        """Per quadrant: the crop's best match among the windows inside it, both reduced by `scale`."""
        if scale > 1:
            full, crop = full.reduce(scale), crop.reduce(scale)
        error = window_errors(grey(full), grey(crop), normalised)
        half_h, half_w = full.height // 2, full.width // 2
        errors = {}
        for index, name in enumerate(QUADRANTS):
            top, left = (index // 2) * half_h, (index % 2) * half_w
            region = error[top : top + half_h - crop.height + 1, left : left + half_w - crop.width + 1]
            if region.size:
                errors[name] = float(region.min())
        return errors

    def picture(self, row, images):
        return images[0]


@register_checker("contrastive")
class ContrastiveCheck(Checker):
    """A positive names one source picture; a negative names two different ones (`a|b`)."""

    def check(self, row, images):
        if len(images) == 2:  # difficulty: a positive whose views share few colours, a negative whose views share many
            similarity = colour_overlap(images[0], images[1])
            self.difficulty = 1 - similarity if row.answer.strip() == "positive" else similarity
        ids = row.source_id.split("|")
        expected = "positive" if len(ids) == 1 else "negative" if len(ids) == 2 and ids[0] != ids[1] else None
        return OK if row.answer.strip() == expected else WRONG


@register_checker("flip")
class FlipCheck(Checker):
    """Mirror each cell back in turn: the answer's cell must be the one whose seams with its neighbours
    improve most."""

    content_statistics = True

    def check(self, row, images):
        rows, cols = grid_shape(self.parameters, "3")
        picture = grey(images[0])
        cell_h, cell_w = picture.shape[0] // rows, picture.shape[1] // cols
        if not row.answer.strip().isdigit() or not 1 <= int(row.answer) <= rows * cols:
            return WRONG
        gains = {}
        for cell in range(rows * cols):
            r, c = divmod(cell, cols)
            block = picture[r * cell_h : (r + 1) * cell_h, c * cell_w : (c + 1) * cell_w]
            gains[str(cell + 1)] = _edge_cost(picture, block, r, c, cell_h, cell_w) - _edge_cost(
                picture, block[:, ::-1], r, c, cell_h, cell_w
            )
        # The answer must gain most. Wrong: mirroring the answer's cell back gains little or nothing and another
        # cell gains clearly more, in units of the picture's own texture (mean step between columns, + 1).
        # Measured on 600 clean 3x3 rows of photo crops: the answer always gains at least 0.2 units, so no
        # clean row is called wrong; 96.5% of rows given another cell are.
        unit = float(np.abs(np.diff(picture, axis=1)).mean()) + 1.0
        answer = row.answer.strip()
        best = max(gains, key=gains.get)
        rival = max(v for k, v in gains.items() if k != answer)
        self.difficulty = (
            float(np.clip((rival + unit) / (gains[answer] + unit), 0, 1)) if gains[answer] > -unit else 1.0
        )
        if best == answer:
            return OK
        return WRONG if gains[answer] < 0.25 * unit and gains[best] - gains[answer] > unit else UNSURE

    def picture(self, row, images):
        rows, cols = grid_shape(self.parameters, "3")
        if not row.answer.strip().isdigit() or not 1 <= int(row.answer) <= rows * cols:
            return None
        picture = images[0].copy()
        cell_w, cell_h = picture.width // cols, picture.height // rows
        r, c = divmod(int(row.answer) - 1, cols)
        box = (c * cell_w, r * cell_h, (c + 1) * cell_w, (r + 1) * cell_h)
        picture.paste(picture.crop(box).transpose(Image.Transpose.FLIP_LEFT_RIGHT), box)
        return picture


def colour_overlap(first: Image.Image, second: Image.Image) -> float:
    """Intersection (0..1) of the two images' 4 x 4 x 4 colour histograms."""

    def histogram(image):
        pixels = np.asarray(image.reduce(2) if min(image.size) >= 64 else image, np.uint8).reshape(-1, 3) // 64
        counts = np.bincount(pixels[:, 0] * 16 + pixels[:, 1] * 4 + pixels[:, 2], minlength=64)
        return counts / counts.sum()

    return float(np.minimum(histogram(first), histogram(second)).sum())


def _edge_cost(picture, block, r, c, cell_h, cell_w) -> float:
    """Mean absolute step across the seams between `block`, placed at cell (r, c), and its neighbours."""
    top, left = r * cell_h, c * cell_w
    steps = []
    if top:
        steps.append(np.abs(picture[top - 1, left : left + cell_w] - block[0]))
    if top + cell_h < picture.shape[0]:
        steps.append(np.abs(picture[top + cell_h, left : left + cell_w] - block[-1]))
    if left:
        steps.append(np.abs(picture[top : top + cell_h, left - 1] - block[:, 0]))
    if left + cell_w < picture.shape[1]:
        steps.append(np.abs(picture[top : top + cell_h, left + cell_w] - block[:, -1]))
    return float(np.concatenate(steps).mean()) if steps else 0.0
