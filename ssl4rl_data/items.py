"""The build's list of images, kept off the Python heap.

Python objects per image cost about 450 bytes (measured), about 580 MB for ImageNet-train, and
again in every forked worker, whose reference counting writes to the pages it shares. Here each
image is one pickled record in an anonymous spool file plus 52 bytes in flat arrays (record span,
source number, id hash, content digest): about 67 MB, shared by workers without copying.
Deduplication is a sort over those arrays. To reach workers on other machines a list is saved into
a folder they all see (`save`) and then pickles as that folder's path: no worker receives, and no
driver serializes, a copy of the list.
"""

import hashlib
import os
import pickle
import shutil
import tempfile
from array import array
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .source import ImageRef

HASH_BYTES = 16


def id_hash(source_id: str) -> bytes:
    return hashlib.sha256(source_id.encode()).digest()[:HASH_BYTES]


@dataclass(frozen=True, slots=True)
class Item:
    source_index: int
    ref: ImageRef


class ItemList:
    """Read-only, indexable list of Items, backed by the spool file and arrays of an `ItemWriter`."""

    def __init__(
        self,
        spool,
        starts: np.ndarray,
        stops: np.ndarray,
        source_index: np.ndarray,
        id_hashes: np.ndarray,
        digests: np.ndarray,
    ):
        self._spool = spool
        self.starts, self.stops = starts, stops
        self.source_index, self.id_hashes, self.digests = source_index, id_hashes, digests
        self.folder = None  # where `save` put it: set only on a saved list, which pickles as this path

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, position: int) -> Item:
        start, stop = int(self.starts[position]), int(self.stops[position])
        source_id, locator = pickle.loads(os.pread(self._spool.fileno(), stop - start, start))
        return Item(int(self.source_index[position]), ImageRef(source_id, locator))

    def select(self, positions: np.ndarray) -> "ItemList":
        """The items at `positions`, in that order (the spool is shared, not copied)."""
        return ItemList(
            self._spool,
            self.starts[positions],
            self.stops[positions],
            self.source_index[positions],
            self.id_hashes[positions],
            self.digests[positions],
        )

    def close(self):
        self._spool.close()

    ARRAYS = ("starts", "stops", "source_index", "id_hashes", "digests")

    def save(self, folder: Path) -> "ItemList":
        """This list, written into `folder` (streamed: the spool is copied, not read into memory), as a
        list that can be pickled: it pickles as the folder's absolute path and opens memory-mapped."""
        folder = Path(folder).absolute()
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / "spool", "wb") as copy:
            self._spool.seek(0)
            shutil.copyfileobj(self._spool, copy, 1 << 20)
        for name in self.ARRAYS:
            np.save(folder / f"{name}.npy", getattr(self, name))
        return ItemList.open(folder)

    @classmethod
    def open(cls, folder: Path) -> "ItemList":
        """A list saved by `save`; its arrays are memory-mapped, so a worker reads only the pages it uses."""
        arrays = {name: np.load(Path(folder) / f"{name}.npy", mmap_mode="r") for name in cls.ARRAYS}
        items = cls(open(Path(folder) / "spool", "rb"), **arrays)
        items.folder = Path(folder)
        return items

    def __reduce__(self):
        if self.folder is None:  # the spool is an anonymous file: only a saved list can travel
            raise TypeError("an ItemList pickles only once saved (ItemList.save) into a folder its reader sees")
        return ItemList.open, (str(self.folder),)


class ItemWriter:
    """Appends scanned references; `finish()` turns them into an ItemList."""

    def __init__(self):
        self._spool = tempfile.TemporaryFile(prefix="ssl4rl-items-")
        self._offsets = array("q", [0])
        self._source_index = array("i")
        self._id_hashes = bytearray()
        self._digests = bytearray()
        self._pending = []  # records not yet written, to write in large blocks

    def add(self, source_index: int, ref: ImageRef, digest: bytes):
        record = pickle.dumps((ref.source_id, ref.locator), protocol=pickle.HIGHEST_PROTOCOL)
        self._pending.append(record)
        if len(self._pending) >= 4096:
            self._flush()
        self._offsets.append(self._offsets[-1] + len(record))
        self._source_index.append(source_index)
        self._id_hashes += id_hash(ref.source_id)
        self._digests += digest

    def _flush(self):
        self._spool.write(b"".join(self._pending))
        self._pending = []

    def finish(self) -> ItemList:
        self._flush()
        self._spool.flush()
        offsets = np.frombuffer(self._offsets, dtype=np.int64)
        return ItemList(
            self._spool,
            starts=offsets[:-1].copy(),
            stops=offsets[1:].copy(),
            source_index=np.frombuffer(self._source_index, dtype=np.int32).copy(),
            id_hashes=np.frombuffer(bytes(self._id_hashes), dtype=f"V{HASH_BYTES}"),
            digests=np.frombuffer(bytes(self._digests), dtype=f"V{HASH_BYTES}"),
        )


def first_occurrences(keys: np.ndarray) -> np.ndarray:
    """Boolean mask of the entries whose key has not appeared earlier.

    >>> first_occurrences(np.array([3, 1, 3, 2, 1])).tolist()
    [True, True, False, True, False]
    """
    mask = np.zeros(len(keys), dtype=bool)
    if len(keys):
        mask[np.unique(keys, return_index=True)[1]] = True
    return mask
