"""The training mixture: datasets built by ssl4rl-data, pinned, filtered each on its own, mixed exactly.

- A Hub dataset is resolved to its commit before loading, so the run records what it trained on
  (`REPO@TAG` and `REPO` alike); `PATH@REV` on a local folder is refused, since a folder has no revisions.
- Over-long prompts are dropped from each dataset before mixing, so the weights hold for the rows
  that are actually trained on.
- Weights are exact to a row: dataset i gets round(p_i * L) rows (largest remainders make the
  total exact), where L is the smallest length at which every dataset is seen whole at least once;
  a dataset asked for more rows than it has repeats itself in seeded random order.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np

REQUIRED_COLUMNS = {"prompt", "images", "answer", "task"}


class MixtureError(ValueError):
    """A user mistake in the datasets asked for; the message is one line."""


@dataclass(frozen=True)
class DatasetSpec:
    """One `--dataset_name` entry: a local folder, or a Hub repo with an optional revision."""

    name: str
    path: str
    revision: str | None
    local: bool

    @classmethod
    def parse(cls, name: str) -> "DatasetSpec":
        path, at, revision = name.partition("@")
        if Path(path).exists():
            if at:
                raise MixtureError(
                    f"--dataset_name {name}: {path} is a local folder, which has no revisions; "
                    "drop '@' or push it and pin the Hub repo"
                )
            return cls(name, path, None, True)
        if path.count("/") != 1 or not all(path.split("/")) or at and not revision:
            raise MixtureError(
                f"--dataset_name {name}: no such folder, and not a Hub repo id (NAMESPACE/NAME[@REVISION])"
            )
        return cls(name, path, revision or None, False)


def resolve_commit(spec: DatasetSpec) -> str:
    """The Hub commit that `spec`'s revision (tag, branch or commit; default main) points at."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError

    try:
        return HfApi().dataset_info(spec.path, revision=spec.revision).sha
    except RevisionNotFoundError:
        raise MixtureError(f"--dataset_name {spec.name}: the Hub repo has no revision {spec.revision!r}") from None
    except RepositoryNotFoundError:
        raise MixtureError(
            f"--dataset_name {spec.name}: no such local folder, and no such Hub dataset (or no access to it)"
        ) from None
    except (HfHubHTTPError, OSError) as error:
        raise MixtureError(f"--dataset_name {spec.name}: cannot reach the Hub ({type(error).__name__})") from None


def load_one(spec: DatasetSpec, split: str, commit: str | None = None):
    """(dataset, provenance) for one spec, at `commit` (resolved here when not given) for a Hub dataset."""
    from datasets import load_dataset

    if not spec.local and commit is None:
        commit = resolve_commit(spec)
    try:
        if spec.local:
            dataset = load_dataset("parquet", data_files={split: local_shards(spec, split)}, split=split)
        else:
            dataset = load_dataset(spec.path, revision=commit, split=split)
    except (ValueError, FileNotFoundError) as error:  # no such split, no data files, a folder that is not a dataset
        raise MixtureError(
            f"--dataset_name {spec.name}: cannot load split {split!r}: {str(error).splitlines()[0]}"
        ) from None
    missing = REQUIRED_COLUMNS - set(dataset.column_names)
    if missing:
        raise MixtureError(f"--dataset_name {spec.name}: lacks columns {sorted(missing)}; is it built by ssl4rl-data?")
    provenance = {
        "name": spec.name,
        "path": spec.path,
        "local": spec.local,
        "revision": spec.revision,
        "commit": commit,
    }
    return dataset, provenance


def local_shards(spec: DatasetSpec, split: str) -> list[str]:
    """The folder's parquet shards of `split`, by absolute path.

    Loading the folder itself (`load_dataset(folder)`) reads its card's `configs` and caches by their
    relative patterns: two folders of one name (`a/jigsaw`, `b/jigsaw`), or a folder rebuilt in place,
    then load the first one's cached rows. Absolute shard paths are cached by path and modification time.
    """
    shards = sorted(str(p.resolve()) for p in Path(spec.path).glob(f"data/{split}-*.parquet"))
    if not shards:
        raise MixtureError(
            f"--dataset_name {spec.name}: no data/{split}-*.parquet shards; is it built by ssl4rl-data?"
        )
    return shards


def mixture_counts(sizes: list[int], weights: list[float]) -> list[int]:
    """Rows to take from each dataset so the proportions equal `weights` to a row, every dataset seen whole.

    >>> mixture_counts([6, 6], [1, 1])
    [6, 6]
    >>> mixture_counts([10, 4], [1, 3])
    [10, 30]
    >>> mixture_counts([3, 5, 7], [1, 1, 2])  # 7 rows at weight 2 set the length: 20 rows
    [5, 5, 10]
    """
    if len(sizes) != len(weights) or any(w <= 0 for w in weights) or any(n <= 0 for n in sizes):
        raise MixtureError("--dataset_weights: one positive weight per dataset, and every dataset non-empty")
    total = sum(weights)
    shares = [w / total for w in weights]
    length = max(n / p for n, p in zip(sizes, shares, strict=True))
    exact = [p * length for p in shares]
    target = round(sum(exact))
    counts = [int(x) for x in exact]
    by_remainder = sorted(range(len(exact)), key=lambda i: (-(exact[i] - counts[i]), i))
    for i in by_remainder[: target - sum(counts)]:
        counts[i] += 1
    return [max(c, n) for c, n in zip(counts, sizes, strict=True)]


def mixture_indices(size: int, count: int, seed: int) -> np.ndarray:
    """`count` row indices of a `size`-row dataset: whole passes, then a seeded random part of one more."""
    passes, rest = divmod(count, size)
    partial = np.random.default_rng(seed).permutation(size)[:rest]
    return np.concatenate([np.tile(np.arange(size), passes), np.sort(partial)]).astype(np.int64)


def mix(datasets: list, weights: list[float] | None, seed: int):
    """All rows of all datasets (no weights), or rows in exactly the weights' proportions. Columns that not
    every dataset has are dropped (`difficulty` is missing from datasets of generator 0.4.0 and before)."""
    from datasets import concatenate_datasets

    shared = set.intersection(*(set(d.column_names) for d in datasets))
    datasets = [d.select_columns([c for c in d.column_names if c in shared]) for d in datasets]
    if weights is None:
        return concatenate_datasets(datasets) if len(datasets) > 1 else datasets[0]
    counts = mixture_counts([len(d) for d in datasets], weights)
    parts = [
        d.select(mixture_indices(len(d), c, seed + i)) for i, (d, c) in enumerate(zip(datasets, counts, strict=True))
    ]
    return concatenate_datasets(parts)
