"""The audit's checkers for context and inpaint: plain non-learned solvers on the row's pixels that share no
code with the tasks' `make` (the layout and the hole are found again from the images and parameters)."""

import numpy as np

from .checks import OK, UNSURE, WRONG, Checker, register_checker
from .task_checks import closeness, grey, grid_shape

# (dx, dy) of the second patch relative to the first, by answer: the context prompt's eight places.
PLACES = {
    "top-left": (-1, -1),
    "top": (0, -1),
    "top-right": (1, -1),
    "left": (-1, 0),
    "right": (1, 0),
    "bottom-left": (-1, 1),
    "bottom": (0, 1),
    "bottom-right": (1, 1),
}
# Mean |2 green - red - blue| (0..255) of projected patches: 0 as made, at most 2.5 after JPEG q95 on 745
# rows of photo crops; patches whose colours were kept reach 110 and more.
PROJECTED_LIMIT = 6.0
GREY_LIMIT = 6.0  # mean |channel - grey| of grey patches, on the same scale


@register_checker("context")
class ContextCheck(Checker):
    """What the row alone allows: two equal square patches on the 16 px grid, an answer among the eight
    places, and the colours the chroma parameter promises. The place itself is not decidable here: the gap
    and jitter keep edges from continuing (the best plain solver, matching the facing border strips, finds
    it in 18% of 745 clean rows of photo crops, chance 12.5%, and its margins on clean rows overlap those
    of rows given another place), so a well-formed row is UNSURE. Its difficulty is that solver's
    doubt: the answer's border mismatch over its own plus the best other place's (0.5: a tie)."""

    def check(self, row, images):
        answer = row.answer.strip()
        if len(images) != 2 or answer not in PLACES or images[0].size != images[1].size:
            return WRONG
        side = images[0].width
        if images[0].height != side or side % 16 or side < 32:
            return WRONG
        pixels = np.concatenate([np.asarray(im, np.float64) for im in images])
        chroma = self.parameters.get("chroma", "project")
        if (
            chroma == "project"
            and np.abs(2 * pixels[..., 1] - pixels[..., 0] - pixels[..., 2]).mean() > PROJECTED_LIMIT
        ):
            return WRONG
        if chroma == "grey" and np.abs(pixels - pixels.mean(axis=2, keepdims=True)).mean() > GREY_LIMIT:
            return WRONG
        errors = border_mismatch(np.asarray(images[0], np.float64), np.asarray(images[1], np.float64))
        rival = min(v for k, v in errors.items() if k != answer)
        self.difficulty = float(errors[answer] / (errors[answer] + rival)) if errors[answer] + rival > 0 else 0.5
        return UNSURE

    def picture(self, row, images):
        return None  # a patch is a small part of the picture: no view shows most of it


def border_mismatch(first: np.ndarray, second: np.ndarray) -> dict:
    """Per place: how unlike the first patch's border strip facing it is to the second's strip facing back
    (a quarter of the side deep), as 8-segment colour profiles along a side, or mean colours at a corner."""
    side = first.shape[0]
    depth, step = max(4, side // 4), max(1, side // 8)

    def strip(pixels, sx, sy):
        rows = slice(0, depth) if sy < 0 else slice(side - depth, side) if sy > 0 else slice(0, side)
        cols = slice(0, depth) if sx < 0 else slice(side - depth, side) if sx > 0 else slice(0, side)
        return pixels[rows, cols]

    errors = {}
    for name, (dx, dy) in PLACES.items():
        a, b = strip(first, dx, dy), strip(second, -dx, -dy)
        if dx and dy:
            errors[name] = float(np.abs(a.mean((0, 1)) - b.mean((0, 1))).sum())
        else:
            axis = 1 if dx else 0  # average across the strip's depth: a profile along the side
            count = side // step
            profile_a = a.mean(axis)[: count * step].reshape(count, step, 3).mean(1)
            profile_b = b.mean(axis)[: count * step].reshape(count, step, 3).mean(1)
            errors[name] = float(np.abs(profile_a - profile_b).mean() * 3)
    return errors


@register_checker("inpaint")
class InpaintCheck(Checker):
    """Find the grey cell in the picture and put each candidate in it: the answer's border must continue the
    picture best (zero-mean correlation of the candidate's outermost lines with the picture's lines around
    the cell: the candidates' colour statistics were all set alike, so levels say nothing, shapes do).
    On 724 clean 3x3 rows of photo crops the answer continues best in 97.4%; no clean row is called wrong;
    81.6% of rows given another candidate are."""

    content_statistics = True

    def check(self, row, images):
        rows, cols = grid_shape(self.parameters, "3")
        count = int(self.parameters.get("candidates", 4))
        answer = row.answer.strip()
        if len(images) != count + 1 or not answer.isdigit() or not 1 <= int(answer) <= count:
            return WRONG
        picture = grey(images[0])
        cell_h, cell_w = picture.shape[0] // rows, picture.shape[1] // cols
        if any(im.size != (cell_w, cell_h) for im in images[1:]):
            return WRONG
        cells = [(r * cell_h, c * cell_w) for r in range(rows) for c in range(cols)]
        # The hole: the cell nearest flat grey 128 (within 8 of it on average: JPEG keeps it within 2).
        flatness = [np.abs(picture[y : y + cell_h, x : x + cell_w] - 128).mean() for y, x in cells]
        top, left = cells[int(np.argmin(flatness))]
        if min(flatness) > 8:
            return WRONG
        errors = {
            str(i + 1): seam_decorrelation(picture, grey(candidate), top, left)
            for i, candidate in enumerate(images[1:])
        }
        self.difficulty = closeness(errors, answer)  # another candidate continues the picture almost as well
        rival = min(v for k, v in errors.items() if k != answer)
        if errors[answer] <= rival:
            return OK
        return WRONG if rival < 0.25 * errors[answer] else UNSURE

    def picture(self, row, images):
        return images[0]


def seam_decorrelation(picture: np.ndarray, patch: np.ndarray, top: int, left: int) -> float:
    """1 - the correlation between the picture's lines just outside the cell at (top, left) and the patch's
    outermost lines facing them (all sides the picture has), each centred on its mean."""
    height, width = patch.shape
    pairs = []
    if top:
        pairs.append((picture[top - 1, left : left + width], patch[0]))
    if top + height < picture.shape[0]:
        pairs.append((picture[top + height, left : left + width], patch[-1]))
    if left:
        pairs.append((picture[top : top + height, left - 1], patch[:, 0]))
    if left + width < picture.shape[1]:
        pairs.append((picture[top : top + height, left + width], patch[:, -1]))
    a, b = (np.concatenate(side) for side in zip(*pairs, strict=True))
    a, b = a - a.mean(), b - b.mean()
    spread = np.sqrt((a * a).sum() * (b * b).sum())
    return float(1 - (a * b).sum() / spread) if spread > 0 else 1.0
