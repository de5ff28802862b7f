"""Position: the second image is a crop of one quadrant of the first; answer which quadrant."""

from dataclasses import dataclass, field

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from PIL import Image

from ..augment import albumentations, seed_pipeline
from ..errors import SkipImage
from ..images import aligned_crop_box, crop
from ..registry import register_task
from ..task import ANSWER_FORMAT, Sample, Task

QUADRANTS = ("top-left", "top-right", "bottom-left", "bottom-right")
MIN_CROP = 28  # the reference skips crops under 28 px (one Qwen2.5-VL patch)
# A crop is kept only if every window of every other quadrant differs from it by at least this mean
# absolute difference (0..255) of box-averaged thumbnails (jigsaw's look-alike unit): 1.5 times the
# largest change a JPEG q95 round trip made to such thumbnails of photo crops (1.9; 99th percentile
# 1.1). Measured on 456 photo crops: every kept row's own quadrant then matches at full resolution at
# least 3 grey levels (RMS) better than any other, and 3% of pictures are skipped (2.0: 1.1% skipped,
# smallest gap 1.4; 4.0: 6.4% skipped, low-contrast microscopy mostly).
MIN_MATCH_MARGIN = 3.0
CROP_TRIES = 4  # crops drawn in the chosen quadrant before the picture is skipped as ambiguous
MATCH_CELLS = 24  # thumbnails of at least this many cells along a quadrant's longer side


@dataclass
class PositionConfig:
    crop_min: float = field(
        default=0.2,
        metadata={
            "help": "Smallest crop side, as a fraction of the quadrant side (raised where it would be under 28 px)."
        },
    )
    crop_max: float = field(default=0.8, metadata={"help": "Largest crop side, as a fraction of the quadrant side."})
    augment_crop: bool = field(
        default=False,
        metadata={"help": "Jitter the crop's colours (and sometimes grey it); the prompt then says so."},
    )

    def __post_init__(self):
        if not 0 < self.crop_min <= self.crop_max <= 1:
            raise ValueError(f"need 0 < --crop-min <= --crop-max <= 1, got {self.crop_min} and {self.crop_max}")


def colour_jitter():
    A = albumentations()
    return A.Compose([A.ColorJitter(0.4, 0.4, 0.4, 0.1, p=0.8), A.ToGray(p=0.2)], strict=True)


@register_task("position")
class Position(Task):
    Config = PositionConfig

    def __init__(self, config):
        super().__init__(config)
        self._augment = colour_jitter() if config.augment_crop else None  # built before workers fork

    def make(self, image, rng):
        # Even, 32-aligned sides make the four quadrants exactly equal, so crop size says nothing.
        width, height = image.width // 32 * 32, image.height // 32 * 32
        quadrant_w, quadrant_h = width // 2, height // 2
        # On small images the smallest crops would fall under one patch: draw from the usable range only.
        low = max(self.config.crop_min, MIN_CROP / max(1, min(quadrant_w, quadrant_h)))
        if low > self.config.crop_max:
            raise SkipImage("too-small")
        image = crop(image, aligned_crop_box(image.size, width, height))
        quadrant = int(rng.integers(len(QUADRANTS)))
        matcher = QuadrantMatcher(image, quadrant_w, quadrant_h)
        for _ in range(CROP_TRIES):
            # The quadrant stays: only the crop is drawn again, so a picture's answer stays uniform.
            ratio = float(rng.uniform(low, self.config.crop_max))
            crop_w, crop_h = round(ratio * quadrant_w), round(ratio * quadrant_h)
            left = (quadrant % 2) * quadrant_w + int(rng.integers(quadrant_w - crop_w + 1))
            top = (quadrant // 2) * quadrant_h + int(rng.integers(quadrant_h - crop_h + 1))
            if matcher.margin(quadrant, left, top, crop_w, crop_h) >= MIN_MATCH_MARGIN:
                break
        else:
            raise SkipImage("ambiguous-crop")  # sky or wall that another quadrant holds as well
        patch = image.crop((left, top, left + crop_w, top + crop_h))
        if self.config.augment_crop:
            patch = self._jitter(patch, rng)
        altered = " Its colours may have been altered." if self.config.augment_crop else ""
        question = (
            "The second image is a crop taken from one quarter of the first image." + altered + " Which "
            "quarter of the first image does it come from? Answer with one of: top-left, top-right, "
            "bottom-left, bottom-right. " + ANSWER_FORMAT.format(example="top-right")
        )
        return Sample(images=[image, patch], question=question, answer=QUADRANTS[quadrant])

    def baseline(self):
        jitter = (
            " on unaltered crops; colour jitter makes exact matching fail, so the figure is an upper bound"
            if self.config.augment_crop
            else ""
        )
        return (
            "pixel matching (find the crop in each quadrant) answers 100% of rows (issue 21 audit; 100% of 442 "
            "rows from photo crops in tests/test_validity.py)" + jitter + ": the task measures exact visual comparison"
        )

    def _jitter(self, patch: Image.Image, rng: np.random.Generator) -> Image.Image:
        seed_pipeline(self._augment, rng)
        return Image.fromarray(self._augment(image=np.asarray(patch))["image"])


class QuadrantMatcher:
    """How clearly a crop matches its own quadrant better than any other: the smallest mean absolute
    difference between the crop and any equal window lying wholly inside another quadrant, on
    box-averaged thumbnails. The crop's thumbnail is taken on its quadrant's cell grid (the crop
    trimmed inwards to whole cells), so it matches its own place exactly and only look-alikes elsewhere
    count. A few milliseconds a picture."""

    def __init__(self, image: Image.Image, quadrant_w: int, quadrant_h: int):
        self.image, self.quadrant_w, self.quadrant_h = image, quadrant_w, quadrant_h
        self._thumbs = {}

    def thumbs(self, cell: int) -> list[np.ndarray]:
        if cell not in self._thumbs:
            w, h = self.quadrant_w, self.quadrant_h
            boxes = [((q % 2) * w, (q // 2) * h, (q % 2 + 1) * w, (q // 2 + 1) * h) for q in range(4)]
            self._thumbs[cell] = [np.asarray(self.image.reduce(cell, box=box), np.float32) for box in boxes]
        return self._thumbs[cell]

    def margin(self, quadrant: int, left: int, top: int, width: int, height: int) -> float:
        # Cells of a power-of-two side: at least 4 across the crop, thumbnails about MATCH_CELLS long.
        limit = max(1, min(min(width, height) // 4, max(self.quadrant_w, self.quadrant_h) // MATCH_CELLS))
        cell = 1 << (limit.bit_length() - 1)
        thumbs = self.thumbs(cell)
        x0, y0 = left - (quadrant % 2) * self.quadrant_w, top - (quadrant // 2) * self.quadrant_h
        x1, y1 = -(-x0 // cell), -(-y0 // cell)
        x2, y2 = (x0 + width) // cell, (y0 + height) // cell
        patch = thumbs[quadrant][y1:y2, x1:x2].transpose(2, 0, 1)
        best = np.inf
        for other, thumb in enumerate(thumbs):
            if other != quadrant:
                windows = sliding_window_view(thumb, patch.shape[1:], axis=(0, 1))
                best = min(best, float(np.abs(windows - patch).mean(axis=(2, 3, 4)).min()))
        return best
