"""The scan: every image of every source listed once, as a light reference with a content hash.

Repeated ids within a source and repeated content across all sources are dropped and counted; inputs
that cannot be read are counted by reason. Nothing here holds pixels.
"""

import collections
import hashlib
import itertools
import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from .errors import SkipImage
from .images import content_digest
from .items import ItemList, ItemWriter, first_occurrences
from .source import Source

SCAN_BATCH, SCAN_PART = 1024, 64  # refs the scan's threads work ahead on, and per task


@dataclass
class SourceScan:
    description: dict
    images: int = 0
    duplicates: int = 0
    unreadable: int = 0  # inputs skipped while scanning, all reasons together
    fingerprint: str = ""
    skipped: Counter = field(default_factory=Counter)  # the same, by reason
    near_duplicates: int | None = None  # pictures with a near-duplicate listed before them (partners.py)


def scan(sources: list[Source], progress: bool, hasher=None) -> tuple[ItemList, list[SourceScan]]:
    """List every image once: drop repeated ids within a source and repeated content across all sources.

    Files the source does not hash itself (a `folder:` source; one whose ids are content hashes, such
    as `imagenet:`, hashes them in `refs()`) are read and hashed on a thread per core: both release the
    GIL, and for an ImageNet-size folder that is 140 GB, minutes on one core. A `hasher` (a Ray
    build's: ray_engine.RayHasher) hashes them elsewhere instead: `submit(source, refs)` returns a
    future of `_digests(source, refs)`, `part_size` refs at a time, `window` parts ahead.
    """
    writer, scans = ItemWriter(), []
    bar = tqdm(desc="scanning", unit="img", disable=not progress, mininterval=0.5)
    try:
        with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
            hasher = hasher or _ThreadHasher(pool)
            for index, source in enumerate(sources):
                summary = SourceScan(description={})
                for refs, digests in _hashed(hasher, source):
                    for ref, digest in zip(refs, digests, strict=True):
                        bar.update()
                        summary.images += 1
                        if isinstance(digest, SkipImage):
                            summary.skipped[digest.reason] += 1
                        else:
                            writer.add(index, ref, bytes.fromhex(digest))
                summary.skipped.update(source.skipped)  # what refs() itself could not list or read
                summary.unreadable = sum(summary.skipped.values())
                summary.description = source.describe()  # after the scan: it may count what the scan excluded
                scans.append(summary)
    finally:
        bar.close()  # before any error is printed
    items = writer.finish()
    del writer  # its buffers (52 bytes an image) are copied into `items`: not held through the deduplication
    return _deduplicate(items, scans), scans


class _ThreadHasher:
    """This machine's threads, SCAN_PART refs a task, up to SCAN_BATCH refs ahead."""

    part_size, window = SCAN_PART, SCAN_BATCH // SCAN_PART

    def __init__(self, pool: ThreadPoolExecutor):
        self.pool = pool

    def submit(self, source: Source, refs: list):
        return self.pool.submit(_digests, source, refs)


def _hashed(hasher, source: Source):
    """(refs, digests) of each part of the source's refs, in order, with up to `hasher.window` parts in hand."""
    ahead = collections.deque()
    for refs in _batches(source.refs(), hasher.part_size):
        ahead.append((refs, hasher.submit(source, refs)))
        if len(ahead) >= hasher.window:
            refs, future = ahead.popleft()
            yield refs, future.result()
    while ahead:
        refs, future = ahead.popleft()
        yield refs, future.result()


def _batches(refs, size: int):
    """Lists of up to `size` refs: the pool works ahead on a batch, never on the whole source."""
    while batch := list(itertools.islice(refs, size)):
        yield batch


def _digests(source: Source, refs) -> list[str | SkipImage]:
    """Each ref's content digest, reading the image if the source did not hash it; SkipImage if unreadable."""
    digests = []
    for ref in refs:
        try:
            digests.append(ref.digest or content_digest(source.read(ref.locator)))
        except SkipImage as skip:
            digests.append(skip)
        except OSError:
            digests.append(SkipImage("unreadable"))
    return digests


FINGERPRINT_CHUNK = 1 << 16  # rows hashed at a time: the fingerprint never stacks a whole source's arrays


def _deduplicate(items: ItemList, scans: list[SourceScan]) -> ItemList:
    """Keep the first of each id within a source and the first of each content across all sources;
    count what is dropped and fingerprint each source (ids and digests, repeats of an id excluded).
    A single source is worked on in place (no per-source copies of its arrays)."""
    keep = np.zeros(len(items), dtype=bool)
    single = len(scans) == 1 and (len(items) == 0 or not items.source_index.any())
    for index, summary in enumerate(scans):
        positions = np.arange(len(items)) if single else np.flatnonzero(items.source_index == index)
        first = first_occurrences(items.id_hashes if single else items.id_hashes[positions])
        kept_here = positions[first]
        del positions, first
        keep[kept_here] = True
        summary.duplicates = (
            len(keep) - len(kept_here) if single else int((items.source_index == index).sum()) - len(kept_here)
        )
        fingerprint = hashlib.blake2b(digest_size=16)
        for start in range(0, len(kept_here), FINGERPRINT_CHUNK):  # the bytes of stack([ids, digests], axis=1)
            chunk = kept_here[start : start + FINGERPRINT_CHUNK]
            fingerprint.update(np.stack([items.id_hashes[chunk], items.digests[chunk]], axis=1).tobytes())
        summary.fingerprint = fingerprint.hexdigest()
        del kept_here
    kept = np.flatnonzero(keep)
    repeated = kept[~first_occurrences(items.digests[kept])]
    del kept
    for index, count in zip(*np.unique(items.source_index[repeated], return_counts=True), strict=True):
        scans[index].duplicates += int(count)
    keep[repeated] = False
    return items.select(np.flatnonzero(keep))
