"""albumentations on Pillow images, without copying whole pictures into arrays first."""

import os
import random
import sys

import numpy as np
import pyarrow as pa
from PIL import Image


def albumentations():
    """The albumentations module, with OpenCV held to one thread: builds run one process per core, and
    OpenCV's own threads would only compete with them. Its import-time update check (a request to
    PyPI) is turned off: builds run offline and must not wait on the network."""
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    if "albumentations" not in sys.modules and "torch" not in sys.modules:
        # albumentations imports torch only for its optional ToTensor (and skips it on ImportError):
        # 1.4 s per build that a data build does not need.
        sys.modules["torch"] = None
        try:
            import albumentations
        finally:
            del sys.modules["torch"]
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


def drop_pad(rgbx: np.ndarray) -> np.ndarray:
    """(h, w, 4) -> contiguous (h, w, 3). OpenCV copies at memory speed; numpy's `[..., :3]` copy of a
    224 x 224 view takes 60 times as long."""
    import cv2  # here, not at import time: only augmenting tasks pay for OpenCV

    return cv2.cvtColor(rgbx, cv2.COLOR_RGBA2RGB)


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
        values = pa.Array._import_from_c_capsule(*image.__arrow_c_array__()).values
    except ValueError:  # rows not contiguous (a very large image)
        return np.asarray(image.convert("RGBX"))
    # From the buffer itself: `to_numpy` would import pandas (a quarter of a second in every worker).
    pixels = np.frombuffer(values.buffers()[1], dtype=np.uint8, count=len(values), offset=values.offset)
    return pixels.reshape(image.height, image.width, 4)
