"""The partner index of a task that pairs pictures (contrastive negatives): every listed picture's
perceptual hash, taken once after the scan, before any shard is built.

With it the builder refuses a near-duplicate partner (a re-encoded, resized or shifted copy, a stereo
view) without decoding it, and the card counts the near-duplicate pictures the sources hold. The
builder checks the decoded pair again (near_duplicates.py), so a picture whose hash could not be taken
here is still never paired with its copy.
"""

import functools
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import ImageChops

from .errors import SkipImage
from .images import decode
from .items import ItemList
from .near_duplicates import NEAR_DUPLICATE_BITS, near_duplicate, perceptual_hash
from .source import Source

PARTNER_TRIES = 8  # draws before a picture is skipped as having no distinct partner
HASH_DECODE_SIDE = 128  # JPEGs decode at 1/8 scale or less: a few milliseconds a picture
PAIRWISE_LIMIT = 20_000  # up to this many pictures every pair is compared; beyond, equal hashes only


class PartnerIndex:
    def __init__(self, hashes: np.ndarray, known: np.ndarray):
        self.hashes, self.known = hashes, known

    def near(self, first: int, second: int) -> bool:
        """Whether the pictures at two positions are near-duplicates (False where a hash is unknown)."""
        if not (self.known[first] and self.known[second]):
            return False
        return int(self.hashes[first] ^ self.hashes[second]).bit_count() <= NEAR_DUPLICATE_BITS

    def later_copies(self) -> np.ndarray:
        """Mask of the pictures that have a near-duplicate earlier in the list. Every pair is compared up
        to PAIRWISE_LIMIT pictures; beyond that only equal hashes count (most re-encoded and resized copies),
        so the count is a lower bound."""
        hashes, known = self.hashes, self.known
        positions = np.flatnonzero(known)
        later = np.zeros(len(hashes), dtype=bool)
        if len(positions) > PAIRWISE_LIMIT:
            values = hashes[positions]
            first = np.zeros(len(values), dtype=bool)
            first[np.unique(values, return_index=True)[1]] = True
            later[positions[~first]] = True
            return later
        values = hashes[positions]
        for start in range(0, len(values), 128):  # 128 x 20,000 distances at a time: 20 MB
            block = values[start : start + 128]
            distance = np.bitwise_count(block[:, None] ^ values[None, :])
            near = distance <= NEAR_DUPLICATE_BITS
            rows = np.arange(start, start + len(block))
            near &= np.arange(len(values))[None, :] < rows[:, None]  # an earlier picture only
            later[positions[rows[near.any(axis=1)]]] = True
        return later


def partner_index(items: ItemList, sources: list[Source]) -> PartnerIndex:
    """Hash every item's picture, on a thread per core (decoding releases the GIL)."""
    hashes = np.zeros(len(items), dtype=np.uint64)
    known = np.zeros(len(items), dtype=bool)
    parts = [range(start, min(start + 256, len(items))) for start in range(0, len(items), 256)]
    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        for part, results in zip(parts, pool.map(functools.partial(_hash_part, items, sources), parts), strict=True):
            for position, value in zip(part, results, strict=True):
                if value is not None:
                    hashes[position], known[position] = value, True
    return PartnerIndex(hashes, known)


def _hash_part(items: ItemList, sources: list[Source], positions: range) -> list[int | None]:
    results = []
    for position in positions:
        item = items[position]
        try:
            results.append(
                perceptual_hash(decode(sources[item.source_index].read(item.ref.locator), HASH_DECODE_SIDE))
            )
        except (SkipImage, OSError):
            results.append(None)  # counted when its row is built
    return results


def draw_partner(items: ItemList, index, position: int, image, decode_item, stats, rng) -> tuple[str, object]:
    """Another picture for a contrastive negative, as (source id, image): different content, not just a
    different row, and not a near-duplicate (a re-encoded, resized or shifted copy, a stereo view).
    Refusals are counted in `stats.refused`; after PARTNER_TRIES draws the picture is skipped."""
    if len(items) > 1:
        own_hash = None
        for _ in range(PARTNER_TRIES):
            other = int(rng.integers(len(items) - 1))
            other += other >= position
            if items.digests[other] == items.digests[position]:
                continue
            if index is not None and index.near(other, position):
                stats.refused["near-duplicate"] += 1  # known from the index: not even decoded
                continue
            item = items[other]
            try:
                candidate = decode_item(item)
            except SkipImage:
                continue
            if same_pixels(candidate, image):
                continue
            own_hash = perceptual_hash(image) if own_hash is None else own_hash
            if near_duplicate(own_hash, perceptual_hash(candidate)):
                stats.refused["near-duplicate"] += 1
                continue
            return item.ref.source_id, candidate
    raise SkipImage("no-distinct-partner")


def same_pixels(first, second) -> bool:
    """Exact. One middle row tells almost any two different pictures apart without a full pass (0.3 ms).

    >>> from PIL import Image
    >>> picture = Image.new("RGB", (4, 4)); corner = picture.copy(); corner.putpixel((0, 0), (1, 0, 0))
    >>> same_pixels(picture, picture.copy()), same_pixels(picture, corner)
    (True, False)
    """
    if first.size != second.size:
        return False
    middle = (0, first.height // 2, first.width, first.height // 2 + 1)
    if first.crop(middle).tobytes() != second.crop(middle).tobytes():
        return False
    return ImageChops.difference(first, second).getbbox() is None
