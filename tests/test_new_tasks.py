"""flip, context and inpaint (issue 18): labels checked from pixels, skips, determinism, bad input, blind baselines."""

import io
from collections import Counter

import numpy as np
import pytest
import yaml
from blind import photo_crops
from conftest import gradient, jpeg_bytes, read_rows
from PIL import Image

from ssl4rl_data.errors import SkipImage
from ssl4rl_data.images import sample_rng
from ssl4rl_data.rewards import accuracy_reward
from ssl4rl_data.tasks.context import DIRECTIONS, Context, ContextConfig, project_chroma
from ssl4rl_data.tasks.flip import Flip, FlipConfig
from ssl4rl_data.tasks.inpaint import GREY, Inpaint, InpaintConfig


def samples(task, image, count, key="img"):
    return [task.make(image, sample_rng(seed, task.name, key)) for seed in range(count)]


def find_on_grid(source: np.ndarray, patch: np.ndarray, step: int = 16) -> list[tuple[int, int]]:
    """Every (x, y) on the `step` grid where `patch` equals the window of `source` exactly."""
    h, w = patch.shape[:2]
    return [
        (x, y)
        for y in range(0, source.shape[0] - h + 1, step)
        for x in range(0, source.shape[1] - w + 1, step)
        if np.array_equal(source[y, x], patch[0, 0]) and np.array_equal(source[y : y + h, x : x + w], patch)
    ]


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
        falling = [
            r * cols + c + 1
            for r in range(rows)
            for c in range(cols)
            if picture[r * cell_h : (r + 1) * cell_h, c * cell_w + cell_w - 1, 0].mean()
            < picture[r * cell_h : (r + 1) * cell_h, c * cell_w, 0].mean()
        ]
        assert falling == [int(sample.answer)]
        # Mirroring the answered cell back restores a window of the source exactly, on the 16 px grid.
        cell = int(sample.answer) - 1
        restored = picture.copy()
        top, left = cell // cols * cell_h, cell % cols * cell_w
        restored[top : top + cell_h, left : left + cell_w] = restored[top : top + cell_h, left : left + cell_w][
            :, ::-1
        ]
        assert find_on_grid(source, restored)
    assert len({s.answer for s in made}) > min(rows * cols, 40) // 2


def test_flip_never_chooses_a_cell_that_looks_the_same_mirrored():
    # Horizontal bands: every cell is its own mirror image, so no flip could be seen.
    bands = np.repeat((np.arange(288) // 24 % 2 * 200 + 20).astype(np.uint8)[:, None], 288, axis=1)
    with pytest.raises(SkipImage, match="no-asymmetric-cell"):
        Flip(FlipConfig()).make(Image.fromarray(bands).convert("RGB"), sample_rng(0, "flip", "x"))
    # The same bands with a left-to-right ramp in cell 6 only: the only cell a flip can be seen in.
    picture = np.stack([bands] * 3, axis=2)
    picture[96:192, 192:288, 0] = np.linspace(0, 255, 96).astype(np.uint8)[None, :]
    made = samples(Flip(FlipConfig()), Image.fromarray(picture), 20)
    assert {s.answer for s in made} == {"6"}


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
        Context(ContextConfig()).make(Image.new("RGB", (400, 300), (70, 90, 110)), sample_rng(0, "context", "x"))
    with pytest.raises(SkipImage, match="too-small"):
        Context(ContextConfig()).make(gradient(200, 150), sample_rng(0, "context", "x"))


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
        ((x0, y0),) = find_on_grid(source, picture[ry : ry + cell_h, rx : rx + cell_w])
        x0, y0 = x0 - rx, y0 - ry
        assert np.array_equal(picture[~grey], source[y0 : y0 + picture.shape[0], x0 : x0 + picture.shape[1]][~grey])
        truth = source[y0 + hole[0] : y0 + hole[0] + cell_h, x0 + hole[1] : x0 + hole[1] + cell_w]
        # Candidates are recoloured (one affine map per channel): the answer is the grey cell's content
        # up to such a map, and no other candidate is.
        residuals = [affine_residual(truth, patch) for patch in patches]
        assert [k + 1 for k, r in enumerate(residuals) if r < 1.0] == [int(sample.answer)]
        assert sorted(residuals)[1] > 3
        untouched += sum(np.array_equal(patch, truth) for patch in patches)
        # Every candidate is absent from the picture shown: none can be struck out by finding it there.
        for patch in patches:
            windows = [
                picture[y : y + cell_h, x : x + cell_w]
                for y in range(0, picture.shape[0] - cell_h + 1, 16)
                for x in range(0, picture.shape[1] - cell_w + 1, 16)
            ]
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
        Inpaint(InpaintConfig()).make(Image.new("RGB", (400, 400), (10, 200, 30)), sample_rng(0, "inpaint", "x"))
    with pytest.raises(SkipImage, match="too-small"):
        Inpaint(InpaintConfig()).make(gradient(120, 120), sample_rng(0, "inpaint", "x"))


# every new task: rewards, determinism, bad input, recipes


@pytest.mark.parametrize(
    "task,truth,right,wrong",
    [
        ("flip", "5", [" 5 ", "5"], ["05", "5.", "cell 5", "6", "5,6"]),
        ("context", "top-right", ["Top-Right", " top-right "], ["top right", "right", "top-left", "topright"]),
        ("inpaint", "3", ["3", " 3"], ["03", "3rd", "candidate 3", "4", "3,1"]),
    ],
)
def test_rewards_are_strict(task, truth, right, wrong):
    wrap = "<think>x</think> <answer>{}</answer>".format
    for predictions, reward in ((right, 1.0), (wrong, 0.0)):
        count = len(predictions)
        rewards = accuracy_reward([wrap(p) for p in predictions], answer=[truth] * count, task=[task] * count)
        assert rewards == [reward] * count


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
        code, err = run_cli(
            "build", task, "--source", f"folder:{larger_photos}", "--num-proc", procs, "--out", tmp_path / name, "-q"
        )
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


@pytest.mark.parametrize(
    "args,message",
    [
        (["flip", "--grid", "7"], "--grid sides must be between 2 and 6"),
        (["inpaint", "--candidates", "7"], "--candidates must be between 2 and 5"),
        (["inpaint", "--grid", "x"], "--grid must be N or RxC"),
        (["context", "--chroma", "sepia"], "--chroma must be one of"),
        (["context", "--jitter", "0.5", "--gap", "0.5"], "need 0 <= --jitter < --gap"),
        (["context", "--gap", "0"], "--gap must be in (0, 2]"),
    ],
)
def test_user_mistakes_get_one_line(tmp_path, run_cli, args, message):
    code, err = run_cli("build", *args, "--out", tmp_path / "d")
    assert code != 0 and message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "d").exists()
