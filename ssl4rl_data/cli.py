"""The `ssl4rl-data` command. Task options are generated from each task's Config dataclass."""

import dataclasses
import sys
import typing
from pathlib import Path

import click
import yaml
from click.core import ParameterSource

from . import registry
from .build import BuildOptions, build
from .card import portable_command, write_card
from .errors import UserError
from .files import DEFAULT_MAX_FILE_BYTES
from .source import parse_source
from .task import config_from_options
from .workers import keep_freed_memory


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ssl4rl")
def cli():
    """Turn plain images into verifiable RL data for vision-language models (SSL4RL)."""


class TaskGroup(click.Group):
    """`build TASK`: one subcommand per registered task, made on demand from its Config."""

    def list_commands(self, ctx):
        return list(registry.tasks())

    def get_command(self, ctx, name):
        task_cls = registry.tasks().get(name)
        return _task_command(task_cls) if task_cls else None

    def parse_args(self, ctx, args):
        if args and args[0].split("=")[0] == "--recipe":  # `build --recipe FILE`: the recipe names the task
            path = args[0].partition("=")[2] or (args[1] if len(args) > 1 else "")
            args = [load_recipe(path)["task"], *args]
        return super().parse_args(ctx, args)

    def resolve_command(self, ctx, args):
        if args and not args[0].startswith("-") and args[0] not in registry.tasks():
            raise UserError(f"unknown task {args[0]!r}; choose one of: {', '.join(registry.tasks())}")
        return super().resolve_command(ctx, args)


@cli.group(
    cls=TaskGroup,
    epilog="--recipe FILE (before or after TASK): a YAML recipe (recipes/data/) that fixes "
    "the task and every option; options given on the command line override it, e.g. "
    "ssl4rl-data build --recipe recipes/data/sample_jigsaw.yaml --seed 7",
)
def build_group():
    """Build a dataset of one pretext task: ssl4rl-data build TASK [OPTIONS], or build --recipe FILE."""


cli.add_command(build_group, name="build")


def _config_options(config_cls) -> list[click.Option]:
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
        help="Use at most this many unique source images, drawn uniformly by the seed (the same for every task).",
    ),
    click.Option(["--num-proc"], type=int, default=1, show_default=True, help="Worker processes."),
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
    click.Option(["--overwrite"], is_flag=True, help="Replace --out if it exists (only once the new data is whole)."),
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
    click.Option(["--private"], is_flag=True, help="Create the Hub repo private."),
]
NOT_IN_RECIPES = {"out", "overwrite", "quiet", "recipe", "repo_id", "tag", "private"}


def load_recipe(path) -> dict:
    """A recipe: `task`, an optional `description`, and build options by name (`sources` is a list)."""
    try:
        recipe = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError:
        raise UserError(f"recipe {path} cannot be read") from None
    except UnicodeDecodeError:
        raise UserError(f"recipe {path} is not a UTF-8 text file") from None
    except yaml.YAMLError as error:
        raise UserError(f"recipe {path} is not valid YAML: {str(error).splitlines()[0]}") from None
    if not isinstance(recipe, dict) or not isinstance(recipe.get("task"), str):
        raise UserError(f"recipe {path} must be a mapping with a `task` key")
    return recipe


def _task_command(task_cls) -> click.Command:
    config_names = [f.name for f in dataclasses.fields(task_cls.Config)]

    def run(**kwargs):
        overrides = _apply_recipe(kwargs)
        config = {name: kwargs.pop(name) for name in config_names}
        try:
            task = task_cls(config_from_options(task_cls, config))
        except ValueError as error:
            raise UserError(str(error)) from None
        _run_build(task, overrides=overrides, **kwargs)

    def _apply_recipe(kwargs) -> list[str]:
        """Fill options from the recipe unless given on the command line; return the overridden ones."""
        path = kwargs.pop("recipe")
        if path is None:
            return []
        recipe = load_recipe(path)
        if recipe.pop("task") != task_cls.name:
            raise UserError(f"recipe {path} is for another task; run `ssl4rl-data build --recipe {path}`")
        recipe.pop("description", None)
        allowed = set(kwargs) - NOT_IN_RECIPES
        unknown = sorted(set(recipe) - allowed)
        if unknown:
            raise UserError(f"recipe {path}: unknown option {unknown[0]!r} (options: {', '.join(sorted(allowed))})")
        context, overrides = click.get_current_context(), []
        params = {param.name: param for param in context.command.params}
        for name, value in recipe.items():
            if context.get_parameter_source(name) == ParameterSource.COMMANDLINE:
                overrides.append(f"{name}={kwargs[name]!r} (recipe: {value!r})")
                continue
            try:  # the same type checks as on the command line
                kwargs[name] = params[name].type_cast_value(context, value)
            except click.BadParameter as error:
                raise UserError(f"recipe {path}: {name}: {error.format_message()}") from None
        return overrides

    return click.Command(
        name=task_cls.name,
        callback=run,
        params=COMMON_OPTIONS + _config_options(task_cls.Config),
        help=(sys.modules[task_cls.__module__].__doc__ or "").strip(),
    )


def _run_build(
    task,
    sources,
    out,
    seed,
    limit,
    num_proc,
    image_format,
    max_side,
    max_file_bytes,
    overwrite,
    quiet,
    repo_id,
    tag,
    private,
    overrides,
):
    options = BuildOptions(seed=seed, limit=limit, image_format=image_format, max_side=max_side)
    parsed = [parse_source(spec) for spec in sources]
    out = out or Path("out") / task.name
    command = portable_command(click.get_current_context().find_root().obj["command"])
    keep_freed_memory()  # this process exists to build (see workers.keep_freed_memory)
    result = build(
        task,
        parsed,
        options,
        out,
        num_proc=num_proc,
        overwrite=overwrite,
        progress=not quiet,
        max_file_bytes=max_file_bytes,
        write_card=lambda folder, res: write_card(
            folder, res, task=task, options=options, command=command, overrides=overrides
        ),
    )
    _print_summary(result)
    if repo_id:
        _push_and_report(out, repo_id, tag, private)


def _print_summary(result):
    stats = result.stats
    rate = stats.rows / result.seconds if result.seconds else 0.0
    click.echo(
        f"wrote {stats.rows} rows to {result.out} (version {result.version}) "
        f"in {result.seconds:.1f} s, {rate:.1f} rows/s",
        err=True,
    )
    if stats.skipped:
        click.echo("skipped: " + ", ".join(f"{reason} {n}" for reason, n in sorted(stats.skipped.items())), err=True)
    if result.removed:
        click.echo(
            f"removed {len(result.removed)} stale partial build(s) of {result.out} (left by interrupted "
            f"builds of other inputs): {', '.join(p.name for p in result.removed)}",
            err=True,
        )
    duplicates = sum(scan.duplicates for scan in result.scans)
    if duplicates:
        click.echo(f"duplicate images dropped: {duplicates}", err=True)


def _push_and_report(folder, repo_id, tag, private):
    from .publish import push

    published = push(folder, repo_id, tag=tag, private=private)
    state = "pushed" if published.created else "already published, nothing pushed"
    click.echo(f"{state}: {published.repo_id} tag {published.tag} commit {published.commit}", err=True)
    click.echo(f"load it with: load_dataset({published.repo_id!r}, revision={published.tag!r})", err=True)


@cli.command("push")
@click.argument("folder", type=click.Path(path_type=Path))
@click.argument("repo_id")
@click.option("--tag", default=None, help="Tag of this version (default: v + the content-derived version).")
@click.option("--private", is_flag=True, help="Create the repo private.")
def push_command(folder, repo_id, tag, private):
    """Push a built dataset FOLDER to the Hub dataset repo REPO_ID as a tagged, immutable version."""
    _push_and_report(folder, repo_id, tag, private)


@cli.command()
def sources():
    """List the image sources."""
    for source_cls in registry.sources().values():
        click.echo((sys.modules[source_cls.__module__].__doc__ or source_cls.name).strip().splitlines()[0])


@cli.command()
@click.argument("dataset", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), default=Path("preview.png"), show_default=True)
@click.option("--rows", type=int, default=8, show_default=True, help="How many rows to show.")
def preview(dataset, out, rows):
    """Draw a contact sheet of some rows of a built DATASET folder, with their answers."""
    from .preview import save_contact_sheet

    save_contact_sheet(dataset, rows, out)
    click.echo(f"wrote {out}", err=True)


@cli.command("audit")
@click.argument("dataset", type=click.Path(path_type=Path))
@click.option(
    "--against",
    multiple=True,
    metavar="SPEC",
    help="Search the dataset's pictures in this source (e.g. mmbench:PATH), repeatable: overlaps of a "
    "held-out dataset are contamination; a dataset built from that benchmark is reported transductive.",
)
@click.option(
    "--out",
    "report_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Folder for audit.json, audit.md and plots. Default: DATASET-audit next to DATASET.",
)
@click.option(
    "--strict",
    is_flag=True,
    help="Exit 1 when a label fails, a blind baseline beats chance or a held-out dataset overlaps.",
)
@click.option("--num-proc", type=int, default=1, show_default=True, help="Worker processes.")
def audit_command(dataset, against, report_dir, strict, num_proc):
    """Audit a built DATASET: labels re-checked, answer balance, blind baselines, contamination; the result
    goes into its card."""
    from .audit import audit_and_report

    result, written = audit_and_report(dataset, against, report_dir, num_proc=num_proc)
    state = "passed" if result["passed"] else "problems found"
    click.echo(
        f"audit of {dataset}: {state} ({result['dataset']['rows']} rows, {result['seconds']} s); "
        f"report in {written[1]}",
        err=True,
    )
    for problem in result["problems"]:
        click.echo(f"  {problem}", err=True)
    if strict and not result["passed"]:
        raise click.exceptions.Exit(1)


@cli.command("calibrate")
@click.argument("dataset", type=click.Path(path_type=Path))
@click.option("--model", "model_path", required=True, help="Model folder or Hub id (Qwen2.5-VL family).")
@click.option("--k", type=int, default=8, show_default=True, help="Answers sampled per row (temperature 1).")
@click.option(
    "--keep",
    default=None,
    metavar="MIN..MAX",
    help="Write the rows whose pass rate lies in this band as a new dataset version (needs --out).",
)
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Folder of the new version (--keep).")
@click.option(
    "--report",
    type=click.Path(path_type=Path),
    default=None,
    help="Where pass rates go (calibration.parquet, calibration.json). Default: DATASET-calibration.",
)
@click.option("--max-new-tokens", type=int, default=512, show_default=True)
@click.option("--max-pixels", type=int, default=None, help="Image processor pixel bound (default: the model's).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--overwrite", is_flag=True, help="Replace --out if it exists.")
def calibrate_command(dataset, model_path, k, keep, out, report, max_new_tokens, max_pixels, seed, overwrite):
    """Pass rate of each row of DATASET under a model's sampled answers; --keep writes the learnable band."""
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    from .audit.calibrate import keep_band, parse_band, pass_rates

    band = parse_band(keep) if keep else None
    if band and out is None:
        raise UserError("--keep needs --out, the folder of the new dataset version")
    rates = pass_rates(dataset, model_path, k=k, max_new_tokens=max_new_tokens, max_pixels=max_pixels, seed=seed)
    report = report or Path(dataset).resolve().parent / f"{Path(dataset).resolve().name}-calibration"
    report.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rates), report / "calibration.parquet")
    zero = sum(r["zero_variance"] for r in rates) / max(1, len(rates))
    summary = {
        "model": model_path,
        "k": k,
        "rows": len(rates),
        "zero_variance": zero,
        "mean_pass_rate": sum(r["pass_rate"] for r in rates) / max(1, len(rates)),
    }
    (report / "calibration.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    click.echo(
        f"calibrated {len(rates)} rows: mean pass rate {summary['mean_pass_rate']:.3f}, "
        f"zero-variance groups {zero:.1%}; pass rates in {report}",
        err=True,
    )
    if band:
        record = keep_band(dataset, out, rates, band, model_path, k, overwrite=overwrite)
        calibration = record["calibration"]
        click.echo(
            f"kept {calibration['rows_kept']} of {calibration['rows_before']} rows in {out} (version "
            f"{record['version']}); zero-variance groups {calibration['zero_variance_before']:.1%} -> "
            f"{calibration['zero_variance_after']:.1%}",
            err=True,
        )


def main(argv=None) -> int:
    """Entry point: every user mistake becomes one line on stderr and a non-zero exit, never a traceback."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        code = cli.main(
            args=argv, prog_name="ssl4rl-data", standalone_mode=False, obj={"command": [*_program(), *map(str, argv)]}
        )
        if type(code) is int:  # click returns a command's Exit code (`audit --strict`) in this mode
            return code
    except click.exceptions.Exit as done:
        return done.exit_code
    except (click.exceptions.Abort, KeyboardInterrupt):  # click turns Ctrl-C into Abort
        click.echo("ssl4rl-data: interrupted; run the same command again to resume", err=True)
        return 130
    except UserError as error:
        click.echo(f"ssl4rl-data: error: {_one_line(str(error))}", err=True)
        return 1
    except click.ClickException as error:  # click's own: a bad option or value on the command line
        click.echo(f"ssl4rl-data: error: {_one_line(error.format_message())}", err=True)
        return error.exit_code
    except OSError as error:  # a full disk, a missing permission, a folder where a file should be
        click.echo(f"ssl4rl-data: error: {_one_line(str(error))}", err=True)
        return 1
    return 0


def _program() -> list[str]:
    """How this process was started, as the card records it: the console script, or `python -m` the module."""
    return ["python", "-m", "ssl4rl_data.cli"] if sys.argv[0].endswith("cli.py") else ["ssl4rl-data"]


def _one_line(message: str) -> str:
    """The promise is one line: a message that spans several is joined."""
    return "; ".join(line.strip() for line in message.splitlines() if line.strip())


if __name__ == "__main__":
    sys.exit(main())
