"""Labels checked from pixels: undo each transform with its answer and compare with the source."""

from collections import Counter

import numpy as np
import pytest
from conftest import gradient, stripes
from PIL import Image

from ssl4rl_data.augment import albumentations, seed_pipeline
from ssl4rl_data.errors import SkipImage
from ssl4rl_data.images import sample_rng
from ssl4rl_data.tasks.contrastive import Contrastive, ContrastiveConfig
from ssl4rl_data.tasks.jigsaw import Jigsaw, JigsawConfig
from ssl4rl_data.tasks.position import QUADRANTS, Position, PositionConfig
from ssl4rl_data.tasks.rotation import Rotation, RotationConfig


def samples(task, image, count):
    return [task.make(image, sample_rng(seed, task.name, "img")) for seed in range(count)]


@pytest.mark.parametrize("size", [(301, 187), (187, 301), (64, 64), (480, 479)])
def test_rotation_answer_undoes_the_rotation_exactly(size):
    made = samples(Rotation(RotationConfig()), gradient(*size), 24)
    assert {s.answer for s in made} == {"0", "90", "180", "270"}
    for sample in made:
        original, rotated = (np.asarray(v) for v in sample.images)
        assert original.shape == rotated.shape and original.shape[0] == original.shape[1]
        k = int(sample.answer) // 90
        assert np.array_equal(np.rot90(rotated, k=-k), original)  # numpy's rot90 is counter-clockwise too
        others = [a for a in range(4) if a != k]
        assert all(not np.array_equal(np.rot90(rotated, k=-a), original) for a in others)


def test_rotation_fine_step_views_share_size_and_the_answer_is_the_best_inverse():
    task = Rotation(RotationConfig(step=45))
    image = gradient(320, 256)
    sizes = set()
    for sample in samples(task, image, 16):
        first, second = sample.images
        sizes.add((first.size, second.size))
        side = first.width
        yy, xx = np.mgrid[:side, :side] - (side - 1) / 2
        disc = xx**2 + yy**2 < (0.45 * side) ** 2  # inside every rotation of the square
        errors = {
            angle: np.abs(
                np.asarray(first.rotate(angle, Image.Resampling.BICUBIC), np.float32) - np.asarray(second, np.float32)
            )[disc].mean()
            for angle in task.angles
        }
        assert min(errors, key=errors.get) == int(sample.answer)
    assert len(sizes) == 1  # no size cue for any angle


def reassemble(tiles, answer, rows, cols):
    order = [int(n) - 1 for n in answer.split(",")]
    grid = [[np.asarray(tiles[order[r * cols + c]]) for c in range(cols)] for r in range(rows)]
    return np.concatenate([np.concatenate(row, axis=1) for row in grid], axis=0)


@pytest.mark.parametrize("grid,shape", [("2", (2, 2)), ("3", (3, 3)), ("2x3", (2, 3)), ("6", (6, 6))])
def test_jigsaw_answer_reassembles_the_picture(grid, shape):
    rows, cols = shape
    image = gradient(401, 397)
    made = samples(Jigsaw(JigsawConfig(grid=grid)), image, 12)
    for sample in made:
        assert len(sample.images) == rows * cols
        assert len({t.size for t in sample.images}) == 1  # equal tiles: no size cue
        assert all(t.width % 16 == 0 and t.height % 16 == 0 for t in sample.images)  # JPEG-block aligned
        restored = reassemble(sample.images, sample.answer, rows, cols)
        # The restored picture is a contiguous window of the source, so red rises along x and green along y.
        assert np.all(np.diff(restored[0, :, 0].astype(int)) >= 0)
        assert np.all(np.diff(restored[:, 0, 1].astype(int)) >= 0)
        height, width = restored.shape[:2]
        source = np.asarray(image)
        matches = [
            (l, t)
            for l in range(0, 401 - width + 1, 16)
            for t in range(0, 397 - height + 1, 16)
            if np.array_equal(source[t : t + height, l : l + width], restored)
        ]
        assert matches
        # The picture's own border (smoothed by resizing) is in no tile.
        assert all(0 < l and l + width < 401 and 0 < t and t + height < 397 for l, t in matches)
    assert len({s.answer for s in made}) > 6


def test_jigsaw_skips_pictures_with_lookalike_tiles():
    flat = Image.new("RGB", (256, 256), (90, 140, 200))
    with pytest.raises(SkipImage, match="lookalike-tiles"):
        Jigsaw(JigsawConfig()).make(flat, sample_rng(0, "jigsaw", "x"))
    half = np.zeros((256, 256, 3), np.uint8)
    half[:128] = 255  # top two tiles alike, bottom two alike: more than one answer would be right
    with pytest.raises(SkipImage, match="lookalike-tiles"):
        Jigsaw(JigsawConfig()).make(Image.fromarray(half), sample_rng(0, "jigsaw", "x"))


@pytest.mark.parametrize("augment", [False, True])
def test_position_crop_lies_in_the_answered_quadrant(augment):
    image = gradient(481, 363)
    task = Position(PositionConfig(augment_crop=augment))
    made = samples(task, image, 40)
    assert {s.answer for s in made} == set(QUADRANTS)
    for sample in made:
        full, crop = (np.asarray(v, dtype=np.float32) for v in sample.images)
        height, width = full.shape[:2]
        if not augment:
            # Find the crop in the full image by its gradient colours, then check the quadrant.
            guess_left = int(np.argmin(np.abs(full[0, :, 0] - crop[0, 0, 0])))
            guess_top = int(np.argmin(np.abs(full[:, 0, 1] - crop[0, 0, 1])))
            top, left = next(
                (t, l)
                for t in range(max(0, guess_top - 4), guess_top + 5)
                for l in range(max(0, guess_left - 4), guess_left + 5)
                if np.array_equal(full[t : t + crop.shape[0], l : l + crop.shape[1]], crop)
            )
            right, bottom = left + crop.shape[1], top + crop.shape[0]
            found = ("bottom" if top >= height // 2 else "top") + "-" + ("right" if left >= width // 2 else "left")
            assert bottom <= (height if top >= height // 2 else height // 2)
            assert right <= (width if left >= width // 2 else width // 2)
            assert found == sample.answer
        ratio = crop.shape[1] / (width // 2)
        assert 0.2 - 0.01 <= ratio <= 0.8 + 0.01
        assert ("altered" in sample.question) == augment


def orientation(view: Image.Image) -> str:
    plane = np.asarray(view.convert("L"), dtype=np.float32)
    across = np.abs(np.diff(plane, axis=1)).mean()
    down = np.abs(np.diff(plane, axis=0)).mean()
    return "vertical" if across > down else "horizontal"


@pytest.mark.parametrize("strength", ["default", "strong"])
def test_contrastive_views_come_from_the_answered_images(strength):
    horizontal, vertical = stripes(448, vertical=False), stripes(448, vertical=True)
    task = Contrastive(ContrastiveConfig(strength=strength))
    answers = Counter()
    for seed in range(120):
        made = task.make(horizontal, sample_rng(seed, "contrastive", "h"), lambda rng: ("v", vertical))
        answers[made.answer] += 1
        first, second = (orientation(v) for v in made.images)
        assert first == "horizontal"
        assert second == ("horizontal" if made.answer == "positive" else "vertical")
        assert made.extra_source_ids == ([] if made.answer == "positive" else ["v"])
        assert all(v.size == (224, 224) for v in made.images)
    assert 40 <= answers["positive"] <= 80  # about half and half


def test_same_key_same_sample_and_seed_changes_answers():
    image = gradient(300, 200)
    task = Jigsaw(JigsawConfig(grid="3"))
    first = task.make(image, sample_rng(0, "jigsaw", "a"))
    again = task.make(image, sample_rng(0, "jigsaw", "a"))
    assert first.answer == again.answer
    assert [t.tobytes() for t in first.images] == [t.tobytes() for t in again.images]
    answers = {task.make(image, sample_rng(seed, "jigsaw", "a")).answer for seed in range(8)}
    assert len(answers) > 1


def test_images_too_small_for_the_task_are_skipped():
    tiny = gradient(40, 30)
    for task in (Rotation(RotationConfig()), Jigsaw(JigsawConfig()), Position(PositionConfig())):
        with pytest.raises(SkipImage, match="too-small"):
            task.make(tiny, sample_rng(0, task.name, "t"))


def test_augmentation_steps_flip_their_own_coins():
    """Per-sample seeding must leave each step's 'apply or not' independent of the others' (seeding every
    step with one number, as albumentations' set_random_seed does, makes them all coincide)."""
    A = albumentations()
    applied = []

    class Record(A.ImageOnlyTransform):
        def __init__(self, name, p):
            super().__init__(p=p)
            self.name = name

        def apply(self, img, **params):
            applied.append(self.name)
            return img

    probabilities = {"flip": 0.5, "jitter": 0.8, "grey": 0.2, "blur": 0.5}
    pipeline = A.Compose([Record(name, p) for name, p in probabilities.items()], strict=True)
    image, combinations, count = np.zeros((4, 4, 3), np.uint8), Counter(), 4000
    for seed in range(count):
        applied.clear()
        seed_pipeline(pipeline, sample_rng(seed, "contrastive", "x"))
        pipeline(image=image)
        combinations[frozenset(applied)] += 1
    assert len(combinations) == 16  # every subset of the four steps occurs
    for first in probabilities:
        for second in probabilities:
            if first < second:
                both = sum(n for subset, n in combinations.items() if {first, second} <= subset) / count
                assert abs(both - probabilities[first] * probabilities[second]) < 0.03


def test_position_skips_pictures_whose_crops_another_quadrant_holds_too():
    flat = Image.new("RGB", (256, 256), (90, 140, 200))
    with pytest.raises(SkipImage, match="ambiguous-crop"):
        Position(PositionConfig()).make(flat, sample_rng(0, "position", "x"))
    sky = np.asarray(gradient(256, 256)).copy()
    sky[:128] = (120, 170, 230)  # the top half is one colour: a crop there could come from either top quadrant
    tops = Counter()
    for seed in range(40):
        try:
            tops[Position(PositionConfig()).make(Image.fromarray(sky), sample_rng(seed, "position", "s")).answer] += 1
        except SkipImage as skip:
            tops[skip.reason] += 1
    assert tops["top-left"] == tops["top-right"] == 0 and tops["ambiguous-crop"] > 0
    assert tops["bottom-left"] > 0 and tops["bottom-right"] > 0


def test_variants_of_a_task_draw_independently():
    """The sample key holds the task's parameters: a default and a strong contrastive build pair other
    partners, and a jigsaw grid spelt two ways is one task."""
    default, strong = Contrastive(ContrastiveConfig()), Contrastive(ContrastiveConfig(strength="strong"))
    assert default.sample_key() != strong.sample_key()
    answers = [
        [int(sample_rng(seed, task.sample_key(), "img").random() < 0.5) for seed in range(64)]
        for task in (default, strong)
    ]
    assert answers[0] != answers[1]
    assert Position(PositionConfig()).sample_key() != Position(PositionConfig(augment_crop=True)).sample_key()
    assert Jigsaw(JigsawConfig(grid="3x3")).sample_key() == Jigsaw(JigsawConfig(grid="3")).sample_key()
    assert JigsawConfig(grid="2X3").grid == "2x3"


def test_rotation_fine_step_rotates_about_the_exact_centre():
    """Issue 21: the centre was off by half a pixel, so 90/180/270 views came out shifted by 1 px. Now a
    multiple of 90 between the two (tilted) views is an exact re-ordering of the pixels."""
    task, image, seen = Rotation(RotationConfig(step=45)), gradient(320, 256), set()
    for seed in range(24):
        sample = task.make(image, sample_rng(seed, "rotation", "c"))
        angle = int(sample.answer)
        if angle % 90 == 0:
            first, second = (np.asarray(view, dtype=np.int16) for view in sample.images)
            assert np.abs(np.rot90(second, k=-(angle // 90)) - first).max() <= 1
            seen.add(angle)
    assert len(seen) >= 3
