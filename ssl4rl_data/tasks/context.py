"""Context (Doersch et al. 2015): the second patch comes from one of the 8 places around the first; answer where.

Boundary continuation, the first shortcut Doersch et al. found (lines and textures running straight
from one patch into the next): the patches never touch. A gap (--gap, half a patch side by default,
as their 48 px for 96 px patches) lies between them, and the second patch is jittered off its grid
place (--jitter) along both axes, so edges do not line up across the gap. Along the step the jitter
only narrows the gap, never below 16 px, the same way for every direction, so the layout needs no
room beyond the 3 x 3 grid: pictures down to 160 px still give 32 px patches.

Chromatic aberration, the second (lenses displace green against red and blue by an amount that grows
towards the frame's edges, so colour fringes tell a patch's place in the frame): by default both
patches have the green-magenta colour axis projected out, their fix; --chroma grey greys them, and
--chroma keep keeps the colours.

The first patch's place is drawn among those that leave room for all eight neighbours, so it says
nothing about the direction (a patch near the top of the frame does not predict 'bottom').
"""

from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from ..errors import SkipImage
from ..registry import register_task
from ..task import ANSWER_FORMAT, Sample, Task

# (dx, dy) of the second patch's place relative to the first, in the answers' order.
DIRECTIONS = {
    "top-left": (-1, -1),
    "top": (0, -1),
    "top-right": (1, -1),
    "left": (-1, 0),
    "right": (1, 0),
    "bottom-left": (-1, 1),
    "bottom": (0, 1),
    "bottom-right": (1, 1),
}
CHROMA = ("project", "grey", "keep")
MIN_PATCH = 32  # the reference skips pieces under 28 px; 32 is the next size on the 16 px grid
# A pair is redrawn (same direction, another place) when both patches are flat: the largest standard
# deviation of their 16x16 box-averaged grey thumbnails under this (0..255) leaves no content to place.
MIN_PATCH_STD = 4.0
PLACE_TRIES = 4


@dataclass
class ContextConfig:
    gap: float = field(
        default=0.5,
        metadata={
            "help": "Gap between neighbouring patches, as a fraction of the patch "
            "side (rounded to 16 px, at least 16 px)."
        },
    )
    jitter: float = field(
        default=0.125,
        metadata={
            "help": "Largest shift of the second patch off its grid place "
            "along "
            "each axis, as a fraction of the patch side (rounded to 16 px; "
            "0: none). Must stay under the gap."
        },
    )
    chroma: str = field(
        default="project",
        metadata={
            "help": "Colour of both patches: 'project' (green-magenta axis "
            "removed, against chromatic aberration), 'grey' or 'keep'."
        },
    )

    def __post_init__(self):
        if self.chroma not in CHROMA:
            raise ValueError(f"--chroma must be one of {', '.join(CHROMA)}, got {self.chroma!r}")
        if not 0 < self.gap <= 2:
            raise ValueError(f"--gap must be in (0, 2], got {self.gap}")
        if not 0 <= self.jitter < self.gap:
            raise ValueError(f"need 0 <= --jitter < --gap, got {self.jitter} and {self.gap}")


def layout(width: int, height: int, gap: float, jitter: float) -> tuple[int, int, int]:
    """(patch side, gap, jitter) in pixels, all multiples of 16, with the gap at least 16 px wider than
    the jitter (patches never touch), for the largest patch whose 3 x 3 layout fits.

    >>> layout(640, 480, 0.5, 0.125), layout(200, 160, 0.5, 0.125)
    ((112, 64, 16), (32, 32, 16))
    """

    def sizes(patch):
        g = max(16, round(gap * patch / 16) * 16)
        j = round(jitter * patch / 16) * 16 if jitter else 0
        j = max(16, j) if jitter else 0
        return patch, max(g, j + 16), j

    patch = int(min(width, height) / (3 + 2 * gap)) // 16 * 16
    while patch >= MIN_PATCH:
        patch, g, j = sizes(patch)
        if 3 * patch + 2 * g <= min(width, height):
            return patch, g, j
        patch -= 16
    raise SkipImage("too-small")


def project_chroma(patch: Image.Image) -> Image.Image:
    """Remove each pixel's component along the green-magenta axis (-1, 2, -1): Doersch et al.'s
    'projection'. Greys stay as they are; brightness and red-blue differences stay. Colours the
    projection would push out of 0..255 are pulled towards their grey instead of clipped, and the
    rounding keeps 2 green = red + blue exactly, so no trace of the green-magenta axis is left.

    >>> project_chroma(Image.new("RGB", (1, 1), (30, 210, 90))).getpixel((0, 0))
    (80, 110, 140)
    >>> noise = Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8))
    >>> pixels = np.asarray(project_chroma(noise), int)
    >>> bool(np.all(2 * pixels[..., 1] == pixels[..., 0] + pixels[..., 2]))
    True
    """
    pixels = np.asarray(patch, dtype=np.float32)
    grey = pixels.mean(axis=2)  # the projection moves along (1, -2, 1), which keeps this mean
    red_blue = (pixels[..., 0] - pixels[..., 2]) / 2  # what is left of the colour: (+d, 0, -d) about grey
    # Largest factor <= 1 keeping grey +- red_blue inside 0..255.
    room = np.minimum(grey, 255 - grey)
    magnitude = np.abs(red_blue)
    factor = np.divide(room, magnitude, out=np.ones_like(room), where=magnitude > room)
    green = np.rint(grey)
    shift = np.rint(red_blue * factor)
    shift = np.clip(shift, np.maximum(-green, green - 255), np.minimum(255 - green, green))
    out = np.stack([green + shift, green, green - shift], axis=2)
    return Image.fromarray(out.astype(np.uint8))


def _thumb_std(image: Image.Image, box: tuple[int, int, int, int]) -> float:
    side = box[2] - box[0]
    return float(np.asarray(image.reduce(side // 16, box=box).convert("L"), np.float32).std())


@register_task("context")
class Context(Task):
    Config = ContextConfig

    def make(self, image, rng):
        patch, gap, jitter = layout(image.width, image.height, self.config.gap, self.config.jitter)
        name = list(DIRECTIONS)[int(rng.integers(len(DIRECTIONS)))]  # all eight equally likely
        dx, dy = DIRECTIONS[name]
        pitch = patch + gap
        for _ in range(PLACE_TRIES):
            # The first patch leaves room for every neighbour: its place is independent of the answer.
            # Every corner is a multiple of 16 from the picture's origin (JPEG blocks in one phase).
            left = 16 * int(rng.integers(pitch // 16, (image.width - 2 * patch - gap) // 16 + 1))
            top = 16 * int(rng.integers(pitch // 16, (image.height - 2 * patch - gap) // 16 + 1))
            # Jitter: either way across the step, only towards the first patch along it.
            steps = jitter // 16
            shift_x, shift_y = (
                -d * 16 * int(rng.integers(steps + 1)) if d else 16 * int(rng.integers(-steps, steps + 1))
                for d in (dx, dy)
            )
            first = (left, top, left + patch, top + patch)
            x, y = left + dx * pitch + shift_x, top + dy * pitch + shift_y
            second = (x, y, x + patch, y + patch)
            if max(_thumb_std(image, first), _thumb_std(image, second)) >= MIN_PATCH_STD:
                break
        else:
            raise SkipImage("flat-patches")
        views = [image.crop(first), image.crop(second)]
        if self.config.chroma == "project":
            views = [project_chroma(v) for v in views]
        elif self.config.chroma == "grey":
            views = [v.convert("L").convert("RGB") for v in views]
        altered = {
            "project": " Their colours have been partly washed out.",
            "grey": " They are shown in grey.",
            "keep": "",
        }[self.config.chroma]
        question = (
            "The two images are two equal square patches cut from the same picture, with a gap between them."
            + altered
            + " The second patch comes from one of the eight places around the first one. Where "
            "does the second patch lie relative to the first? Answer with one of: top-left, top, top-right, "
            "left, right, bottom-left, bottom, bottom-right. " + ANSWER_FORMAT.format(example="bottom-left")
        )
        return Sample(images=views, question=question, answer=name)
