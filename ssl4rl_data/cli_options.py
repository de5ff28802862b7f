"""The options every `ssl4rl-data build TASK` takes, and those a task's Config dataclass adds."""

import dataclasses
import typing
from pathlib import Path

import click

from .files import DEFAULT_MAX_FILE_BYTES


def config_options(config_cls) -> list[click.Option]:
    options = []
    hints = typing.get_type_hints(config_cls)
    for f in dataclasses.fields(config_cls):
        flag = "--" + f.name.replace("_", "-")
        help_text = f.metadata.get("help", "")
        if hints[f.name] is bool:
            options.append(click.Option([f"{flag}/--no-{flag[2:]}", f.name], default=f.default, help=help_text))
        else:
            options.append(
                click.Option([flag, f.name], type=hints[f.name], default=f.default, show_default=True, help=help_text)
            )
    return options


COMMON_OPTIONS = [
    click.Option(
        ["--source", "sources"],
        multiple=True,
        default=("sample",),
        show_default=True,
        help="Image source, repeatable: sample, folder:PATH, or a benchmark source "
        "(NAME:PATH?option=value). Run `ssl4rl-data sources` for the list.",
    ),
    click.Option(
        ["--out"],
        type=click.Path(path_type=Path),
        default=None,
        help="Output folder (Hub repo layout). Default: out/TASK.",
    ),
    click.Option(["--seed"], type=int, default=0, show_default=True, help="Seed of every per-sample transform."),
    click.Option(
        ["--limit"],
        type=int,
        default=None,
        help="Use at most this many unique source images, drawn uniformly by the seed (the same for every task). "
        "Applied before --difficulty, which then keeps about a third of their rows.",
    ),
    click.Option(
        ["--difficulty"],
        type=click.Choice(["easy", "medium", "hard"]),
        default=None,
        help="Keep only the rows in this third of the build's difficulty scores (the `difficulty` column, "
        "as `ssl4rl-data audit` scores rows); default: all rows.",
    ),
    click.Option(["--num-proc"], type=int, default=1, show_default=True, help="Worker processes."),
    click.Option(
        ["--ray"],
        is_flag=False,
        flag_value="auto",
        default=None,
        metavar="[ADDRESS]",
        help="Build the shards as tasks on a Ray cluster: HOST:PORT of its head, or no value (auto) for the "
        "cluster `ray start` made here, else a new local one. Sources and --out on storage every node sees; "
        "--num-proc is then unused (the cluster's CPUs run the shards).",
    ),
    click.Option(
        ["--image-format"],
        type=click.Choice(["jpeg", "png"]),
        default="jpeg",
        show_default=True,
        help="Encoding of the output images (JPEG q95 or PNG level 1).",
    ),
    click.Option(
        ["--max-side"],
        type=int,
        default=448,
        show_default=True,
        help="Downscale sources so the longer side is at most this many pixels (0: keep).",
    ),
    click.Option(
        ["--max-file-bytes"],
        type=int,
        default=DEFAULT_MAX_FILE_BYTES,
        show_default=True,
        help="Skip (and count) input files and table rows larger than this: memory stays bounded.",
    ),
    click.Option(
        ["--overwrite"],
        is_flag=True,
        help="Replace --out if it is an earlier dataset or an empty folder (other folders are refused), "
        "only once the new data is whole.",
    ),
    click.Option(["--quiet", "-q"], is_flag=True, help="No progress bars."),
    click.Option(
        ["--recipe"],
        type=click.Path(path_type=Path),
        default=None,
        help="A YAML recipe (recipes/data/) fixing every option; options given here override it.",
    ),
    click.Option(["--push-to-hub", "repo_id"], default=None, help="After building, push to this Hub dataset repo."),
    click.Option(
        ["--tag"], default=None, help="Tag of the pushed version (default: v + the content-derived version)."
    ),
    click.Option(
        ["--private"], is_flag=True, help="Create the Hub repo private (an existing public repo is refused)."
    ),
]
