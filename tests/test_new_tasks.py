"""flip, context and inpaint (issue 18): labels checked from pixels, skips, determinism, bad input, blind baselines."""

import io
from collections import Counter

import numpy as np
import pytest
import yaml
from PIL import Image

from blind import bootstrap_ci, fit_logistic, photo_crops
from conftest import gradient, jpeg_bytes, read_rows
from ssl4rl_data.errors import SkipImage
from ssl4rl_data.images import decode, encode, sample_rng
from ssl4rl_data.rewards import accuracy_reward
from ssl4rl_data.tasks.context import DIRECTIONS, Context, ContextConfig, project_chroma
from ssl4rl_data.tasks.flip import Flip, FlipConfig
from ssl4rl_data.tasks.inpaint import GREY, Inpaint, InpaintConfig


def samples(task, image, count, key="img"):
    return [task.make(image, sample_rng(seed, task.name, key), None) for seed in range(count)]


def find_on_grid(source: np.ndarray, patch: np.ndarray, step: int = 16) -> list[tuple[int, int]]:
    """Every (x, y) on the `step` grid where `patch` equals the window of `source` exactly."""
    h, w = patch.shape[:2]
    return [(x, y) for y in range(0, source.shape[0] - h + 1, step) for x in range(0, source.shape[1] - w + 1, step)
            if np.array_equal(source[y, x], patch[0, 0]) and np.array_equal(source[y:y + h, x:x + w], patch)]


# flip


@pytest.mark.parametrize("grid,shape", [("3", (3, 3)), ("2x3", (2, 3)), ("6", (6, 6))])
def test_flip_answer_is_the_one_cell_mirrored(grid, shape):
    rows, cols = shape
    image = gradient(401, 397)
    source = np.asarray(image)
    made = samples(Flip(FlipConfig(grid=grid)), image, 40)
    for sample in made:
        (picture,) = (np.asarray(v) for v in sample.images)
        height, width = picture.shape[:2]
        cell_h, cell_w = height // rows, width // cols
        assert cell_h % 16 == 0 and cell_w % 16 == 0 and (cell_h * rows, cell_w * cols) == (height, width)
        # Red rises left to right in the gradient: it falls across the mirrored cell, and only there.
        falling = [r * cols + c + 1 for r in range(rows) for c in range(cols)
                   if picture[r * cell_h:(r + 1) * cell_h, c * cell_w + cell_w - 1, 0].mean()
                   < picture[r * cell_h:(r + 1) * cell_h, c * cell_w, 0].mean()]
        assert falling == [int(sample.answer)]
        # Mirroring the answered cell back restores a window of the source exactly, on the 16 px grid.
        cell = int(sample.answer) - 1
        restored = picture.copy()
        top, left = cell // cols * cell_h, cell % cols * cell_w
        restored[top:top + cell_h, left:left + cell_w] = restored[top:top + cell_h, left:left + cell_w][:, ::-1]
        assert find_on_grid(source, restored)
    assert len({s.answer for s in made}) > min(rows * cols, 40) // 2


def test_flip_never_chooses_a_cell_that_looks_the_same_mirrored():
    # Horizontal bands: every cell is its own mirror image, so no flip could be seen.
    bands = np.repeat((np.arange(288) // 24 % 2 * 200 + 20).astype(np.uint8)[:, None], 288, axis=1)
    with pytest.raises(SkipImage, match="no-asymmetric-cell"):
        Flip(FlipConfig()).make(Image.fromarray(bands).convert("RGB"), sample_rng(0, "flip", "x"), None)
    # The same bands with a left-to-right ramp in cell 6 only: the only cell a flip can be seen in.
    picture = np.stack([bands] * 3, axis=2)
    picture[96:192, 192:288, 0] = np.linspace(0, 255, 96).astype(np.uint8)[None, :]
    made = samples(Flip(FlipConfig()), Image.fromarray(picture), 20)
    assert {s.answer for s in made} == {"6"}


def flip_statistics(picture: np.ndarray, rows: int, cols: int) -> dict:
    """Per cell: statistics of the cell alone, and a seam solver's score (how much the seams across the
    cell's left and right edges improve when it is mirrored back)."""
    h, w = picture.shape[0] // rows, picture.shape[1] // cols
    grey = picture.mean(axis=2)
    out = {"mirror asymmetry": [], "contrast": [], "horizontal detail": [], "seam solver": []}
    for r in range(rows):
        for c in range(cols):
            cell = grey[r * h:(r + 1) * h, c * w:(c + 1) * w]
            out["mirror asymmetry"].append(np.abs(cell - cell[:, ::-1]).mean())
            out["contrast"].append(cell.std())
            out["horizontal detail"].append(np.abs(np.diff(cell, axis=1)).mean())
            seams = []
            for edge, outside in ((0, c * w - 1), (w - 1, (c + 1) * w)):
                if 0 <= outside < grey.shape[1]:
                    neighbour = grey[r * h:(r + 1) * h, outside]
                    seams.append(np.abs(cell[:, edge] - neighbour).mean() - np.abs(cell[:, w - 1 - edge] - neighbour).mean())
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
                sample = task.make(image, sample_rng(seed, "flip", f"{picture}{index}"), None)
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


# context


def locate_patches(sample, source):
    return [find_on_grid(source, np.asarray(v)) for v in sample.images]


@pytest.mark.parametrize("chroma", ["keep", "project", "grey"])
def test_context_answer_is_the_direction_between_the_patches(chroma):
    image = gradient(481, 419)
    task = Context(ContextConfig(chroma=chroma))
    source = np.asarray(image)
    if chroma == "project":
        source = np.asarray(project_chroma(image))
    elif chroma == "grey":
        source = np.asarray(image.convert("L").convert("RGB"))
    made = samples(task, image, 160 if chroma == "keep" else 24)
    off_axis = set()
    for sample in made:
        first, second = sample.images
        assert first.size == second.size and first.width == first.height and first.width % 16 == 0
        (a,), (b,) = locate_patches(sample, source)  # each found exactly once, on the 16 px grid
        side = first.width
        dx, dy = b[0] - a[0], b[1] - a[1]
        # Never touching: a gap of at least 16 px along the axis of the step (no edge runs across).
        assert max(abs(dx), abs(dy)) >= side + 16
        step = tuple(0 if abs(d) < side else int(np.sign(d)) for d in (dx, dy))
        assert step == DIRECTIONS[sample.answer]
        assert all(abs(d) < side // 2 or abs(d) >= side + 16 for d in (dx, dy))  # jitter well under the gap
        off_axis |= {d for d, s in zip((dx, dy), step) if s == 0}
        if chroma == "grey":
            pixels = np.asarray(first)
            assert np.array_equal(pixels[..., 0], pixels[..., 1])
    if chroma == "keep":
        counts = Counter(s.answer for s in made)
        assert set(counts) == set(DIRECTIONS) and max(counts.values()) <= 35  # about 20 each
        assert {-16, 0, 16} <= off_axis  # jittered off its place along the other axis, both ways


def test_context_first_patch_place_says_nothing_about_the_direction():
    """The first patch is placed where all eight neighbours fit, whatever the answer: its place is
    drawn from the same range for every direction."""
    image = gradient(640, 480)
    source = np.asarray(image)
    places = {}
    for sample in samples(Context(ContextConfig(chroma="keep")), image, 240):
        (a,), _ = locate_patches(sample, source)
        places.setdefault(DIRECTIONS[sample.answer][0], []).append(a[0])
    assert {min(v) for v in places.values()} == {min(min(v) for v in places.values())}
    assert {max(v) for v in places.values()} == {max(max(v) for v in places.values())}


def test_context_skips_flat_and_small_pictures():
    with pytest.raises(SkipImage, match="flat-patches"):
        Context(ContextConfig()).make(Image.new("RGB", (400, 300), (70, 90, 110)), sample_rng(0, "context", "x"), None)
    with pytest.raises(SkipImage, match="too-small"):
        Context(ContextConfig()).make(gradient(200, 150), sample_rng(0, "context", "x"), None)


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
                sample = task.make(image, rng, None)
            except SkipImage:
                continue
            first, second = (np.asarray(decode(encode(v, "jpeg")), np.float32) for v in sample.images)
            ours.append(edge_guess(first, second) == sample.answer)
            side = first.shape[0]
            dx, dy = DIRECTIONS[sample.answer]
            x, y = side + int(rng.integers(image.width - 3 * side + 1)), side + int(rng.integers(image.height - 3 * side + 1))
            a = np.asarray(image.crop((x, y, x + side, y + side)), np.float32)
            b = np.asarray(image.crop((x + dx * side, y + dy * side, x + dx * side + side, y + dy * side + side)), np.float32)
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
    return (float((gx * difference).sum() / ((gx * gx).sum() + 1e-9)),
            float((gy * difference).sum() / ((gy * gy).sum() + 1e-9)))


def with_chromatic_aberration(image: Image.Image, strength: float = 0.006) -> Image.Image:
    """Green shrunk towards the frame's centre against red and blue, as Doersch et al. describe lenses."""
    r, g, b = image.split()
    width, height = image.size
    scale = 1 + strength  # sample green farther out: its content appears pulled towards the centre
    cx, cy = width / 2, height / 2
    g = g.transform(image.size, Image.Transform.AFFINE, (scale, 0, cx - scale * cx, 0, scale, cy - scale * cy),
                    Image.Resampling.BICUBIC)
    return Image.merge("RGB", (r, g, b))


@pytest.mark.parametrize("chroma", ["keep", "project"])
def test_context_chromatic_aberration_tells_the_direction_only_when_colours_are_kept(chroma):
    """Doersch et al.'s chromatic-aberration shortcut, simulated (green scaled by 0.6% about the centre,
    3 px at the edges of a 1000 px picture): the second patch's green-magenta shift minus the first's
    tells left from right when colours are kept, and nothing once the green-magenta axis is projected
    out (the default), where the estimate is 0 for every patch."""
    from blind import auc_with_ci, photos

    task = Context(ContextConfig(chroma=chroma))
    features, labels, groups = [], [], []
    for name, photo in photos()[:12]:
        picture = with_chromatic_aberration(photo.resize((1000, round(1000 * photo.height / photo.width))))
        for seed in range(30):
            try:
                sample = task.make(picture, sample_rng(seed, "context", name), None)
            except SkipImage:
                continue
            dx = DIRECTIONS[sample.answer][0]
            if dx:
                first, second = (np.asarray(v, np.float32) for v in sample.images)
                features.append(green_magenta_shift(second)[0] - green_magenta_shift(first)[0])
                labels.append(dx > 0)
                groups.append(name)
    value, low, high = auc_with_ci(features, labels, groups)
    print(f"context ({chroma}), green-magenta shift difference, left vs right: AUC {value:.3f} [{low:.3f}, {high:.3f}]")
    if chroma == "keep":
        assert value > 0.75
    else:
        assert np.allclose(features, 0, atol=0.02) and low <= 0.5 + 0.1


# inpaint


@pytest.mark.parametrize("grid,candidates", [("3", 4), ("2", 3), ("3x4", 5)])
def test_inpaint_answer_is_the_patch_cut_from_the_grey_cell(grid, candidates):
    image = gradient(497, 433)
    source = np.asarray(image).astype(int)
    task = Inpaint(InpaintConfig(grid=grid, candidates=candidates))
    rows, cols = task.config.rows, task.config.cols
    made = samples(task, image, 40)
    untouched = 0
    for sample in made:
        picture, *patches = (np.asarray(v).astype(int) for v in sample.images)
        assert len(patches) == candidates and len({p.shape for p in patches}) == 1
        cell_h, cell_w = patches[0].shape[:2]
        assert cell_h % 16 == 0 and cell_w % 16 == 0 and picture.shape[:2] == (rows * cell_h, cols * cell_w)
        grey = np.all(picture == GREY, axis=2)
        ys, xs = np.nonzero(grey)
        hole = (ys.min(), xs.min())
        assert grey.sum() == cell_h * cell_w and hole[0] % cell_h == 0 and hole[1] % cell_w == 0
        # Where the picture sits in the source: found by a visible cell, on the 16 px grid.
        ry, rx = (0, 0) if hole != (0, 0) else (0, cell_w)
        (x0, y0), = find_on_grid(source, picture[ry:ry + cell_h, rx:rx + cell_w])
        x0, y0 = x0 - rx, y0 - ry
        assert np.array_equal(picture[~grey], source[y0:y0 + picture.shape[0], x0:x0 + picture.shape[1]][~grey])
        truth = source[y0 + hole[0]:y0 + hole[0] + cell_h, x0 + hole[1]:x0 + hole[1] + cell_w]
        # Candidates are recoloured (one affine map per channel): the answer is the grey cell's content
        # up to such a map, and no other candidate is.
        residuals = [affine_residual(truth, patch) for patch in patches]
        assert [k + 1 for k, r in enumerate(residuals) if r < 1.0] == [int(sample.answer)]
        assert sorted(residuals)[1] > 3
        untouched += sum(np.array_equal(patch, truth) for patch in patches)
        # Every candidate is absent from the picture shown: none can be struck out by finding it there.
        for patch in patches:
            windows = [picture[y:y + cell_h, x:x + cell_w] for y in range(0, picture.shape[0] - cell_h + 1, 16)
                       for x in range(0, picture.shape[1] - cell_w + 1, 16)]
            assert all(np.abs(w - patch).mean() > 1 for w in windows)
    counts = Counter(s.answer for s in made)
    assert set(counts) == {str(k) for k in range(1, candidates + 1)}
    assert 0 < untouched < len(made) / 2  # the answer keeps its own colours about 1 time in K


def affine_residual(source: np.ndarray, patch: np.ndarray) -> float:
    """Root-mean-square error of the best per-channel affine map from `source` to `patch`, on pixels
    the map did not clip."""
    errors = []
    for c in range(3):
        x, y = source[..., c].ravel().astype(float), patch[..., c].ravel().astype(float)
        keep = (y > 0) & (y < 255)
        a, b = np.polyfit(x[keep], y[keep], 1) if np.ptp(x[keep]) > 0 else (0.0, y[keep].mean())
        errors.append(np.mean((a * x[keep] + b - y[keep]) ** 2))
    return float(np.sqrt(np.mean(errors)))


def test_inpaint_skips_pictures_without_distinct_candidates():
    with pytest.raises(SkipImage, match="no-distinct-candidates"):
        Inpaint(InpaintConfig()).make(Image.new("RGB", (400, 400), (10, 200, 30)), sample_rng(0, "inpaint", "x"), None)
    with pytest.raises(SkipImage, match="too-small"):
        Inpaint(InpaintConfig()).make(gradient(120, 120), sample_rng(0, "inpaint", "x"), None)


def boundary_error(picture, patch, hole, size):
    """A solver: mean absolute difference across the grey cell's visible edges."""
    (y, x), (h, w) = hole, size
    errors = []
    if y > 0:
        errors.append(np.abs(patch[0] - picture[y - 1, x:x + w]).mean())
    if y + h < picture.shape[0]:
        errors.append(np.abs(patch[-1] - picture[y + h, x:x + w]).mean())
    if x > 0:
        errors.append(np.abs(patch[:, 0] - picture[y:y + h, x - 1]).mean())
    if x + w < picture.shape[1]:
        errors.append(np.abs(patch[:, -1] - picture[y:y + h, x + w]).mean())
    return float(np.mean(errors))


def inpaint_statistics(picture, patches):
    """Per candidate: statistics a shortcut would use, and the boundary solver's error."""
    h, w = patches[0].shape[:2]
    grey = np.all(np.abs(picture - 128) < 3, axis=2)
    cells = [(r * h, c * w) for r in range(picture.shape[0] // h) for c in range(picture.shape[1] // w)]
    hole = max(cells, key=lambda yx: grey[yx[0]:yx[0] + h, yx[1]:yx[1] + w].mean())
    ring = np.zeros(grey.shape, bool)
    ring[max(0, hole[0] - 8):hole[0] + h + 8, max(0, hole[1] - 8):hole[1] + w + 8] = True
    ring[hole[0]:hole[0] + h, hole[1]:hole[1] + w] = False
    ring_pixels = picture[ring]
    visible = [picture[y:y + h, x:x + w] for y, x in cells if (y, x) != hole]
    rows = []
    for patch in patches:
        pixels = patch.reshape(-1, 3)
        grey_patch = patch.mean(axis=2)
        rows.append({
            "ring colour (mean and spread vs the grey cell's 8 px ring)":
                np.abs(pixels.mean(0) - ring_pixels.mean(0)).sum() + np.abs(pixels.std(0) - ring_pixels.std(0)).sum(),
            "distance to the most similar visible cell": min(np.abs(patch - v).mean() for v in visible),
            "contrast": grey_patch.std(),
            "sharpness": np.abs(np.diff(grey_patch, axis=0)).mean() + np.abs(np.diff(grey_patch, axis=1)).mean(),
            "histogram roughness (the gaps and doubled levels a remap leaves)": histogram_roughness(patch),
            "boundary solver": boundary_error(picture, patch, hole, (h, w)),
        })
    return rows


def histogram_roughness(patch: np.ndarray) -> float:
    """Mean absolute second difference of each channel's histogram (2nd to 98th percentile), relative to
    its mean count, summed over channels: high for the comb a rounded contrast stretch leaves."""
    total = 0.0
    for c in range(3):
        levels = patch[..., c].astype(int).ravel()
        low, high = np.percentile(levels, [2, 98]).astype(int)
        inner = np.bincount(levels, minlength=256)[low:high + 1]
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
                sample = task.make(image, sample_rng(seed, "inpaint", f"{picture}{index}"), None)
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


# every new task: rewards, determinism, bad input, recipes


@pytest.mark.parametrize("task,truth,right,wrong", [
    ("flip", "5", [" 5 ", "5"], ["05", "5.", "cell 5", "6", "5,6"]),
    ("context", "top-right", ["Top-Right", " top-right "], ["top right", "right", "top-left", "topright"]),
    ("inpaint", "3", ["3", " 3"], ["03", "3rd", "candidate 3", "4", "3,1"]),
])
def test_rewards_are_strict(task, truth, right, wrong):
    wrap = "<think>x</think> <answer>{}</answer>".format
    assert accuracy_reward([wrap(p) for p in right], answer=[truth] * len(right), task=[task] * len(right)) == [1.0] * len(right)
    assert accuracy_reward([wrap(p) for p in wrong], answer=[truth] * len(wrong), task=[task] * len(wrong)) == [0.0] * len(wrong)


@pytest.fixture(scope="module")
def larger_photos(tmp_path_factory):
    """72 JPEG photo crops of 320 x 256 and more: big enough for every new task (context needs 192 px)."""
    folder = tmp_path_factory.mktemp("larger")
    for index, (_, image) in enumerate(photo_crops(4, seed=3, min_side=256)[:72]):
        (folder / f"p{index:03d}.jpg").write_bytes(jpeg_bytes(image))
    return folder


@pytest.mark.parametrize("task", ["flip", "context", "inpaint"])
def test_same_command_same_bytes_whatever_num_proc(tmp_path, run_cli, larger_photos, task):
    outputs = []
    for name, procs in [("a", 1), ("b", 2)]:
        code, err = run_cli("build", task, "--source", f"folder:{larger_photos}", "--num-proc", procs,
                            "--out", tmp_path / name, "-q")
        assert code == 0, err
        files = sorted((tmp_path / name / "data").glob("*.parquet"))
        assert len(files) == 3
        outputs.append([f.read_bytes() for f in files])
    assert outputs[0] == outputs[1]
    assert len(read_rows(tmp_path / "a")) > 60


@pytest.mark.parametrize("task", ["flip", "context", "inpaint"])
def test_bad_images_are_skipped_and_counted(tmp_path, run_cli, task):
    folder = tmp_path / "src"
    folder.mkdir()
    (folder / "good.jpg").write_bytes(jpeg_bytes(gradient(480, 400)))
    gradient(480, 400).convert("CMYK").save(folder / "cmyk.jpg", quality=95)
    (folder / "truncated.jpg").write_bytes(jpeg_bytes(gradient(640, 480))[:3000])
    (folder / "text.jpg").write_text("hello")
    gradient(40, 30).save(folder / "tiny.png")
    code, err = run_cli("build", task, "--source", f"folder:{folder}", "--out", tmp_path / "d", "-q")
    assert code == 0, err
    assert len(read_rows(tmp_path / "d")) == 2
    card = yaml.safe_load((tmp_path / "d" / "README.md").read_text().split("---")[1])
    assert card["ssl4rl"]["skipped"] == {"not-an-image": 1, "too-small": 1, "unreadable": 1}
    for row in read_rows(tmp_path / "d"):
        assert all(Image.open(io.BytesIO(image["bytes"])).mode == "RGB" for image in row["images"])


@pytest.mark.parametrize("args,message", [
    (["flip", "--grid", "7"], "--grid sides must be between 2 and 6"),
    (["inpaint", "--candidates", "7"], "--candidates must be between 2 and 5"),
    (["inpaint", "--grid", "x"], "--grid must be N or RxC"),
    (["context", "--chroma", "sepia"], "--chroma must be one of"),
    (["context", "--jitter", "0.5", "--gap", "0.5"], "need 0 <= --jitter < --gap"),
    (["context", "--gap", "0"], "--gap must be in (0, 2]"),
])
def test_user_mistakes_get_one_line(tmp_path, run_cli, args, message):
    code, err = run_cli("build", *args, "--out", tmp_path / "d")
    assert code != 0 and message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "d").exists()
