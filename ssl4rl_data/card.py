"""Render a dataset's README (YAML metadata + prose) from the template in `cards/`."""

import inspect
import sys
from importlib.resources import files
from pathlib import Path

from huggingface_hub import DatasetCard, DatasetCardData

from . import __version__
from .build import BuildOptions, BuildResult
from .task import Task

SHOWN_ANSWERS = 24
ENCODINGS = {"jpeg": "JPEG, quality 95", "png": "PNG, compression level 1"}


def provenance(task: Task, options: BuildOptions, result: BuildResult, command: str, overrides: list[str]) -> dict:
    """Everything that made the dataset, machine-readable (the `ssl4rl` block of the card's YAML)."""
    stats = result.stats
    return {
        "version": result.version,
        "generator": f"ssl4rl-data {__version__}",
        "task": task.name,
        "parameters": task.parameters(),
        "seed": options.seed,
        "options": {"limit": options.limit, "image_format": options.image_format, "max_side": options.max_side},
        "command": command,
        "overrides": overrides,
        "sources": [
            {
                **{k: v for k, v in scan.description.items() if v},
                "images": scan.images,
                "duplicates": scan.duplicates,
                "unreadable": scan.unreadable,
                "rows": stats.rows_by_source.get(index, 0),
                "fingerprint": scan.fingerprint,
            }
            for index, scan in enumerate(result.scans)
        ],
        "rows": stats.rows,
        "skipped": dict(sorted(stats.skipped.items())),
        "answers": dict(sorted(stats.answers.items())),
    }


def write_card(
    folder: Path,
    result: BuildResult,
    *,
    task: Task,
    options: BuildOptions,
    command: str,
    overrides: list[str] = (),
    repo_id: str | None = None,
    tag: str | None = None,
) -> dict:
    """Write `folder/README.md`; returns the provenance block it recorded."""
    record = provenance(task, options, result, command, list(overrides))
    benchmarks = sorted({s["benchmark"] for s in record["sources"] if s.get("benchmark")})
    card_data = DatasetCardData(
        pretty_name=f"SSL4RL {task.name}",
        task_categories=["image-text-to-text"],
        tags=["ssl4rl", "self-supervised", "grpo", task.name],
        configs=[{"config_name": "default", "data_files": [{"split": "train", "path": "data/train-*"}]}],
        ssl4rl=record,
    )
    answers = sorted(record["answers"].items(), key=lambda kv: (-kv[1], kv[0]))
    card = DatasetCard.from_template(
        card_data,
        template_str=(files("ssl4rl_data.cards") / "dataset_card.md").read_text(encoding="utf-8"),
        task=task.name,
        task_description=inspect.getdoc(sys.modules[type(task).__module__]),
        version=result.version,
        generator=record["generator"],
        rows=record["rows"],
        parameters=record["parameters"],
        seed=options.seed,
        encoding=ENCODINGS[options.image_format],
        max_side=options.max_side,
        limit=options.limit,
        overrides=record["overrides"],
        command=command,
        sources=record["sources"],
        pretty_sources=", ".join(dict.fromkeys(s["kind"] for s in record["sources"])),
        benchmarks=benchmarks,
        answers=answers[:SHOWN_ANSWERS],
        answers_distinct=len(answers),
        skipped=sorted(record["skipped"].items()),
        skipped_total=sum(record["skipped"].values()),
        duplicates_total=sum(s["duplicates"] for s in record["sources"]),
        repo_id=repo_id or "PATH_OR_REPO_ID",
        tag=tag,
    )
    (Path(folder) / "README.md").write_text(str(card), encoding="utf-8")
    return record
