"""Blind tests for flip, context and inpaint (issue 18): cues that are not the task's own reasoning pick the
answer no better than chance, and a solver that does the task's reasoning finds it.

Each test makes samples from real photo crops (tests/blind.py), computes statistics a shortcut would use,
and scores them cross-validated by source picture (leave one picture out) with a 95% interval from a
bootstrap over pictures. Figures measured when they were written are in each test's docstring.
"""

import numpy as np
import pytest
from blind import auc_with_ci, bootstrap_ci, fit_logistic, photo_crops, photos
from PIL import Image

from ssl4rl_data.errors import SkipImage
from ssl4rl_data.images import decode, encode, sample_rng
from ssl4rl_data.tasks.context import DIRECTIONS, Context, ContextConfig
from ssl4rl_data.tasks.flip import Flip, FlipConfig
from ssl4rl_data.tasks.inpaint import Inpaint, InpaintConfig


def flip_statistics(picture: np.ndarray, rows: int, cols: int) -> dict:
    """Per cell: statistics of the cell alone, and a seam solver's score (how much the seams across the
    cell's left and right edges improve when it is mirrored back)."""
    h, w = picture.shape[0] // rows, picture.shape[1] // cols
    grey = picture.mean(axis=2)
    out = {"mirror asymmetry": [], "contrast": [], "horizontal detail": [], "seam solver": []}
    for r in range(rows):
        for c in range(cols):
            cell = grey[r * h : (r + 1) * h, c * w : (c + 1) * w]
            out["mirror asymmetry"].append(np.abs(cell - cell[:, ::-1]).mean())
            out["contrast"].append(cell.std())
            out["horizontal detail"].append(np.abs(np.diff(cell, axis=1)).mean())
            seams = []
            for edge, outside in ((0, c * w - 1), (w - 1, (c + 1) * w)):
                if 0 <= outside < grey.shape[1]:
                    neighbour = grey[r * h : (r + 1) * h, outside]
                    mirrored_back = np.abs(cell[:, w - 1 - edge] - neighbour).mean()
                    seams.append(np.abs(cell[:, edge] - neighbour).mean() - mirrored_back)
            out["seam solver"].append(float(np.mean(seams)))
    return out


def test_flip_cells_own_statistics_do_not_tell_the_answer():
    """A cell's own statistics (its mirror asymmetry, contrast, horizontal detail) pick the mirrored cell
    no better than chance (one of the usable cells, drawn uniformly), cross-validated by picture with a
    picture-bootstrap interval; the seam solver, which compares each cell with its neighbours, finds it.
    Measured on 19 pictures x 8 crops x 2 seeds: mirror asymmetry 0.105 [0.069, 0.148], contrast 0.132
    [0.092, 0.168], horizontal detail 0.132 [0.095, 0.168]; seam solver 0.98 [0.96, 1.00]."""
    task = Flip(FlipConfig())
    statistics, answers, groups = [], [], []
    for index, (picture, image) in enumerate(photo_crops(8)):
        for seed in range(2):
            try:
                sample = task.make(image, sample_rng(seed, "flip", f"{picture}{index}"))
            except SkipImage:
                continue
            shown = np.asarray(decode(encode(sample.images[0], "jpeg")), np.float32)
            statistics.append(flip_statistics(shown, 3, 3))
            answers.append(int(sample.answer) - 1)
            groups.append(picture)
    answers, groups = np.array(answers), np.array(groups)
    assert len(answers) > 250
    for name in statistics[0]:
        values = np.array([row[name] for row in statistics])
        correct = cross_validated_pick(values, answers, groups)
        low, high = bootstrap_ci(np.mean, groups, correct)
        print(f"flip, {name}: {correct.mean():.3f} [{low:.3f}, {high:.3f}], chance 1/9 = 0.111")
        if name == "seam solver":
            assert correct.mean() > 0.6
        else:
            assert low < 1 / 9 and correct.mean() < 1 / 9 + 0.05


def edge_guess(first: np.ndarray, second: np.ndarray) -> str:
    """Boundary continuation: the direction whose facing edges (a row, a column or a corner of each
    patch) differ least."""
    edges = {}
    for name, (dx, dy) in DIRECTIONS.items():
        if dx and dy:
            a = first[0 if dy < 0 else -1, 0 if dx < 0 else -1]
            b = second[-1 if dy < 0 else 0, -1 if dx < 0 else 0]
        elif dy:
            a, b = first[0 if dy < 0 else -1], second[-1 if dy < 0 else 0]
        else:
            a, b = first[:, 0 if dx < 0 else -1], second[:, -1 if dx < 0 else 0]
        edges[name] = float(np.abs(np.asarray(a, np.float32) - b).mean())
    return min(edges, key=edges.get)


def test_context_edges_do_not_continue_across_the_gap():
    """Doersch et al.'s boundary-continuation shortcut, measured: matching the patches' facing edges finds
    the direction of touching patches (no gap, no jitter: the shortcut) far more often than of the
    task's patches (a gap and a jitter). Figures printed; both against chance 1/8."""
    task = Context(ContextConfig(chroma="keep"))
    ours, touching, groups = [], [], []
    for index, (picture, image) in enumerate(photo_crops(6, min_side=224)):
        for seed in range(2):
            rng = sample_rng(seed, "context", f"{picture}{index}")
            try:
                sample = task.make(image, rng)
            except SkipImage:
                continue
            first, second = (np.asarray(decode(encode(v, "jpeg")), np.float32) for v in sample.images)
            ours.append(edge_guess(first, second) == sample.answer)
            side = first.shape[0]
            dx, dy = DIRECTIONS[sample.answer]
            x = side + int(rng.integers(image.width - 3 * side + 1))
            y = side + int(rng.integers(image.height - 3 * side + 1))
            a = np.asarray(image.crop((x, y, x + side, y + side)), np.float32)
            bx, by = x + dx * side, y + dy * side
            b = np.asarray(image.crop((bx, by, bx + side, by + side)), np.float32)
            touching.append(edge_guess(a, b) == sample.answer)
            groups.append(picture)
    for name, correct in (("touching patches", touching), ("the task's patches", ours)):
        low, high = bootstrap_ci(np.mean, groups, correct)
        print(f"context, edge matching on {name}: {np.mean(correct):.3f} [{low:.3f}, {high:.3f}], chance 0.125")
    assert np.mean(touching) > 0.6 and np.mean(ours) < np.mean(touching) / 2


def green_magenta_shift(patch: np.ndarray) -> tuple[float, float]:
    """Least-squares shift (x, y) of the green channel against magenta ((red + blue) / 2), first order."""
    green, magenta = patch[..., 1], (patch[..., 0] + patch[..., 2]) / 2
    gy, gx = np.gradient(green)
    difference = magenta - green
    return (
        float((gx * difference).sum() / ((gx * gx).sum() + 1e-9)),
        float((gy * difference).sum() / ((gy * gy).sum() + 1e-9)),
    )


def with_chromatic_aberration(image: Image.Image, strength: float = 0.006) -> Image.Image:
    """Green shrunk towards the frame's centre against red and blue, as Doersch et al. describe lenses."""
    r, g, b = image.split()
    width, height = image.size
    scale = 1 + strength  # sample green farther out: its content appears pulled towards the centre
    cx, cy = width / 2, height / 2
    g = g.transform(
        image.size,
        Image.Transform.AFFINE,
        (scale, 0, cx - scale * cx, 0, scale, cy - scale * cy),
        Image.Resampling.BICUBIC,
    )
    return Image.merge("RGB", (r, g, b))


@pytest.mark.parametrize("chroma", ["keep", "project"])
def test_context_chromatic_aberration_tells_the_direction_only_when_colours_are_kept(chroma):
    """Doersch et al.'s chromatic-aberration shortcut, simulated (green scaled by 0.6% about the centre,
    3 px at the edges of a 1000 px picture): the second patch's green-magenta shift minus the first's
    tells left from right when colours are kept, and nothing once the green-magenta axis is projected
    out (the default), where the estimate is 0 for every patch."""
    task = Context(ContextConfig(chroma=chroma))
    features, labels, groups = [], [], []
    for name, photo in photos()[:12]:
        picture = with_chromatic_aberration(photo.resize((1000, round(1000 * photo.height / photo.width))))
        for seed in range(30):
            try:
                sample = task.make(picture, sample_rng(seed, "context", name))
            except SkipImage:
                continue
            dx = DIRECTIONS[sample.answer][0]
            if dx:
                first, second = (np.asarray(v, np.float32) for v in sample.images)
                features.append(green_magenta_shift(second)[0] - green_magenta_shift(first)[0])
                labels.append(dx > 0)
                groups.append(name)
    value, low, high = auc_with_ci(features, labels, groups)
    print(
        f"context ({chroma}), green-magenta shift difference, left vs right: AUC {value:.3f} [{low:.3f}, {high:.3f}]"
    )
    if chroma == "keep":
        assert value > 0.75
    else:
        assert np.allclose(features, 0, atol=0.02) and low <= 0.5 + 0.1


def boundary_error(picture, patch, hole, size):
    """A solver: mean absolute difference across the grey cell's visible edges."""
    (y, x), (h, w) = hole, size
    errors = []
    if y > 0:
        errors.append(np.abs(patch[0] - picture[y - 1, x : x + w]).mean())
    if y + h < picture.shape[0]:
        errors.append(np.abs(patch[-1] - picture[y + h, x : x + w]).mean())
    if x > 0:
        errors.append(np.abs(patch[:, 0] - picture[y : y + h, x - 1]).mean())
    if x + w < picture.shape[1]:
        errors.append(np.abs(patch[:, -1] - picture[y : y + h, x + w]).mean())
    return float(np.mean(errors))


def inpaint_statistics(picture, patches):
    """Per candidate: statistics a shortcut would use, and the boundary solver's error."""
    h, w = patches[0].shape[:2]
    grey = np.all(np.abs(picture - 128) < 3, axis=2)
    cells = [(r * h, c * w) for r in range(picture.shape[0] // h) for c in range(picture.shape[1] // w)]
    hole = max(cells, key=lambda yx: grey[yx[0] : yx[0] + h, yx[1] : yx[1] + w].mean())
    ring = np.zeros(grey.shape, bool)
    ring[max(0, hole[0] - 8) : hole[0] + h + 8, max(0, hole[1] - 8) : hole[1] + w + 8] = True
    ring[hole[0] : hole[0] + h, hole[1] : hole[1] + w] = False
    ring_pixels = picture[ring]
    visible = [picture[y : y + h, x : x + w] for y, x in cells if (y, x) != hole]
    rows = []
    for patch in patches:
        pixels = patch.reshape(-1, 3)
        grey_patch = patch.mean(axis=2)
        rows.append(
            {
                "ring colour (mean and spread vs the grey cell's 8 px ring)": np.abs(
                    pixels.mean(0) - ring_pixels.mean(0)
                ).sum()
                + np.abs(pixels.std(0) - ring_pixels.std(0)).sum(),
                "distance to the most similar visible cell": min(np.abs(patch - v).mean() for v in visible),
                "contrast": grey_patch.std(),
                "sharpness": np.abs(np.diff(grey_patch, axis=0)).mean() + np.abs(np.diff(grey_patch, axis=1)).mean(),
                "histogram roughness (the gaps and doubled levels a remap leaves)": histogram_roughness(patch),
                "boundary solver": boundary_error(picture, patch, hole, (h, w)),
            }
        )
    return rows


def histogram_roughness(patch: np.ndarray) -> float:
    """Mean absolute second difference of each channel's histogram (2nd to 98th percentile), relative to
    its mean count, summed over channels: high for the comb a rounded contrast stretch leaves."""
    total = 0.0
    for c in range(3):
        levels = patch[..., c].astype(int).ravel()
        low, high = np.percentile(levels, [2, 98]).astype(int)
        inner = np.bincount(levels, minlength=256)[low : high + 1]
        if high - low > 3:
            total += np.abs(np.diff(inner, 2)).mean() / inner.mean()
    return total


def cross_validated_pick(values, answers, groups):
    """Leave one picture out: on the other pictures, choose whether the answer is the candidate with
    the smallest or the largest value; score that choice on the picture left out."""
    smallest = np.array([int(np.argmin(v)) == a for v, a in zip(values, answers)])
    largest = np.array([int(np.argmax(v)) == a for v, a in zip(values, answers)])
    correct = np.zeros(len(answers), bool)
    for name in np.unique(groups):
        test = groups == name
        correct[test] = (smallest if smallest[~test].mean() >= largest[~test].mean() else largest)[test]
    return correct


def combined_pick(values, answers, groups):
    """Leave one picture out: a logistic regression on every blind statistic (each taken relative to its
    row's mean) learns which candidate is the answer on the other pictures; it picks on the one left out."""
    x = np.concatenate([v - v.mean(axis=1, keepdims=True) for v in values], axis=2)  # rows x candidates x stats
    y = np.zeros(x.shape[:2], int)
    y[np.arange(len(answers)), answers] = 1
    correct = np.zeros(len(answers), bool)
    for name in np.unique(groups):
        test = groups == name
        train = x[~test].reshape(-1, x.shape[2])
        mean, std = train.mean(0), train.std(0) + 1e-9
        weights = fit_logistic((train - mean) / std, y[~test].reshape(-1))
        scores = np.concatenate([(x[test] - mean) / std, np.ones((*x[test].shape[:2], 1))], axis=2) @ weights[:, 1]
        correct[test] = scores.argmax(axis=1) == answers[test]
    return correct


def test_inpaint_blind_baselines_are_at_chance():
    """Statistics that do not inpaint pick the answer no better than chance (1/4), cross-validated by
    picture with a picture-bootstrap 95% interval; the boundary solver, which does inpaint, mostly
    finds it. Measured on 19 pictures x 8 crops x 3 seeds (432 rows): ring colour 0.28 [0.24, 0.33],
    distance to the most similar visible cell (either way: the absent one, or the most alike) 0.18
    [0.15, 0.21], contrast 0.25 [0.21, 0.30], sharpness 0.16 [0.13, 0.18], histogram roughness 0.24
    [0.20, 0.29], a logistic regression on all five 0.21 [0.17, 0.26]; the boundary solver 0.89
    [0.83, 0.95]. Before distractors took the answer's colours, ring colour picked it 0.49 of the
    time; before they were chosen at least as like the visible cells as the answer, the most similar
    visible cell 0.34 [0.26, 0.42]; while the answer was the one candidate never remapped, histogram
    roughness 0.42 [0.35, 0.49]."""
    task = Inpaint(InpaintConfig())
    statistics, answers, groups = [], [], []
    for index, (picture, image) in enumerate(photo_crops(8)):
        for seed in range(3):
            try:
                sample = task.make(image, sample_rng(seed, "inpaint", f"{picture}{index}"))
            except SkipImage:
                continue
            views = [np.asarray(decode(encode(v, "jpeg")), np.float32) for v in sample.images]
            statistics.append(inpaint_statistics(views[0], views[1:]))
            answers.append(int(sample.answer) - 1)
            groups.append(picture)
    answers, groups = np.array(answers), np.array(groups)
    assert len(answers) > 400
    blind = []
    for name in statistics[0][0]:
        values = np.array([[candidate[name] for candidate in row] for row in statistics])
        correct = cross_validated_pick(values, answers, groups)
        low, high = bootstrap_ci(np.mean, groups, correct)
        print(f"inpaint, {name}: {correct.mean():.3f} [{low:.3f}, {high:.3f}], chance 0.250")
        if name == "boundary solver":
            assert correct.mean() > 0.85
        else:
            assert low < 0.25 and correct.mean() < 0.25 + 0.06
            blind.append(values[:, :, None])
    correct = combined_pick(blind, answers, groups)
    low, high = bootstrap_ci(np.mean, groups, correct)
    print(f"inpaint, all blind statistics together: {correct.mean():.3f} [{low:.3f}, {high:.3f}], chance 0.250")
    assert low < 0.25 and correct.mean() < 0.25 + 0.06
