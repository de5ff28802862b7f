"""The scanned image list: deduplication, subsets, and records that survive the trip through the spool."""

from conftest import gradient, jpeg_bytes

from ssl4rl_data.build import SCAN_BATCH, _subset, scan
from ssl4rl_data.images import content_digest
from ssl4rl_data.source import ImageRef, Source, parse_source
from ssl4rl_data.table_source import Cell


class ListedImages(Source):
    """A source over an in-memory list of (id, bytes), with repeats, as table sources can have."""

    name = "listed"
    takes_path = False

    def __init__(self, entries):
        super().__init__(None, {})
        self.entries = entries

    def refs(self):
        for position, (source_id, _) in enumerate(self.entries):
            yield ImageRef(source_id, locator=Cell(table=0, row=position, column="image", item=None))

    def read(self, locator):
        data = self.entries[locator.row][1]
        if data is None:
            raise OSError("gone")
        return data


def images(count):
    return [jpeg_bytes(gradient(64 + 16 * i, 48)) for i in range(count)]


def test_scan_drops_repeated_ids_and_repeated_content_and_counts_them():
    a, b, c, d = images(4)
    first = ListedImages([("x", a), ("y", b), ("x", c), ("z", a), ("broken", None)])
    second = ListedImages([("x", b), ("w", d)])
    items, scans = scan([first, second], progress=False)
    kept = [(items[i].source_index, items[i].ref.source_id) for i in range(len(items))]
    # first: "x" again is an id repeat, "z" repeats x's bytes; second: "x" repeats y's bytes (across sources)
    assert kept == [(0, "x"), (0, "y"), (1, "w")]
    assert [(s.images, s.duplicates, s.unreadable) for s in scans] == [(5, 2, 1), (2, 1, 0)]
    assert items[2].ref.locator == Cell(table=0, row=1, column="image", item=None)
    items.close()


def test_scan_keeps_source_order_across_hashing_batches():
    # More images than the scan's threads hash in one batch, every tenth unreadable: order and counts hold.
    count = 2 * SCAN_BATCH + 7
    entries = [(f"id{n}", None if n % 10 == 3 else f"image {n}".encode()) for n in range(count)]
    items, scans = scan([ListedImages(entries)], progress=False)
    readable = [n for n in range(count) if n % 10 != 3]
    assert [items[i].ref.source_id for i in range(len(items))] == [f"id{n}" for n in readable]
    assert [bytes(d).hex() for d in items.digests] == [content_digest(entries[n][1]) for n in readable]
    assert (scans[0].images, scans[0].unreadable) == (count, count - len(readable))
    items.close()


def test_fingerprint_follows_ids_and_bytes_but_not_repeats():
    a, b, c = images(3)

    def fingerprint(entries):
        items, scans = scan([ListedImages(entries)], progress=False)
        items.close()
        return scans[0].fingerprint

    base = fingerprint([("x", a), ("y", b)])
    assert fingerprint([("x", a), ("y", b), ("x", c)]) == base  # a repeated id is dropped before hashing
    assert fingerprint([("x", a), ("y", c)]) != base
    assert fingerprint([("x", a), ("v", b)]) != base


def test_subset_is_seeded_spread_and_keeps_source_order():
    entries = [(f"id{i:03d}", data) for i, data in enumerate(images(40))]
    items, _ = scan([ListedImages(entries)], progress=False)

    def chosen(seed):
        subset = _subset(items, 10, seed)
        return [subset[i].ref.source_id for i in range(len(subset))]

    assert chosen(0) == chosen(0) and chosen(0) == sorted(chosen(0))
    assert len(set(chosen(0))) == 10 and chosen(0) != chosen(1)
    assert chosen(0) != [f"id{i:03d}" for i in range(10)]  # not simply the first ten
    items.close()


def test_folder_items_read_back_after_scan(photo_folder):
    source = parse_source(f"folder:{photo_folder}")
    items, scans = scan([source], progress=False)
    assert len(items) == scans[0].images == len(list(photo_folder.glob("*.jpg")))
    last = items[len(items) - 1]
    assert source.read(last.ref.locator) == (photo_folder / last.ref.source_id.split(":", 1)[1]).read_bytes()
    items.close()
