"""Contrastive: are two augmented views from the same image (positive) or two different ones (negative)?"""

from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from ..registry import register_task
from ..task import ANSWER_FORMAT, Sample, Task

STRENGTHS = ("default", "strong")


@dataclass
class ContrastiveConfig:
    strength: str = field(
        default="default",
        metadata={"help": "SimCLR augmentations: 'default' (crop scale 0.08-1) or 'strong' (crop scale 0.08-0.3, "
                  "most augmentations at p=0.8)."},
    )
    size: int = field(default=224, metadata={"help": "Side of each square view in pixels."})

    def __post_init__(self):
        if self.strength not in STRENGTHS:
            raise ValueError(f"--strength must be one of {', '.join(STRENGTHS)}, got {self.strength!r}")
        if self.size < 28:
            raise ValueError(f"--size must be at least 28 pixels, got {self.size}")


def simclr_augmentations(strength: str, size: int):
    """The SimCLR view pipeline (method.md), as one albumentations Compose."""
    import albumentations as A

    strong = strength == "strong"
    return A.Compose(
        [
            A.RandomResizedCrop((size, size), scale=(0.08, 0.3) if strong else (0.08, 1.0)),
            A.HorizontalFlip(p=0.5),
            A.ColorJitter(brightness=0.8, contrast=0.8, saturation=0.8, hue=0.2, p=0.8),
            A.ToGray(p=0.8 if strong else 0.2),
            A.GaussianBlur(sigma_limit=(0.1, 2.0), p=0.8 if strong else 0.5),
        ],
        strict=True,
    )


@register_task("contrastive")
class Contrastive(Task):
    Config = ContrastiveConfig

    def __init__(self, config):
        super().__init__(config)
        # Built (and albumentations imported) here, once, before the build forks its workers.
        self._augment = simclr_augmentations(config.strength, config.size)

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

    def _view(self, image: Image.Image, rng: np.random.Generator) -> Image.Image:
        self._augment.set_random_seed(int(rng.integers(2**31)))
        return Image.fromarray(self._augment(image=np.asarray(image))["image"])
