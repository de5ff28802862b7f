"""Position: the second image is a crop of one quadrant of the first; answer which quadrant."""

from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from ..augment import albumentations, seed_pipeline
from ..errors import SkipImage
from ..images import aligned_crop_box, crop
from ..registry import register_task
from ..task import ANSWER_FORMAT, Sample, Task

QUADRANTS = ("top-left", "top-right", "bottom-left", "bottom-right")
MIN_CROP = 28  # the reference skips crops under 28 px (one Qwen2.5-VL patch)


@dataclass
class PositionConfig:
    crop_min: float = field(
        default=0.2,
        metadata={"help": "Smallest crop side, as a fraction of the quadrant side (raised where it would be under 28 px)."},
    )
    crop_max: float = field(default=0.8, metadata={"help": "Largest crop side, as a fraction of the quadrant side."})
    augment_crop: bool = field(
        default=False,
        metadata={"help": "Jitter the crop's colours (and sometimes grey it); the prompt then says so."},
    )

    def __post_init__(self):
        if not 0 < self.crop_min <= self.crop_max <= 1:
            raise ValueError(
                f"need 0 < --crop-min <= --crop-max <= 1, got {self.crop_min} and {self.crop_max}"
            )


def colour_jitter():
    A = albumentations()
    return A.Compose([A.ColorJitter(0.4, 0.4, 0.4, 0.1, p=0.8), A.ToGray(p=0.2)], strict=True)


@register_task("position")
class Position(Task):
    Config = PositionConfig

    def __init__(self, config):
        super().__init__(config)
        self._augment = colour_jitter() if config.augment_crop else None  # built before workers fork

    def make(self, image, rng, other_image):
        # Even, 32-aligned sides make the four quadrants exactly equal, so crop size says nothing.
        width, height = image.width // 32 * 32, image.height // 32 * 32
        quadrant_w, quadrant_h = width // 2, height // 2
        # On small images the smallest crops would fall under one patch: draw from the usable range only.
        low = max(self.config.crop_min, MIN_CROP / max(1, min(quadrant_w, quadrant_h)))
        if low > self.config.crop_max:
            raise SkipImage("too-small")
        image = crop(image, aligned_crop_box(image.size, width, height))
        quadrant = int(rng.integers(len(QUADRANTS)))
        ratio = float(rng.uniform(low, self.config.crop_max))
        crop_w, crop_h = round(ratio * quadrant_w), round(ratio * quadrant_h)
        left = (quadrant % 2) * quadrant_w + int(rng.integers(quadrant_w - crop_w + 1))
        top = (quadrant // 2) * quadrant_h + int(rng.integers(quadrant_h - crop_h + 1))
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

    def _jitter(self, patch: Image.Image, rng: np.random.Generator) -> Image.Image:
        seed_pipeline(self._augment, rng)
        return Image.fromarray(self._augment(image=np.asarray(patch))["image"])
