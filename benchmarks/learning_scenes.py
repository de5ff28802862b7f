"""The learning check's pictures and datasets: outdoor scenes drawn at random, built into rotation rows."""

from pathlib import Path

import numpy as np

IMAGE_SIDE = 128


def scene(rng: np.random.Generator, side: int = IMAGE_SIDE):
    """An outdoor scene drawn at random: a sky gradient above a ground gradient, a sun, clouds, trees."""
    from PIL import Image, ImageDraw, ImageFilter

    horizon = int(side * rng.uniform(0.35, 0.65))
    sky_top = rng.uniform([40, 90, 170], [120, 170, 255])
    sky_low = np.minimum(sky_top + rng.uniform(40, 110), 255)
    ground_top = rng.uniform([40, 70, 20], [140, 150, 80])
    ground_low = ground_top * rng.uniform(0.3, 0.6)
    pixels = np.zeros((side, side, 3))
    t = np.linspace(0, 1, horizon)[:, None, None]
    pixels[:horizon] = sky_top * (1 - t) + sky_low * t
    t = np.linspace(0, 1, side - horizon)[:, None, None]
    pixels[horizon:] = ground_top * (1 - t) + ground_low * t
    image = Image.fromarray(np.clip(pixels + rng.normal(0, 6, pixels.shape), 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)

    def colour(low, high):
        return tuple(int(v) for v in rng.uniform(low, high))

    if rng.random() < 0.7:  # sun or moon, in the sky
        r = rng.uniform(5, 14)
        x, y = rng.uniform(r, side - r), rng.uniform(r, max(r + 1, horizon - r))
        draw.ellipse([x - r, y - r, x + r, y + r], fill=colour([220, 200, 120], [255, 255, 220]))
    for _ in range(rng.integers(0, 5)):  # trees and buildings standing on the ground
        w, h = rng.uniform(4, 16), rng.uniform(8, 40)
        x, base = rng.uniform(0, side - w), rng.uniform(horizon, side)
        draw.rectangle([x, base - h, x + w, base], fill=colour([0, 0, 0], [110, 110, 110]))
    for _ in range(rng.integers(0, 4)):  # clouds
        w, x, y = rng.uniform(10, 30), rng.uniform(0, side), rng.uniform(0, horizon)
        draw.ellipse([x - w, y - w / 3, x + w, y + w / 3], fill=(int(rng.uniform(215, 255)),) * 3)
    return image.filter(ImageFilter.GaussianBlur(0.6))


def write_scenes(folder: Path, count: int, first_seed: int):
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        scene(np.random.default_rng(first_seed + index)).save(folder / f"scene{first_seed + index:06d}.png")


def build_rotation(images: Path, out: Path):
    """`ssl4rl-data build rotation` on a folder of pictures, in this process."""
    from ssl4rl_data.cli import main as ssl4rl_data

    argv = ["build", "rotation", "--source", f"folder:{images}", "--out", str(out), "--overwrite", "-q"]
    if ssl4rl_data(argv) != 0:
        raise SystemExit(f"failed: ssl4rl-data {' '.join(argv)}")


def image_hashes(folder: Path) -> set[str]:
    import hashlib

    from PIL import Image

    return {hashlib.sha256(Image.open(file).convert("RGB").tobytes()).hexdigest() for file in sorted(folder.iterdir())}
