"""Contrastive: are two augmented views from the same image (positive) or two different ones (negative)?"""

from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from ..augment import albumentations, drop_pad, rgbx_pixels, seed_pipeline
from ..registry import register_task
from ..task import ANSWER_FORMAT, Sample, Task

STRENGTHS = ("default", "strong")


@dataclass
class ContrastiveConfig:
    strength: str = field(
        default="default",
        metadata={
            "help": "SimCLR augmentations: 'default' (crop scale 0.08-1) or 'strong' (crop scale 0.08-0.3, "
            "most augmentations at p=0.8)."
        },
    )
    size: int = field(default=224, metadata={"help": "Side of each square view in pixels."})

    def __post_init__(self):
        if self.strength not in STRENGTHS:
            raise ValueError(f"--strength must be one of {', '.join(STRENGTHS)}, got {self.strength!r}")
        if self.size < 28:
            raise ValueError(f"--size must be at least 28 pixels, got {self.size}")


NO_SHARED_PIXELS = {"default": "5%", "strong": "22%"}  # of positives (issue 21 audit)


class SimCLRView:
    """The SimCLR view pipeline (method.md): random resized crop, flip, colour jitter, grey, blur.

    The crop reads a zero-copy view of the decoded picture, so only the cropped pixels are touched;
    the photometric steps then run on the small view alone.
    """

    def __init__(self, strength: str, size: int):
        A = albumentations()
        strong = strength == "strong"
        self.crop = A.Compose(
            [A.RandomResizedCrop((size, size), scale=(0.08, 0.3) if strong else (0.08, 1.0))], strict=True
        )
        self.photometric = A.Compose(
            [
                A.HorizontalFlip(p=0.5),
                A.ColorJitter(brightness=0.8, contrast=0.8, saturation=0.8, hue=0.2, p=0.8),
                A.ToGray(p=0.8 if strong else 0.2),
                A.GaussianBlur(sigma_limit=(0.1, 2.0), p=0.8 if strong else 0.5),
            ],
            strict=True,
        )

    def __call__(self, image: Image.Image, rng: np.random.Generator) -> Image.Image:
        seed_pipeline(self.crop, rng)
        view = drop_pad(self.crop(image=rgbx_pixels(image))["image"])
        seed_pipeline(self.photometric, rng)
        return Image.fromarray(self.photometric(image=view)["image"])


@register_task("contrastive")
class Contrastive(Task):
    Config = ContrastiveConfig
    pairs_pictures = True

    def __init__(self, config):
        super().__init__(config)
        # Built (and albumentations imported) here, once, before the build forks its workers.
        self._view = SimCLRView(config.strength, config.size)

    def baseline(self):
        return (
            "matching features or colours answers 57-62% of rows (issue 21 audit; chance 50%); "
            f"{NO_SHARED_PIXELS[self.config.strength]} of positives show two views that share no pixels"
        )

    def make(self, image, rng, other_image):
        positive = bool(rng.random() < 0.5)
        extra_ids = []
        if positive:
            second = image
        else:
            other_id, second = other_image(rng)
            extra_ids.append(other_id)
        question = (
            "Each of the two images is a randomly cropped, flipped, colour-changed or blurred view of a "
            "picture. Do both views come from the same original picture? Answer 'positive' if they do and "
            "'negative' if they come from two different pictures. " + ANSWER_FORMAT.format(example="negative")
        )
        return Sample(
            images=[self._view(image, rng), self._view(second, rng)],
            question=question,
            answer="positive" if positive else "negative",
            extra_source_ids=extra_ids,
        )
