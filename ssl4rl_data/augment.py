"""albumentations on Pillow images, without copying whole pictures into arrays first."""

import random

import numpy as np
import pyarrow as pa
from PIL import Image


def albumentations():
    """The albumentations module, with OpenCV held to one thread: builds run one process per core, and
    OpenCV's own threads would only compete with them."""
    import albumentations
    import cv2

    cv2.setNumThreads(1)
    return albumentations


def seed_pipeline(pipeline, rng: np.random.Generator):
    """Give an albumentations pipeline its randomness for one sample, from the sample's own generator.

    Not `set_random_seed`: that seeds every step with the same number, so the steps' coin flips all
    come out alike (a p=0.5 flip would always come with a p=0.5 blur). Shared generators make each
    step draw in turn, independently; numpy draws come from `rng` itself.
    """
    pipeline.set_random_state(rng, random.Random(int(rng.integers(2**63))))


def rgbx_pixels(image: Image.Image) -> np.ndarray:
    """A read-only (height, width, 4) uint8 view of an RGB image: Pillow keeps RGB as R, G, B, pad,
    and hands that memory over through the Arrow C interface. Crops of the view are free, where
    `np.asarray(image)` would copy every pixel. Falls back to a copy for images Pillow stores in
    several blocks.

    >>> view = rgbx_pixels(Image.new("RGB", (3, 2), (10, 20, 30)))
    >>> view.shape, view[1, 2, :3].tolist()
    ((2, 3, 4), [10, 20, 30])
    """
    if image.mode != "RGB":
        raise ValueError(f"expected an RGB image, got {image.mode}")
    try:
        values = pa.array(image).values.to_numpy(zero_copy_only=True)
    except ValueError:  # rows not contiguous (a very large image)
        return np.asarray(image.convert("RGBX"))
    return values.reshape(image.height, image.width, 4)
