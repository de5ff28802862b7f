"""The README's commands that no test runs (GPU machines, user data, a real Hub) are valid as written.

tests/test_readme.py runs the marked blocks. Every other bash block is parsed here, command by command,
by the programs' own parsers: `ssl4rl-data` by its click commands (options, choices, arguments),
`train/evaluate.py` by its argparse parser, `accelerate launch` by accelerate's, and what it launches,
`train/grpo.py`, by grpo.py's: parsed with its recipe and put through every check made before the model
and the data load (`--validate_only`), under the distributed setting the accelerate config selects.
Files of the repository they name (recipes, configs, scripts) must exist; user data and models need not
(the Hub datasets they name are looked up on the local Hub, where the test makes them, empty).
"""

import re
import shlex
import subprocess
from pathlib import Path

import click
import pytest
from test_readme import MARK

from ssl4rl_data.cli import cli
from ssl4rl_train import evaluate
from ssl4rl_train import grpo as grpo_script
from ssl4rl_train.evals import benchmarks

ROOT = Path(__file__).resolve().parents[1]
REPO_PATH = re.compile(r"^(recipes|train|benchmarks)/")
PLACEHOLDERS = {"N": "2"}  # a number the user picks


def unmarked_commands() -> list[list[str]]:
    """Each command of the README's bash blocks that test_readme.py does not run, as words (comments dropped,
    continuation lines joined, `a && b` split; `[...]` marks an optional part, kept without its brackets, and a
    `...` that is no option's value stands for more of the same)."""
    text = (ROOT / "README.md").read_text()
    commands = []
    for marker, block in re.findall(r"(<!--[^\n]*-->\n)?```bash\n(.*?)```", text, flags=re.S):
        if marker.startswith(MARK):
            continue
        for line in block.replace("\\\n", " ").splitlines():
            words = [PLACEHOLDERS.get(w, w) for w in map(unbracketed, shlex.split(line, comments=True))]
            words = [w for i, w in enumerate(words) if w and not (w == "..." and not words[i - 1].startswith("--"))]
            while words and re.fullmatch(r"[A-Z_]+=\S*", words[0]):  # VAR=value before the command
                words.pop(0)
            command = []
            for word in [*words, "&&"]:
                if word == "&&":
                    commands.append(command) if command else None
                    command = []
                else:
                    command.append(word)
    return commands


def unbracketed(word: str) -> str:
    """`[--tag` -> `--tag`, `v1]` -> `v1`; `.[train,dev]` stays."""
    word = word.removeprefix("[")
    return word.removesuffix("]") if word.count("]") > word.count("[") else word


def program(command: list[str]) -> str:
    first = Path(command[0]).name
    if first in ("python", "python3", "bash") and len(command) > 1:
        return command[1]
    return f"{first} {command[1]}" if first == "accelerate" else first


COMMANDS = unmarked_commands()


def ours(name: str) -> list[list[str]]:
    return [c for c in COMMANDS if program(c) == name]


def test_the_readme_names_repository_files_that_exist():
    named = {word.split("=", 1)[-1] for command in COMMANDS for word in command}
    for path in sorted(p for p in named if REPO_PATH.match(p)):
        assert (ROOT / path).exists(), f"the README names {path}, which does not exist"
    assert ours("ssl4rl-data") and ours("train/evaluate.py") and ours("accelerate launch")


@pytest.mark.parametrize("command", ours("ssl4rl-data"), ids=" ".join)
def test_ssl4rl_data_commands_parse(command):
    group, args = cli, [str(ROOT / a) if REPO_PATH.match(a) else a for a in command[1:]]
    context = group.make_context("ssl4rl-data", list(args))
    while isinstance(group, click.Group):  # down to the command: build TASK, push, audit, ...
        name, group, args = group.resolve_command(context, [*context._protected_args, *context.args])
        context = group.make_context(name, list(args), parent=context)
    assert not context.args, f"unused words {context.args} in {' '.join(command)}"


@pytest.mark.parametrize("command", ours("train/evaluate.py"), ids=" ".join)
def test_evaluate_commands_parse_and_name_known_benchmarks(command):
    args = evaluate.command_line().parse_args(command[2:])
    for spec in args.benchmark:
        assert spec == "..." or spec.partition(":")[0] in benchmarks(), spec


# What a GPU machine has and this one lacks, set on the command line for the check: no GPU (TrainingArguments
# refuses bf16 without one unless told it runs on the CPU) and no vLLM.
NO_GPU = ["--use_cpu", "true", "--use_vllm", "false"]


def publish_names(hub, names: list[str]) -> None:
    """The Hub datasets (and tags) `--dataset_name` names, made on the local Hub, empty: --validate_only looks
    each up, as training does before it loads anything."""
    from huggingface_hub import HfApi

    api = HfApi()
    for spec in map(grpo_script.DatasetSpec.parse, names):
        if not spec.local:
            api.create_repo(spec.path, repo_type="dataset", exist_ok=True)
            if spec.revision and spec.revision not in {
                t.name for t in api.list_repo_refs(spec.path, repo_type="dataset").tags
            }:
                api.create_tag(spec.path, tag=spec.revision, repo_type="dataset")


@pytest.mark.parametrize("command", ours("accelerate launch"), ids=" ".join)
def test_training_commands_pass_grpo_checks_under_their_launch(command, monkeypatch, capsys, hub):
    from accelerate.commands.config.config_args import load_config_from_file
    from accelerate.commands.launch import launch_command_parser
    from trl import GRPOConfig, ModelConfig, TrlParser

    launch = launch_command_parser().parse_args(command[2:])
    assert launch.training_script == "train/grpo.py" and (ROOT / launch.training_script).is_file()
    distributed = "NO"
    if launch.config_file:
        distributed = load_config_from_file(str(ROOT / launch.config_file)).distributed_type.name
    args = [a if not REPO_PATH.match(a) else str(ROOT / a) for a in launch.training_script_args]
    # Parsed as grpo.py parses (recipe and flags), then checked as it checks before loading anything, with the
    # variable `accelerate launch` sets for a DeepSpeed or FSDP config (parsing under it needs DeepSpeed itself).
    parsed = TrlParser((grpo_script.SSL4RLArguments, GRPOConfig, ModelConfig)).parse_args_and_config([*args, *NO_GPU])
    if distributed in ("DEEPSPEED", "FSDP"):
        monkeypatch.setenv(f"ACCELERATE_USE_{distributed}", "true")
    grpo_script.validate(*parsed)
    grpo_script.resume_checkpoint(parsed[1])
    if distributed == "NO":  # the same through grpo.py's own --validate_only, which looks the Hub names up
        publish_names(hub, parsed[0].dataset_name)
        assert grpo_script.cli([*args, *NO_GPU, "--validate_only", "true"]) is None
        assert "grpo.py: valid:" in capsys.readouterr().out


def test_validate_only_refuses_the_paper_recipe_outside_deepspeed(capsys):
    args = ["--config", str(ROOT / "recipes/train/qwen2_5_vl_3b_paper.yaml"), "--dataset_name", "you/rot@v1"]
    with pytest.raises(SystemExit) as exit_info:
        grpo_script.cli([*args, *NO_GPU, "--validate_only", "true"])
    assert exit_info.value.code == 2 and "keeps no fp32 master weights" in capsys.readouterr().err


def test_gpu_check_options_are_the_scripts_own():
    documented = subprocess.run(
        ["bash", str(ROOT / "benchmarks/gpu_check.sh"), "--help"], capture_output=True, text=True, check=True
    ).stdout
    used = {word for command in ours("benchmarks/gpu_check.sh") for word in command[2:]}
    assert used and all(option in documented for option in used), used
