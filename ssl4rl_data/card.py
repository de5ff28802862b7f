"""The dataset card: a provenance record (the `ssl4rl` block of the README's YAML) rendered with `cards/`.

The card is rendered from the record alone, so `push` can render it again with the repo id and tag
without rebuilding anything.

Rendered as `huggingface_hub.DatasetCard.from_template` renders (its card data's YAML and Jinja2;
a test keeps the two equal) without importing `huggingface_hub.repocard`, which brings in the whole
Hub client: 0.2-0.3 s of every build.
"""

import inspect
import os
import shlex
import sys
from importlib.resources import files
from pathlib import Path

import jinja2
import yaml
from huggingface_hub.repocard_data import DatasetCardData

from . import __version__, registry
from .build import BuildOptions, BuildResult
from .errors import UserError
from .task import Task

SHOWN_ANSWERS = 24
ENCODINGS = {"jpeg": "JPEG, quality 95", "png": "PNG, compression level 1"}


def provenance(task: Task, options: BuildOptions, result: BuildResult, command: str, overrides: list[str]) -> dict:
    """Everything that made the dataset, machine-readable."""
    stats = result.stats
    return {
        "version": result.version,
        "generator": f"ssl4rl-data {__version__}",
        "task": task.name,
        "parameters": task.parameters(),
        "baseline": task.baseline(),  # a simple non-learned solver's accuracy, with its source
        "seed": options.seed,
        "options": {
            "limit": options.limit,
            "image_format": options.image_format,
            "max_side": options.max_side,
            "difficulty": options.difficulty,
        },
        # With --difficulty: the tier kept, its score cuts, the rows before and kept (ssl4rl_data/difficulty.py).
        **({"difficulty": result.difficulty} if result.difficulty else {}),
        "command": command,
        "overrides": list(overrides),
        "sources": [
            {
                **{k: v for k, v in scan.description.items() if v},
                "images": scan.images,
                "duplicates": scan.duplicates,
                **({} if scan.near_duplicates is None else {"near_duplicates": scan.near_duplicates}),
                "unreadable": scan.unreadable,
                "rows": stats.rows_by_source.get(index, 0),
                "fingerprint": scan.fingerprint,
            }
            for index, scan in enumerate(result.scans)
        ],
        "rows": stats.rows,
        "skipped": dict(sorted(stats.skipped.items())),
        "answers": dict(sorted(stats.answers.items())),
        # Contrastive partners drawn again (a near-duplicate of the picture: a re-encoded, resized or
        # shifted copy, a stereo view), by reason; the rows themselves are kept.
        "partners_refused": dict(sorted(stats.refused.items())),
        # The manifest `push` checks the folder against: every data file's size and SHA-256.
        "files": {name: dict(entry) for name, entry in sorted(result.files.items())},
        # What ran the last shards (local processes or a Ray cluster, its nodes): not part of the version,
        # since the bytes are the same whatever ran them.
        "engine": dict(result.engine),
    }


def portable_command(args: list[str], cwd: str | None = None) -> str:
    """The command line as a card may publish it: paths under the working folder made relative, other
    absolute paths cut to their last part (no user's home, no machine layout).

    >>> portable_command(["ssl4rl-data", "build", "rotation", "--source", "folder:/home/me/w/photos?x=1",
    ...                   "--out=/home/me/w/out/d", "--recipe", "/srv/r.yaml"], cwd="/home/me/w")
    "ssl4rl-data build rotation --source 'folder:photos?x=1' --out=out/d --recipe r.yaml"
    """
    cwd = cwd or os.getcwd()
    return shlex.join(_portable_arg(arg, cwd) for arg in args)


def _portable_arg(arg: str, cwd: str) -> str:
    start = next((i for i, c in enumerate(arg) if c == "/" and (i == 0 or arg[i - 1] in ":=")), None)
    if start is None:
        return arg
    path, mark, query = arg[start:].partition("?")
    normal = os.path.normpath(path)
    inside = os.path.commonpath([normal, cwd]) == cwd if os.path.isabs(cwd) else False
    short = os.path.relpath(normal, cwd) if inside else (os.path.basename(normal) or ".")
    return arg[:start] + short + mark + query


def render_card(record: dict, repo_id: str | None = None, tag: str | None = None) -> str:
    card_data, template, values = card_arguments(record, repo_id, tag)
    return jinja2.Template(template).render(card_data=card_data.to_yaml(), **{**card_data.to_dict(), **values})


def card_arguments(record: dict, repo_id: str | None, tag: str | None) -> tuple[DatasetCardData, str, dict]:
    """The card data, template and template values of a record's card."""
    card_data = DatasetCardData(
        pretty_name=f"SSL4RL {record['task']}",
        task_categories=["image-text-to-text"],
        tags=["ssl4rl", "self-supervised", "grpo", record["task"]],
        configs=[{"config_name": "default", "data_files": [{"split": "train", "path": "data/train-*"}]}],
        ssl4rl=record,
    )
    task_module = sys.modules[registry.get_task(record["task"]).__module__]
    answers = sorted(record["answers"].items(), key=lambda kv: (-kv[1], kv[0]))
    sources = record["sources"]
    template = (files("ssl4rl_data.cards") / "dataset_card.md").read_text(encoding="utf-8")
    return (
        card_data,
        template,
        dict(
            task_description=inspect.getdoc(task_module),
            encoding=ENCODINGS[record["options"]["image_format"]],
            max_side=record["options"]["max_side"],
            limit=record["options"]["limit"],
            difficulty=record.get("difficulty"),
            pretty_sources=", ".join(dict.fromkeys(s["kind"] for s in sources)),
            benchmarks=sorted({s["benchmark"] for s in sources if s.get("benchmark")}),
            answers_shown=answers[:SHOWN_ANSWERS],
            answers_distinct=len(answers),
            skipped_total=sum(record["skipped"].values()),
            duplicates_total=sum(s["duplicates"] for s in sources),
            near_duplicates_total=sum(s.get("near_duplicates", 0) for s in sources),
            repo_id=repo_id or "PATH_OR_REPO_ID",
            tag=tag,
            **{
                k: record[k]
                for k in (
                    "task",
                    "version",
                    "generator",
                    "rows",
                    "parameters",
                    "seed",
                    "overrides",
                    "command",
                    "sources",
                )
            },
            skipped=sorted(record["skipped"].items()),
            partners_refused=sorted(record.get("partners_refused", {}).items()),
            baseline=record.get("baseline"),
            audit=record.get("audit"),  # written by `ssl4rl-data audit` (ssl4rl_data/audit/)
            calibration=record.get("calibration"),  # `ssl4rl-data calibrate --keep`
        ),
    )


def write_card(
    folder: Path, result: BuildResult, *, task: Task, options: BuildOptions, command: str, overrides: list[str] = ()
) -> dict:
    """Write `folder/README.md`; returns the provenance record it holds."""
    record = provenance(task, options, result, command, overrides)
    (Path(folder) / "README.md").write_text(render_card(record), encoding="utf-8")
    return record


def read_provenance(folder: Path) -> dict:
    """The provenance record of a dataset folder written by `ssl4rl-data build`, from the README's YAML
    front matter (read as huggingface_hub reads it: `---` elsewhere in the card is just text)."""
    from huggingface_hub.repocard import metadata_load  # the Hub client: only `push` and readers need it

    readme = Path(folder) / "README.md"
    if not readme.is_file():
        raise UserError(f"{folder} is not a dataset folder written by `ssl4rl-data build` (no README.md)")
    try:
        metadata = metadata_load(readme)
    except (ValueError, yaml.YAMLError) as error:  # UnicodeDecodeError is a ValueError
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UserError(f"{readme} is damaged: its YAML front matter cannot be read ({first})") from None
    record = metadata.get("ssl4rl") if isinstance(metadata, dict) else None
    if not isinstance(record, dict):
        raise UserError(f"{readme} has no ssl4rl provenance block; rebuild it with `ssl4rl-data build`")
    missing = [key for key, kind in REQUIRED.items() if not isinstance(record.get(key), kind)]
    if missing:
        raise UserError(f"{readme} is damaged: its ssl4rl block lacks a valid {missing[0]!r}; rebuild it")
    return record


REQUIRED = {
    "version": str,
    "task": str,
    "parameters": dict,
    "options": dict,
    "sources": list,
    "rows": int,
    "skipped": dict,
    "answers": dict,
    "overrides": list,
    "command": str,
    "generator": str,
}
