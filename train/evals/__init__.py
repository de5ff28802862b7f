"""Evaluation benchmarks, one file each, found through a registry (as tasks and sources are).

A benchmark file defines a class with `kind` (the KIND of `--benchmark KIND:PATH`), `read(path, args)`
returning its items, `extract(output, record)` finding the answer in a generation, and `score(rows)`,
and registers it with `@register_benchmark`. `evaluate.py` needs no change for a new one.
"""

import importlib
import pkgutil

_BENCHMARKS: dict[str, type] = {}
_DISCOVERED = False


def register_benchmark(cls: type) -> type:
    _BENCHMARKS[cls.kind] = cls
    return cls


def benchmarks() -> dict[str, type]:
    """Every registered benchmark by kind; the modules of this package are imported once."""
    global _DISCOVERED
    if not _DISCOVERED:
        for module in pkgutil.iter_modules(__path__):
            importlib.import_module(f"{__name__}.{module.name}")
        _DISCOVERED = True
    return dict(sorted(_BENCHMARKS.items()))
