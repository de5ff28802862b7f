"""The benchmarks' photo set: distinct photo-sized JPEGs made from the bundled sample photos, cached."""

import multiprocessing
import os
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from ssl4rl_data.sources.sample import PHOTOS, photo_dir

SIZE = (640, 480)


def make_photos(folder: Path, count: int, procs: int = os.cpu_count() or 1) -> Path:
    """`count` distinct 640x480 JPEGs (quality 90), cached: a folder that has them all is reused."""
    folder.mkdir(parents=True, exist_ok=True)
    if len(list(folder.glob("*.jpg"))) == count:
        return folder
    started = time.perf_counter()
    chunks = [(folder, start, min(start + 2000, count)) for start in range(0, count, 2000)]
    with multiprocessing.get_context("fork").Pool(procs) as pool:
        for done, _ in enumerate(pool.imap_unordered(_make_chunk, chunks), 1):
            print(
                f"  made {min(done * 2000, count)} of {count} photos "
                f"({min(done * 2000, count) / (time.perf_counter() - started):.0f}/s)",
                file=sys.stderr,
            )
    return folder


def _make_chunk(job):
    """Photos start..stop: a random 640x480 window of a sample photo scaled to 1280 px wide, maybe
    mirrored, with a per-channel colour shift; each from its own seed, so any split gives the same files."""
    folder, start, stop = job
    photos = []
    for name in PHOTOS:
        photo = Image.open(photo_dir() / name).convert("RGB")
        scale = max(1280 / photo.width, 960 / photo.height)
        photos.append(
            photo.resize((round(photo.width * scale), round(photo.height * scale)), Image.Resampling.BILINEAR)
        )
    for index in range(start, stop):
        rng = np.random.default_rng(index)
        photo = photos[index % len(photos)]
        left, top = int(rng.integers(photo.width - SIZE[0] + 1)), int(rng.integers(photo.height - SIZE[1] + 1))
        image = photo.crop((left, top, left + SIZE[0], top + SIZE[1]))
        if rng.random() < 0.5:
            image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        shift = rng.integers(-30, 31, size=3)
        table = [min(255, max(0, value + int(shift[band]))) for band in range(3) for value in range(256)]
        image.point(table).save(folder / f"{index:07d}.jpg", quality=90)
