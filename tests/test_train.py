"""train/grpo.py on CPU with a tiny Qwen2.5-VL and datasets built by ssl4rl-data.

Trains in this process through grpo.py's command line (`cli`), or, where a fresh process is what is
checked (a resumed run), in their own; `accelerate launch` itself is run by tests/test_readme.py (the
README's smoke run) and tests/test_learning_check.py, with the command of ssl4rl_train.launch.
"""

import json
import os
import subprocess
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from ssl4rl_train import grpo as grpo_script
from ssl4rl_train.launch import grpo_command
from ssl4rl_train.vlm import load_processor

ROOT = Path(__file__).resolve().parents[1]


def grpo(output, model, *datasets, extra=(), fresh_process=False):
    """Train with train/grpo.py's command line and the tiny CPU recipe; returns the saved trainer state."""
    args = [
        "--config",
        ROOT / "recipes/train/tiny_cpu.yaml",
        "--model_name_or_path",
        model,
        "--output_dir",
        output,
        "--dataset_name",
        *datasets,
        *extra,
    ]
    if fresh_process:
        command = grpo_command(*args, accelerate=False)
        result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=os.environ.copy(), timeout=600)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    else:
        grpo_script.cli([str(a) for a in args])
    return json.loads((Path(output) / "trainer_state.json").read_text())


def weights(folder):
    return load_file(str(Path(folder) / "model.safetensors"))


def test_two_tasks_train_log_per_task_and_the_model_reloads(tmp_path, tiny_model, datasets_two_tasks):
    # Two prompts per step drawn from both datasets: batches mix 2-image and 4-image prompts.
    state = grpo(
        tmp_path / "run",
        tiny_model,
        *datasets_two_tasks,
        extra=[
            "--max_prompt_tokens",
            "1024",
            "--per_device_train_batch_size",
            "4",
            "--dataset_weights",
            "1",
            "1",
            "--max_steps",
            "6",
        ],
    )
    logged = {key for entry in state["log_history"] for key, value in entry.items() if value is not None}
    assert {"rewards/rotation/mean", "rewards/jigsaw/mean"} <= logged
    assert state["global_step"] == 6
    recorded = json.loads((tmp_path / "run" / "ssl4rl_datasets.json").read_text())
    assert [r["rows_in_mixture"] for r in recorded["resolved"]] == [6, 6]  # weights 1:1, exactly
    assert all(r["local"] and r["commit"] is None for r in recorded["resolved"])
    from transformers import AutoModelForImageTextToText

    processor = load_processor(str(tmp_path / "run"))
    model = AutoModelForImageTextToText.from_pretrained(tmp_path / "run")
    assert type(processor).__name__ == "Qwen2_5_VLProcessor"
    saved = json.loads((tmp_path / "run" / "processor_config.json").read_text())
    assert saved["processor_class"] == "Qwen2_5_VLProcessor"  # an ordinary checkpoint, loadable anywhere
    messages = [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]
    inputs = processor.apply_chat_template(
        messages, add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt"
    )
    assert model.generate(**inputs, max_new_tokens=2, do_sample=False).shape[1] > inputs["input_ids"].shape[1]


def test_train_from_a_hub_dataset_pinned_by_tag(tmp_path, tiny_model, hub, run_cli):
    code, err = run_cli(
        "build",
        "rotation",
        "--limit",
        "4",
        "--out",
        tmp_path / "d",
        "-q",
        "--push-to-hub",
        "tester/rot",
        "--tag",
        "v1",
    )
    assert code == 0, err
    run_cli(
        "build",
        "rotation",
        "--limit",
        "4",
        "--seed",
        "9",
        "--out",
        tmp_path / "d2",
        "-q",
        "--push-to-hub",
        "tester/rot",
        "--tag",
        "v2",
    )
    state = grpo(tmp_path / "run", tiny_model, "tester/rot@v1")
    assert state["global_step"] == 3
    from huggingface_hub import HfApi

    recorded = json.loads((tmp_path / "run" / "ssl4rl_datasets.json").read_text())
    assert recorded["datasets"] == ["tester/rot@v1"]
    v1 = HfApi().dataset_info("tester/rot", revision="v1").sha
    assert v1 != HfApi().dataset_info("tester/rot").sha  # main has moved on to v2 since
    assert recorded["resolved"][0]["commit"] == v1 and recorded["resolved"][0]["rows_kept"] == 4


@pytest.mark.parametrize("recipe", sorted((ROOT / "recipes/train").glob("*.yaml")), ids=lambda p: p.stem)
def test_training_recipes_parse(recipe):
    from trl import GRPOConfig, ModelConfig, TrlParser

    from ssl4rl_train import grpo

    args = [
        "--config",
        str(recipe),
        "--dataset_name",
        "x",
        "--output_dir",
        "/tmp/unused",
        "--model_name_or_path",
        "m",
        "--use_cpu",
        "true",
        "--bf16",
        "false",
        "--use_vllm",
        "false",
    ]  # the GPU settings, checked on a CPU
    script, training, _ = TrlParser((grpo.SSL4RLArguments, GRPOConfig, ModelConfig)).parse_args_and_config(args)
    if "paper" in recipe.stem:  # 512 prompts x 5 generations per batch on 8 GPUs; 128 prompts per update
        assert training.per_device_train_batch_size * training.steps_per_generation * 8 == 512 * 5
        assert training.per_device_train_batch_size * training.gradient_accumulation_steps * 8 == 128 * 5
        assert (training.learning_rate, training.beta, training.epsilon, training.num_generations) == (
            1e-6,
            0.01,
            0.2,
            5,
        )
        assert training.max_completion_length == 2048 and script.max_prompt_tokens == 1024


def test_processor_keeps_the_image_mask_aligned_in_padded_batches(tiny_model):
    from PIL import Image

    processor = load_processor(str(tiny_model))
    prompts = [
        [{"role": "user", "content": [{"type": "image"}] * count + [{"type": "text", "text": "q"}]}]
        for count in (2, 4)
    ]
    texts = [processor.apply_chat_template(p, tokenize=False, add_generation_prompt=True) for p in prompts]
    images = [[Image.new("RGB", (64, 64))] * 2, [Image.new("RGB", (96, 64))] * 4]
    batch = processor(text=texts, images=images, padding=True, return_tensors="pt")
    assert batch["attention_mask"][0, 0] == 0  # the shorter prompt is padded on the left
    image_tokens = batch["input_ids"] == processor.image_token_id
    assert torch.equal(image_tokens, batch["mm_token_type_ids"] == 1)
