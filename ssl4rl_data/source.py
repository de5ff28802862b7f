"""What an image source is: a lazy, ordered stream of references to encoded images.

A source lives in one file under `ssl4rl_data/sources/` and registers itself with `@register_source`.
`refs()` yields lightweight references in a stable order (never the pixels, so an ImageNet-size
input does not sit in memory); `read(locator)` returns one image's encoded bytes again, at any time,
in any worker process or scan thread. Sources never return labels: nothing but image bytes leaves them.
"""

import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Iterator
from urllib.parse import parse_qsl, quote

from .errors import UserError
from .files import DEFAULT_MAX_FILE_BYTES
from .registry import sources


@dataclass(frozen=True, slots=True)  # one per image: no per-object dict
class ImageRef:
    source_id: str  # stable, label-free, unique within the source
    locator: object  # whatever `read` needs: a path, (file, offset, size), ...
    digest: str | None = None  # content hash, when the source has the bytes in hand anyway


class Source:
    name: ClassVar[str]
    # Benchmark whose own images these are (training on them is transductive); None for plain photos.
    benchmark: ClassVar[str | None] = None
    licence: ClassVar[str | None] = None  # where the images' terms are, for the card
    takes_path: ClassVar[bool] = True
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES  # the build sets its --max-file-bytes here

    def __init__(self, path: str | None, options: dict[str, str]):
        self.path = Path(path) if path else None
        self.options = options
        self.skipped: Counter = Counter()  # inputs that could not be read while listing, by reason
        if self.takes_path:
            if not path:
                raise UserError(f"source {self.name!r} needs a path: --source {self.name}:PATH")
            if not self.path.exists():
                raise UserError(f"source {self.name}: {path} does not exist")
        unknown = sorted(set(options) - set(self.option_names()))
        if unknown:
            allowed = ", ".join(self.option_names()) or "none"
            raise UserError(f"source {self.name} has no option {unknown[0]!r} (options: {allowed})")

    def option_names(self) -> tuple[str, ...]:
        return ()

    def refs(self) -> Iterator[ImageRef]:
        raise NotImplementedError

    def read(self, locator) -> bytes:
        """The encoded image; OSError or SkipImage(reason) when it cannot be read."""
        raise NotImplementedError

    def skip(self, reason: str):
        """Count an input that `refs()` could not list or read (the build reports it with the skips)."""
        self.skipped[reason] += 1

    def describe(self) -> dict:
        """What the dataset card says about this source (no labels, no local paths)."""
        return {"kind": self.name, "benchmark": self.benchmark, "licence": self.licence, "options": dict(self.options)}


def parse_source(spec: str) -> Source:
    """'NAME[:PATH][?key=value&...]' -> a Source. One-line UserError for anything wrong."""
    name, _, rest = spec.partition(":")
    path, _, query = rest.partition("?")
    known = sources()
    if name not in known:
        raise UserError(f"unknown source {name!r} in {spec!r}; choose one of: {', '.join(known)}")
    return known[name](path or None, dict(parse_qsl(query, keep_blank_values=True)))


def id_from_path(relative: str) -> str:
    """A stable id from a relative path with '/' separators, with '|' and other odd characters escaped
    ('|' joins ids).

    Names that are not valid UTF-8 (kept by Python as surrogate escapes) are quoted byte by byte.

    >>> id_from_path("a b/c|d.jpg"), id_from_path("caf\\udce9.jpg")
    ('a b/c%7Cd.jpg', 'caf%E9.jpg')
    """
    return quote(os.fsencode(relative), safe="/-_.~()+,=@ ")
