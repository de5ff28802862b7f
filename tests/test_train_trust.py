"""Training that cannot silently do the wrong thing: resume, precision, paper settings, exact mixtures, one-line mistakes."""

import doctest
import importlib.util
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
import yaml
from safetensors.torch import load_file, save_file
from test_train import grpo, weights

from ssl4rl_train import checks, launch, mixture, paper_settings, trainer
from ssl4rl_train import grpo as grpo_script
from ssl4rl_train.vlm import load_processor

ROOT = Path(__file__).resolve().parents[1]

VARYING = ["--extra_reward_funcs", f"{ROOT / 'tests' / 'varying_reward.py'}:token_sum_reward"]


@pytest.mark.parametrize("module", [checks, launch, mixture, paper_settings, trainer], ids=lambda m: m.__name__)
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_resume_ends_with_the_weights_of_an_uninterrupted_run(tmp_path, tiny_model, datasets_two_tasks):
    # 6 rows, one prompt per step: steps 1-6 are epoch 1, steps 7-8 epoch 2. One uninterrupted run saves every
    # step; resuming from checkpoint-2 (inside epoch 1) and from checkpoint-7 (inside epoch 2) must end where it ended.
    # Each resumed run is a fresh process, as a user's is; the uninterrupted one runs in this process.
    rotation = datasets_two_tasks[0]
    grpo(
        tmp_path / "straight",
        tiny_model,
        rotation,
        extra=[*VARYING, "--max_steps", "8", "--save_strategy", "steps", "--save_steps", "1"],
    )
    straight = weights(tmp_path / "straight")
    start = weights(tiny_model)
    assert any(not torch.equal(straight[k], start[k]) for k in start)  # a reward that varies moves the weights
    for checkpoint in ("checkpoint-2", "checkpoint-7"):
        out = tmp_path / f"from-{checkpoint}"
        state = grpo(
            out,
            tiny_model,
            rotation,
            extra=[*VARYING, "--max_steps", "8", "--resume_from_checkpoint", str(tmp_path / "straight" / checkpoint)],
            fresh_process=True,
        )
        assert state["global_step"] == 8
        resumed = weights(out)
        gap = max((resumed[k] - straight[k]).abs().max().item() for k in straight)
        assert gap < 1e-7, f"resumed from {checkpoint}: weights {gap:.2e} from the uninterrupted run"


def test_a_checkpoint_that_does_not_match_the_model_is_an_error(tmp_path, tiny_model):
    from transformers import AutoModelForImageTextToText

    model = AutoModelForImageTextToText.from_pretrained(tiny_model)
    model.save_pretrained(tmp_path / "good")  # saved under the legacy names (model.layers.*, visual.*)
    state = trainer.checkpoint_state_dict(model, str(tmp_path / "good"))
    in_memory = model.state_dict()
    assert set(in_memory) - set(state) <= set(model.all_tied_weights_keys)
    assert all(torch.equal(state[k], in_memory[k]) for k in state)

    saved = load_file(str(tmp_path / "good" / "model.safetensors"))
    dropped = sorted(k for k in saved if k.startswith("visual."))[0]
    (tmp_path / "bad").mkdir()
    save_file({k: v for k, v in saved.items() if k != dropped}, str(tmp_path / "bad" / "model.safetensors"))
    with pytest.raises(trainer.CheckpointMismatchError, match="1 missing keys"):
        trainer.checkpoint_state_dict(model, str(tmp_path / "bad"))
    save_file({**saved, "visual.extra.weight": torch.zeros(1)}, str(tmp_path / "bad" / "model.safetensors"))
    with pytest.raises(trainer.CheckpointMismatchError, match="1 unexpected"):
        trainer.checkpoint_state_dict(model, str(tmp_path / "bad"))


def test_epoch_shuffles_are_drawn_per_epoch_not_from_one_running_generator():
    sampler = trainer.EpochSeededRepeatSampler(list(range(50)), mini_repeat_count=1, batch_size=1, seed=3)
    orders = {}
    for epoch in (0, 1, 2):
        sampler.set_epoch(epoch)
        orders[epoch] = list(sampler)
    fresh = trainer.EpochSeededRepeatSampler(list(range(50)), mini_repeat_count=1, batch_size=1, seed=3)
    fresh.set_epoch(2)  # a process resumed in epoch 3 draws epoch 3's order, not epoch 1's
    assert list(fresh) == orders[2] != orders[0]
    plain = trainer.RepeatSampler(list(range(50)), mini_repeat_count=1, batch_size=1, seed=3)
    assert list(plain) == orders[0]  # epoch 0 is TRL's own order: fresh runs are unchanged


def grpo_cli(capsys, *args):
    """grpo.py's command line in-process: (exit code, stderr)."""
    with pytest.raises(SystemExit) as exit_info:
        grpo_script.cli([str(a) for a in args])
    return exit_info.value.code, capsys.readouterr().err


BASE = ["--config", ROOT / "recipes/train/tiny_cpu.yaml", "--output_dir", "/tmp/ssl4rl-unused"]


MISTAKES = [
    ("typo", ["--dataset_name", "out/rotaton"], "no such local folder, and no such Hub dataset"),
    ("not a repo id", ["--dataset_name", "out/data/rotaton"], "no such folder, and not a Hub repo id"),
    ("hub revision", ["--dataset_name", "tester/rot@v9"], "no such local folder"),
    ("weights", ["--dataset_name", "{rot}", "{jig}", "--dataset_weights", "1"], "has 1 weights for 2 datasets"),
    ("local revision", ["--dataset_name", "{rot}@v1"], "is a local folder, which has no revisions"),
    ("bf16 full fine-tune", ["--dataset_name", "{rot}", "--dtype", "bfloat16"], "keeps no fp32 master weights"),
    (
        "checkpoint inside a generation batch",
        [
            "--dataset_name",
            "{rot}",
            "--save_strategy",
            "steps",
            "--save_steps",
            "3",
            "--steps_per_generation",
            "2",
        ],
        "not a multiple of the 2 optimizer updates",
    ),
    (
        "resume with nothing saved",
        ["--dataset_name", "{rot}", "--resume_from_checkpoint", "true"],
        "no checkpoint-* folder",
    ),
    ("batch", ["--dataset_name", "{rot}", "--per_device_train_batch_size", "3"], "divisible"),
    pytest.param(
        "vllm missing",
        ["--dataset_name", "{rot}", "--use_vllm", "true"],
        "--use_vllm true needs vLLM",
        marks=pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vLLM is installed"),
    ),
    (
        "reward file",
        ["--dataset_name", "{rot}", "--extra_reward_funcs", "rewards/mine.py:score"],
        "cannot load it",
    ),
    (
        "reward module",
        ["--dataset_name", "{rot}", "--extra_reward_funcs", "no_such_module.score"],
        "cannot load it",
    ),
]


@pytest.mark.parametrize("case, args, message", MISTAKES)
def test_user_mistakes_end_in_one_line(capsys, hub, tiny_model, datasets_two_tasks, case, args, message):
    paths = {"rot": datasets_two_tasks[0], "jig": datasets_two_tasks[1]}
    args = [str(a).format(**paths) for a in args]
    code, err = grpo_cli(capsys, *BASE, "--model_name_or_path", tiny_model, *args)
    assert code == 2 and message in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


@pytest.mark.parametrize("case, args, message", MISTAKES)
def test_validate_only_finds_every_mistake(capsys, hub, tiny_model, datasets_two_tasks, case, args, message):
    """`--validate_only true` makes every check training makes before the model loads: no mistake is "valid"."""
    paths = {"rot": datasets_two_tasks[0], "jig": datasets_two_tasks[1]}
    args = [str(a).format(**paths) for a in args]
    code, err = grpo_cli(capsys, *BASE, "--model_name_or_path", tiny_model, *args, "--validate_only", "true")
    assert code == 2 and message in err, err


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32], ids=str)
def test_bf16_weights_lose_most_adamw_updates_at_the_paper_learning_rate(tiny_model, dtype):
    # Why check_precision exists: the same 3 AdamW steps at lr 1e-6 move almost no bf16 weight.
    from transformers import AutoModelForImageTextToText

    torch.manual_seed(0)
    model = AutoModelForImageTextToText.from_pretrained(tiny_model, dtype=dtype)
    params = dict(model.named_parameters())
    start = {k: v.detach().clone() for k, v in params.items()}
    touched = {k: torch.zeros_like(v, dtype=torch.bool) for k, v in params.items()}
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-6, weight_decay=0.01)
    ids = torch.randint(0, 256, (2, 32))
    for _ in range(3):
        model(input_ids=ids, labels=ids).loss.backward()
        for name, param in params.items():
            if param.grad is not None:  # the vision tower sees no image here
                touched[name] |= param.grad != 0
        optimizer.step()
        optimizer.zero_grad()
    changed = sum(((p.detach() != start[k]) & touched[k]).sum().item() for k, p in params.items())
    share = changed / sum(t.sum().item() for t in touched.values())
    assert share < 0.1 if dtype == torch.bfloat16 else share > 0.99


def test_bf16_weights_are_accepted_with_lora_or_sharded_fp32_masters(monkeypatch):
    from types import SimpleNamespace as NS

    training = NS(deepspeed=None, fsdp="", bf16=True, fp16=False)
    checks.check_precision(training, NS(use_peft=True, dtype="bfloat16"))
    monkeypatch.setenv("ACCELERATE_USE_DEEPSPEED", "true")
    checks.check_precision(training, NS(use_peft=False, dtype="bfloat16"))
    monkeypatch.setenv("ACCELERATE_USE_DEEPSPEED", "false")
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    checks.check_precision(training, NS(use_peft=False, dtype="bfloat16"))  # FSDP upcasts under mixed precision
    with pytest.raises(checks.RunConfigError):
        checks.check_precision(
            NS(deepspeed=None, fsdp="", bf16=False, fp16=False), NS(use_peft=False, dtype="bfloat16")
        )


def write_dataset(folder: Path, rows: list[dict]) -> Path:
    (folder / "data").mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows), folder / "data" / "train-00000-of-00001.parquet")
    return folder


def read_rows(folder: Path) -> list[dict]:
    return pq.read_table(sorted((folder / "data").glob("*.parquet"))[0]).to_pylist()


def test_weights_hold_exactly_after_each_dataset_drops_its_over_long_prompts(tmp_path, tiny_model, datasets_two_tasks):
    rotation, jigsaw = (read_rows(folder) for folder in datasets_two_tasks)
    only_rotation = write_dataset(tmp_path / "a", rotation[:5])
    # B: 3 short rotation rows and 6 jigsaw rows of 4 images each, which the limit below drops.
    mixed = write_dataset(tmp_path / "b", [{**row, "task": "rotation-b"} for row in rotation[:3]] + jigsaw)
    processor = load_processor(str(tiny_model))
    lengths = [
        grpo_script.prompt_tokens(processor, mixture.load_one(mixture.DatasetSpec.parse(str(f)), "train")[0])
        for f in (only_rotation, mixed)
    ]
    limit = max(lengths[0])
    assert max(lengths[1][:3]) <= limit < min(lengths[1][3:])
    args = grpo_script.SSL4RLArguments(
        dataset_name=[str(only_rotation), str(mixed)], dataset_weights=[1, 2], max_prompt_tokens=limit
    )
    specs = [mixture.DatasetSpec.parse(name) for name in args.dataset_name]
    dataset, records = grpo_script.training_mixture(args, specs, processor, seed=0)
    counts = {task: dataset["task"].count(task) for task in set(dataset["task"])}
    assert counts == {"rotation": 5, "rotation-b": 10}  # 1:2 exactly, counted on the rows kept
    assert [r["rows_kept"] for r in records] == [5, 3] and [r["rows_in_mixture"] for r in records] == [5, 10]


def test_local_folders_load_their_own_rows_whatever_their_name(tmp_path, run_cli):
    # `datasets` caches a folder by its card's relative patterns: a/jigsaw would load b/jigsaw's rows, and a folder
    # rebuilt in place its old ones.
    for folder, grid in (("a", "2"), ("b", "3")):
        assert (
            run_cli("build", "jigsaw", "--grid", grid, "--limit", "3", "--out", tmp_path / folder / "jigsaw", "-q")[0]
            == 0
        )
    tiles = {
        folder: len(
            mixture.load_one(mixture.DatasetSpec.parse(str(tmp_path / folder / "jigsaw")), "train")[0][0]["images"]
        )
        for folder in ("a", "b")
    }
    assert tiles == {"a": 4, "b": 9}
    run_cli(
        "build", "jigsaw", "--grid", "2x3", "--limit", "3", "--out", tmp_path / "b" / "jigsaw", "-q", "--overwrite"
    )
    assert (
        len(mixture.load_one(mixture.DatasetSpec.parse(str(tmp_path / "b" / "jigsaw")), "train")[0][0]["images"]) == 6
    )
    with pytest.raises(mixture.MixtureError, match="no data/test-"):
        mixture.load_one(mixture.DatasetSpec.parse(str(tmp_path / "a" / "jigsaw")), "test")


def test_mixture_is_exact_and_seeded():
    assert mixture.mixture_counts([6, 10], [1, 1]) == [10, 10]
    assert mixture.mixture_counts([100, 7], [0.9, 0.1]) == [100, 11]  # 11.1 rows: the nearest whole row
    first = mixture.mixture_indices(7, 17, seed=4)
    assert sorted(first.tolist()) == sorted(list(range(7)) * 2 + first[14:].tolist())
    assert first.tolist() == mixture.mixture_indices(7, 17, seed=4).tolist()
    assert first.tolist() != mixture.mixture_indices(7, 17, seed=5).tolist()


RECIPES = sorted((ROOT / "recipes/train").glob("*.yaml"))


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.stem)
def test_every_recipe_pins_the_paper_algorithm(recipe):
    settings = yaml.safe_load(recipe.read_text())
    paper_scale = recipe.stem.startswith("qwen2_5_vl_3b")
    for name, value in paper_settings.expected_settings(recipe.stem, paper_scale).items():
        assert name in settings, f"{recipe.name} leaves {name} to TRL's default"
        assert settings[name] == value, f"{recipe.name}: {name} is {settings[name]!r}, the paper's run is {value!r}"
    if paper_scale:
        from types import SimpleNamespace as NS

        per_generation = checks.updates_per_generation(
            NS(
                **{
                    k: settings.get(k)
                    for k in ("steps_per_generation", "gradient_accumulation_steps", "num_iterations")
                }
            )
        )
        assert per_generation == 4  # the paper's 4 updates per generation batch
        assert settings["save_steps"] % per_generation == 0
        assert "step 300" in recipe.read_text() and "1,200" in recipe.read_text()
        trains_full = not settings.get("use_peft")
        assert not (trains_full and settings["dtype"] == "bfloat16" and "zero3" not in recipe.read_text())


def test_the_readme_table_is_the_pinned_settings():
    assert paper_settings.markdown_table() in (ROOT / "README.md").read_text()
