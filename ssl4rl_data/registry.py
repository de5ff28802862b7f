"""Name -> class registries for tasks and sources.

Every module in `ssl4rl_data/tasks/` and `ssl4rl_data/sources/` is imported on first lookup, and
registers itself with a decorator, so adding a task or a source is adding one file.
"""

import importlib
import pkgutil

from .errors import UserError

_REGISTRIES: dict[str, dict[str, type]] = {"tasks": {}, "sources": {}}


def _register(kind: str, name: str):
    def decorator(cls):
        cls.name = name
        _REGISTRIES[kind][name] = cls
        return cls

    return decorator


def register_task(name: str):
    return _register("tasks", name)


def register_source(name: str):
    return _register("sources", name)


_DISCOVERED: set[str] = set()


def _discover(kind: str) -> dict[str, type]:
    """Import every module of the kind's package, once per process (a reward call looks tasks up per row)."""
    if kind not in _DISCOVERED:
        package = importlib.import_module(f"ssl4rl_data.{kind}")
        for module in pkgutil.iter_modules(package.__path__):
            importlib.import_module(f"{package.__name__}.{module.name}")
        _DISCOVERED.add(kind)
    return _REGISTRIES[kind]


def tasks() -> dict[str, type]:
    return dict(sorted(_discover("tasks").items()))


def sources() -> dict[str, type]:
    return dict(sorted(_discover("sources").items()))


def get_task(name: str) -> type:
    known = tasks()
    if name not in known:
        raise UserError(f"unknown task {name!r}; choose one of: {', '.join(known)}")
    return known[name]
