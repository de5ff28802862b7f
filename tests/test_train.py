"""`accelerate launch train/grpo.py` on CPU with a tiny Qwen2.5-VL and datasets built by ssl4rl-data."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "train"))
from synthetic_qwen import build_synthetic_qwen  # noqa: E402
from vlm import load_processor  # noqa: E402


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return build_synthetic_qwen(tmp_path_factory.mktemp("tiny-qwen"), "tiny")[0]


@pytest.fixture(scope="module")
def datasets_two_tasks(tmp_path_factory):
    from ssl4rl_data.cli import main

    root = tmp_path_factory.mktemp("data")
    for task in ("rotation", "jigsaw"):
        assert main(["build", task, "--limit", "6", "--out", str(root / task), "-q"]) == 0
    return root / "rotation", root / "jigsaw"


def grpo(output, model, *datasets, extra=()):
    command = [sys.executable, "-m", "accelerate.commands.launch", "--cpu", "--num_processes", "1",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
               str(ROOT / "train" / "grpo.py"), "--config", str(ROOT / "recipes/train/tiny_cpu.yaml"),
               "--model_name_or_path", str(model), "--output_dir", str(output),
               "--dataset_name", *map(str, datasets), *extra]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=os.environ.copy(), timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return json.loads((Path(output) / "trainer_state.json").read_text())


def weights(folder):
    return load_file(str(Path(folder) / "model.safetensors"))


def test_two_tasks_train_log_per_task_and_the_model_reloads(tmp_path, tiny_model, datasets_two_tasks):
    # Two prompts per step drawn from both datasets: batches mix 2-image and 4-image prompts.
    state = grpo(tmp_path / "run", tiny_model, *datasets_two_tasks,
                 extra=["--max_prompt_tokens", "1024", "--per_device_train_batch_size", "4", "--dataset_weights", "1", "1",
                        "--max_steps", "6"])
    logged = {key for entry in state["log_history"] for key, value in entry.items() if value is not None}
    assert {"rewards/rotation/mean", "rewards/jigsaw/mean"} <= logged
    assert state["global_step"] == 6
    from transformers import AutoModelForImageTextToText

    processor = load_processor(str(tmp_path / "run"))
    model = AutoModelForImageTextToText.from_pretrained(tmp_path / "run")
    assert type(processor).__name__ == "Qwen2_5_VLProcessor"
    saved = json.loads((tmp_path / "run" / "processor_config.json").read_text())
    assert saved["processor_class"] == "Qwen2_5_VLProcessor"  # an ordinary checkpoint, loadable anywhere
    messages = [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]
    inputs = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=True,
                                           return_tensors="pt")
    assert model.generate(**inputs, max_new_tokens=2, do_sample=False).shape[1] > inputs["input_ids"].shape[1]


def test_a_varying_reward_changes_the_weights(tmp_path, tiny_model, datasets_two_tasks):
    grpo(tmp_path / "run", tiny_model, datasets_two_tasks[0],
         extra=["--extra_reward_funcs", "tests.varying_reward.token_sum_reward"])
    before, after = weights(tiny_model), weights(tmp_path / "run")
    changed = [name for name in before if not torch.equal(before[name], after[name])]
    assert changed, "a reward that varies must move some weights"


def test_train_from_a_hub_dataset_pinned_by_tag(tmp_path, tiny_model, hub, run_cli):
    code, err = run_cli("build", "rotation", "--limit", "4", "--out", tmp_path / "d", "-q",
                        "--push-to-hub", "tester/rot", "--tag", "v1")
    assert code == 0, err
    run_cli("build", "rotation", "--limit", "4", "--seed", "9", "--out", tmp_path / "d2", "-q",
            "--push-to-hub", "tester/rot", "--tag", "v2")
    state = grpo(tmp_path / "run", tiny_model, "tester/rot@v1")
    assert state["global_step"] == 3
    assert json.loads((tmp_path / "run" / "ssl4rl_datasets.json").read_text())["datasets"] == ["tester/rot@v1"]


def test_resume_from_the_last_checkpoint(tmp_path, tiny_model, datasets_two_tasks):
    first = grpo(tmp_path / "run", tiny_model, datasets_two_tasks[1],
                 extra=["--max_steps", "2", "--save_strategy", "steps", "--save_steps", "2"])
    assert first["global_step"] == 2 and (tmp_path / "run" / "checkpoint-2").is_dir()
    resumed = grpo(tmp_path / "run", tiny_model, datasets_two_tasks[1],
                   extra=["--max_steps", "3", "--resume_from_checkpoint", "true"])
    assert resumed["global_step"] == 3
    steps = [entry["step"] for entry in resumed["log_history"] if "loss" in entry]
    assert steps == [1, 2, 3]  # steps 1-2 come from the checkpoint; only step 3 was trained again


@pytest.mark.parametrize("recipe", sorted((ROOT / "recipes/train").glob("*.yaml")), ids=lambda p: p.stem)
def test_training_recipes_parse(recipe):
    import grpo
    from trl import GRPOConfig, ModelConfig, TrlParser

    args = ["--config", str(recipe), "--dataset_name", "x", "--output_dir", "/tmp/unused", "--model_name_or_path", "m",
            "--use_cpu", "true", "--bf16", "false", "--use_vllm", "false"]  # the GPU settings, checked on a CPU
    script, training, _ = TrlParser((grpo.SSL4RLArguments, GRPOConfig, ModelConfig)).parse_args_and_config(args)
    if "paper" in recipe.stem:  # 512 prompts x 5 generations per batch on 8 GPUs; 128 prompts per update
        assert training.per_device_train_batch_size * training.steps_per_generation * 8 == 512 * 5
        assert training.per_device_train_batch_size * training.gradient_accumulation_steps * 8 == 128 * 5
        assert (training.learning_rate, training.beta, training.epsilon, training.num_generations) == (1e-6, 0.01, 0.2, 5)
        assert training.max_completion_length == 2048 and script.max_prompt_tokens == 1024


def test_processor_keeps_the_image_mask_aligned_in_padded_batches(tiny_model):
    from PIL import Image

    processor = load_processor(str(tiny_model))
    prompts = [[{"role": "user", "content": [{"type": "image"}] * count + [{"type": "text", "text": "q"}]}]
               for count in (2, 4)]
    texts = [processor.apply_chat_template(p, tokenize=False, add_generation_prompt=True) for p in prompts]
    images = [[Image.new("RGB", (64, 64))] * 2, [Image.new("RGB", (96, 64))] * 4]
    batch = processor(text=texts, images=images, padding=True, return_tensors="pt")
    assert batch["attention_mask"][0, 0] == 0  # the shorter prompt is padded on the left
    image_tokens = batch["input_ids"] == processor.image_token_id
    assert torch.equal(image_tokens, batch["mm_token_type_ids"] == 1)
