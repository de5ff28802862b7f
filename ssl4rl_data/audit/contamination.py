"""Contamination: which of a dataset's pictures are near-duplicates of images of `--against` sources.

A row's picture (checks.Checker.picture: the first view, the reassembled jigsaw, the un-mirrored flip)
is a crop of its source image, re-encoded and downscaled. Each image of an `--against` source is hashed
(near_duplicates.perceptual_hash) whole and as a few crops (squares and the same aspect, 100% to 70% of
the side, centred or in the top-left corner). A picture within CANDIDATE_BITS of one of them is a
candidate (the MAX_CANDIDATES nearest images), confirmed by pixels: the picture's grey thumbnail must
correlate (zero-mean, normalised) at least MIN_CORRELATION with some crop of the image at its aspect
ratio (60-100% of the largest, at any place). Measured on the tests' copies: copies 0.90-1.00 (re-encoded
at JPEG q70 and shrunk to 75%, or enlarged to 150% as PNG), other pictures at most 0.67. A dataset built
from a benchmark on purpose (a source of the same benchmark in its card) is transductive: its overlaps
are reported as such, not as a failure. Cost: about 3 ms a hashed source image, 1-5 ms a candidate pair.
"""

import functools
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image

from ..errors import SkipImage, UserError
from ..images import decode
from ..near_duplicates import NEAR_DUPLICATE_BITS, perceptual_hash
from ..source import parse_source
from .matching import window_errors

HASH_DECODE_SIDE = 256
THUMB_SIDE, MATCH_SIDE = 48, 128  # the picture's thumbnail, and the image searched for it (longer sides)
CANDIDATE_BITS = 12
MIN_CORRELATION = 0.85  # measured: copies 0.91-1.00, other pictures at most 0.67
COARSE = (1.0, 0.8, 0.6)  # crop scales tried first; then the ones between
SCALES = COARSE + (0.9, 0.7, 0.95, 0.85, 0.75, 0.65)
MIN_COARSE = 0.5
MIN_SPREAD = 4.0  # a flatter thumbnail correlates with anything: only its hash can say
# (shape, scale, anchor) of the crops hashed besides the whole image: tasks cut centred boxes whose
# corner is rounded down to the 16 px grid, so a picture sits centred or towards the top-left.
CROPS = tuple(
    (shape, scale, anchor)
    for shape in ("square", "same")
    for scale in (1.0, 0.85, 0.7)
    for anchor in ("centre", "top-left")
    if (shape, scale) != ("same", 1.0)
)
MAX_LISTED = 200
MAX_CANDIDATES = 3  # nearest images by hash whose pixels are compared, per picture


def crop_variants(image: Image.Image) -> list[Image.Image]:
    width, height = image.size
    out = [image]
    for shape, scale, anchor in CROPS:
        w, h = (min(width, height),) * 2 if shape == "square" else (width, height)
        w, h = max(1, round(w * scale)), max(1, round(h * scale))
        left, top = ((width - w) // 2, (height - h) // 2) if anchor == "centre" else (0, 0)
        out.append(image.crop((left, top, left + w, top + h)))
    return out


def thumbnail(image: Image.Image, side: int = THUMB_SIDE) -> np.ndarray:
    """Grey thumbnail whose longer side is `side` (what the pixel check compares)."""
    scale = side / max(image.size)
    size = (max(8, round(image.width * scale)), max(8, round(image.height * scale)))
    return np.asarray(image.convert("L").resize(size, Image.Resampling.BOX), np.float32)


def best_correlation(picture: np.ndarray, image: Image.Image) -> float:
    """Largest normalised correlation between `picture` (a thumbnail) and a crop of `image` of its aspect,
    60-100% of the largest such crop, at every place (FFT correlation at each of 9 scales)."""
    ph, pw = picture.shape
    if picture.std() < MIN_SPREAD:
        return float("nan")
    image = image.convert("L")
    width, height = image.size
    aspect = pw / ph
    full_w = height * aspect if width / height > aspect else width
    best = -1.0
    for index, size in enumerate(SCALES):
        if index == len(COARSE) and best < MIN_COARSE:
            break  # nothing near at the coarse scales: not a copy (copies reach 0.7 there, others stay far below)
        factor = pw / (full_w * size)  # the crop, scaled to the thumbnail's size
        scaled = (max(pw, round(width * factor)), max(ph, round(height * factor)))
        pixels = np.asarray(image.resize(scaled, Image.Resampling.BILINEAR), np.float64)
        best = max(best, 1 - float(window_errors(pixels, picture.astype(np.float64), normalised=True).min()))
        if best >= MIN_CORRELATION:
            break
    return best


def _hash_one(source, ref) -> tuple[list[int], Image.Image] | None:
    try:
        image = decode(source.read(ref.locator), HASH_DECODE_SIDE)
    except (SkipImage, OSError):
        return None
    small = image.convert("L")
    small.thumbnail((MATCH_SIDE, MATCH_SIDE), Image.Resampling.BOX)
    return [perceptual_hash(variant) for variant in crop_variants(image)], small


def against_hashes(spec: str) -> tuple[dict, list[str], np.ndarray, list[Image.Image]]:
    """(description, ids, hashes[len(ids), variants], grey thumbnails) of every readable image of a source."""
    source = parse_source(spec)
    refs = list({ref.source_id: ref for ref in reversed(list(source.refs()))}.values())[::-1]  # first of each id
    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        hashed = list(pool.map(functools.partial(_hash_one, source), refs, chunksize=16))
    kept = [(ref.source_id, h) for ref, h in zip(refs, hashed, strict=True) if h is not None]
    description = {
        "spec": spec,
        "kind": source.name,
        "benchmark": source.benchmark,
        "images": len(kept),
        "unreadable": len(refs) - len(kept),
    }
    hashes = np.array([h for _, (h, _) in kept], np.uint64).reshape(len(kept), len(CROPS) + 1)
    return description, [i for i, _ in kept], hashes, [small for _, (_, small) in kept]


def popcount(values: np.ndarray) -> np.ndarray:
    """Set bits of each uint64 (numpy >= 2 counts them natively)."""
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(values).astype(np.int16)
    as_bytes = values.view(np.uint8).reshape(*values.shape, 8)
    return np.unpackbits(as_bytes, axis=-1).sum(-1).astype(np.int16)


def candidates(picture_hashes: np.ndarray, hashes: np.ndarray, chunk: int = 256) -> list[list[tuple[int, int]]]:
    """Per picture: (bit distance, image index) of the MAX_CANDIDATES nearest images within CANDIDATE_BITS
    (the distance to an image is the smallest to any of its crops)."""
    out = []
    for start in range(0, len(picture_hashes), chunk):
        part = picture_hashes[start : start + chunk]
        bits = popcount(part[:, None, None] ^ hashes[None, :, :]).min(axis=2)
        for distances in bits:
            near = np.flatnonzero(distances <= CANDIDATE_BITS)
            near = near[np.argsort(distances[near], kind="stable")][:MAX_CANDIDATES]
            out.append([(int(distances[i]), int(i)) for i in near])
    return out


def contamination(
    pictures: list[tuple[str, int | None, np.ndarray | None]], specs: list[str], dataset_benchmarks: set
) -> dict:
    """`pictures`: (row source id, picture hash, grey thumbnail) per row, None where the row shows no
    picture. One entry per `--against` spec."""
    hashed = [p for p in pictures if p[1] is not None]
    result = {
        "rows_hashed": len(hashed),
        "rows_without_picture": len(pictures) - len(hashed),
        "candidate_bits": CANDIDATE_BITS,
        "min_correlation": MIN_CORRELATION,
        "against": [],
    }
    picture_hashes = np.array([h for _, h, _ in hashed], np.uint64)
    for spec in specs:
        try:
            description, ids, hashes, smalls = against_hashes(spec)
        except UserError as error:
            raise UserError(f"--against {spec}: {error}") from None
        overlaps, checked = set(), 0
        for (row_id, _, thumb), near in zip(hashed, candidates(picture_hashes, hashes), strict=True):
            for distance, image in near:
                checked += 1
                correlation = best_correlation(thumb, smalls[image])
                if correlation >= MIN_CORRELATION or (np.isnan(correlation) and distance <= NEAR_DUPLICATE_BITS):
                    overlaps.add((row_id, ids[image]))
        overlaps = sorted(overlaps)
        rows = sorted({row for row, _ in overlaps})
        transductive = bool(description["benchmark"] and description["benchmark"] in dataset_benchmarks)
        result["against"].append(
            {
                **description,
                "transductive": transductive,
                "pairs_checked": checked,
                "overlaps": len(rows),
                "rows": rows[:MAX_LISTED],
                "matches": [{"row": row, "image": image} for row, image in overlaps[:MAX_LISTED]],
                "failure": bool(overlaps) and not transductive,
            }
        )
    return result
