"""Rotation: the second image is the first rotated counter-clockwise; answer the angle in degrees."""

import math
from dataclasses import dataclass, field

from PIL import Image

from ..errors import SkipImage
from ..images import aligned_crop_box, crop
from ..registry import register_task
from ..task import ANSWER_FORMAT, Sample, Task

MIN_SIDE = 32


@dataclass
class RotationConfig:
    step: int = field(
        default=90,
        metadata={
            "help": "Angle step in degrees; the answers are the multiples of STEP below 360. 90 is lossless; "
            "finer steps resample and crop every view the same way, whatever the angle."
        },
    )

    def __post_init__(self):
        if not 0 < self.step < 360 or 360 % self.step:
            raise ValueError(f"--step must divide 360 (e.g. 90, 45, 30), got {self.step}")


@register_task("rotation")
class Rotation(Task):
    Config = RotationConfig

    @property
    def angles(self) -> list[int]:
        return list(range(0, 360, self.config.step))

    def make(self, image, rng):
        angle = int(rng.choice(self.angles))
        # A square, so width and height never tell a 90/270 rotation apart; on the 16 px grid, so
        # JPEG block seams land on the same grid after rotating.
        side = min(image.size) // 16 * 16
        if side < MIN_SIDE:
            raise SkipImage("too-small")
        square = crop(image, aligned_crop_box(image.size, side, side))
        if self.config.step % 90 == 0:
            views = [square, square.transpose(_TRANSPOSE[angle]) if angle else square]
        else:
            inner = int(side / math.sqrt(2)) // 16 * 16
            if inner < MIN_SIDE:
                raise SkipImage("too-small")
            base = base_angle(self.config.step, rng)
            views = [_rotate_inner(square, base, inner), _rotate_inner(square, base + angle, inner)]
        angle_list = ", ".join(map(str, self.angles))
        question = (
            "The first image is a picture. The second image is the same picture rotated "
            f"counter-clockwise by one of these angles: {angle_list} degrees. By how many degrees "
            "counter-clockwise was the second image rotated relative to the first? Answer with the number only. "
            + ANSWER_FORMAT.format(example=self.angles[1])
        )
        return Sample(images=views, question=question, answer=str(angle))

    def baseline(self):
        how = (
            "the second view is an exact 90-degree re-ordering of the first's pixels"
            if self.config.step % 90 == 0
            else "rotate the first view by each allowed angle and keep the closest"
        )
        return (
            f"pixel matching answers 100% of rows ({how}; issue 21 audit): the task measures exact visual comparison"
        )

    @staticmethod
    def score(prediction: str, truth: str) -> float:
        """1.0 for the right angle, else 0.0. Case, surrounding spaces and a trailing degree sign are ignored.

        >>> [Rotation.score(p, "90") for p in ["90", " 90 ", "90°", "90 °", "090", "90 degrees", "-270"]]
        [1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0]
        """
        text = prediction.strip()
        return Task.score(text[:-1] if text.endswith("°") else text, truth)


_TRANSPOSE = {
    90: Image.Transpose.ROTATE_90,  # Pillow's ROTATE_90 is counter-clockwise
    180: Image.Transpose.ROTATE_180,
    270: Image.Transpose.ROTATE_270,
}


def base_angle(step: int, rng) -> float:
    """The angle of the first view under a fine step: a tilt of 20-50% of g = gcd(step, 90) degrees
    either way, so every view angle (base + a multiple of step) sits 20-80% of g away from the
    multiples of 90.

    Resampling blurs a view by an amount that depends on where the samples fall between pixels. At a
    multiple of 90 they fall all in one place (no blur at 0, a strong one at a half-pixel offset); at
    other angles they spread over every offset and the blur averages out to the same amount. When
    the first view was the only one at a multiple of 90, sharpness told odd multiples of 45 from the
    rest (AUC 0.98, tests/test_validity.py); with both views tilted it does not (AUC about 0.5).

    >>> import numpy as np
    >>> sorted({round(abs(base_angle(45, np.random.default_rng(s))) // 9) for s in range(200)})
    [1, 2]
    """
    g = math.gcd(step, 90)
    tilt = float(rng.uniform(0.2 * g, 0.5 * g))
    return tilt if rng.random() < 0.5 else -tilt


def _rotate_inner(square: Image.Image, angle: float, inner: int) -> Image.Image:
    """Rotate `square` counter-clockwise by `angle` about its centre and keep the centred `inner` square.

    `inner` <= side/sqrt(2) lies inside the rotated content for every angle, so no corner is ever
    filled. Pillow samples output pixel (x, y) at its centre (x + 0.5, y + 0.5), so the centres here
    are side/2 and inner/2 exactly: a rotation by 90 moves no pixel off the grid.
    """
    radians = math.radians(angle)
    cos, sin = math.cos(radians), math.sin(radians)
    centre_in, centre_out = square.width / 2, inner / 2
    # Output point p samples the input at R(-angle) (p - c_out) + c_in (y axis points down).
    a, b, d, e = cos, -sin, sin, cos
    c = centre_in - a * centre_out - b * centre_out
    f = centre_in - d * centre_out - e * centre_out
    return square.transform((inner, inner), Image.Transform.AFFINE, (a, b, c, d, e, f), Image.Resampling.BICUBIC)
