"""The `ssl4rl-data` command. Task options are generated from each task's Config dataclass."""

import dataclasses
import sys
from pathlib import Path

import click
import yaml
from click.core import ParameterSource

from . import __version__, registry
from .build import BuildOptions, build
from .card import portable_command, write_card
from .cli_audit import audit_command, calibrate_command
from .cli_options import COMMON_OPTIONS, config_options
from .errors import UserError
from .source import parse_source
from .task import config_from_options
from .workers import keep_freed_memory


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(version=__version__, prog_name="ssl4rl-data")  # the generator builds record, not pip's metadata
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
        params=COMMON_OPTIONS + config_options(task_cls.Config),
        help=(sys.modules[task_cls.__module__].__doc__ or "").strip(),
    )


def _run_build(
    task,
    sources,
    out,
    seed,
    limit,
    difficulty,
    num_proc,
    image_format,
    max_side,
    max_file_bytes,
    ray,
    overwrite,
    quiet,
    repo_id,
    tag,
    private,
    overrides,
):
    options = BuildOptions(seed=seed, limit=limit, image_format=image_format, max_side=max_side, difficulty=difficulty)
    engine = None
    if ray is not None:  # ray is imported only here: every other command starts without it
        from .ray_engine import RayEngine, absolute_source

        engine, sources = RayEngine(ray), [absolute_source(spec) for spec in sources]
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
        engine=engine,
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
    if result.difficulty:
        tiered = result.difficulty
        click.echo(
            f"difficulty {tiered['tier']}: kept {tiered['rows_kept']} of {tiered['rows_before']} rows (score cuts "
            f"{tiered['cuts'][0]:.4g} and {tiered['cuts'][1]:.4g}"
            + (f"; {tiered['unscored']} rows without a score are in no tier)" if tiered["unscored"] else ")"),
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
@click.option("--private", is_flag=True, help="Create the repo private (an existing public repo is refused).")
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


cli.add_command(audit_command)
cli.add_command(calibrate_command)


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
