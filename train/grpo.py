"""GRPO on SSL4RL datasets with TRL.

    accelerate launch train/grpo.py --config recipes/train/qwen2_5_vl_3b_paper.yaml
    accelerate launch train/grpo.py --model_name_or_path Qwen/Qwen2.5-VL-3B-Instruct \
        --dataset_name you/ssl4rl-rotation@v1a2b3c you/ssl4rl-jigsaw --dataset_weights 0.5 0.5 --output_dir out/run

Every GRPOConfig and ModelConfig flag works (`--use_cpu`, `--max_steps`, `--num_generations`,
`--use_peft`, ...). Rewards come from `ssl4rl_data.rewards`, one per task found in the data, routed by
each row's `task` column, so a mixture of tasks trains in one run and each task's mean reward is
logged as `rewards/<task>/mean`.
"""

import importlib
import io
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from datasets import Image, List, concatenate_datasets, interleave_datasets, load_dataset
from PIL import Image as PILImage
from transformers.trainer_utils import get_last_checkpoint
from trl import GRPOConfig, GRPOTrainer, ModelConfig, TrlParser, get_peft_config

from ssl4rl_data.rewards import TaskAccuracy, format_reward
from vlm import load_processor


@dataclass
class SSL4RLArguments:
    dataset_name: list[str] = field(
        default_factory=list,
        metadata={"help": "Datasets built by ssl4rl-data: Hub repo ids or local folders, space-separated; pin a "
                          "version with REPO@REVISION (e.g. you/ssl4rl-jigsaw@v1a2b3c4d5e6f7a8b)."},
    )
    dataset_weights: list[float] | None = field(
        default=None,
        metadata={"help": "Mixing weights, one per dataset: rows are drawn in these proportions until every "
                          "dataset has been seen (default: all rows of all datasets, concatenated)."},
    )
    dataset_split: str = field(default="train", metadata={"help": "Split to train on."})
    format_reward_weight: float = field(
        default=0.0, metadata={"help": "Weight of the <think>/<answer> format reward (0: not used, as in the paper)."})
    extra_reward_funcs: list[str] = field(
        default_factory=list, metadata={"help": "More reward functions by dotted import path (module.function)."})
    max_pixels: int | None = field(default=None, metadata={"help": "Image processor max_pixels (fewer image tokens)."})
    max_prompt_tokens: int | None = field(
        default=None,
        metadata={"help": "Drop rows whose prompt, image tokens included, is longer (the paper drops over 1024)."},
    )


def load_mixture(args: SSL4RLArguments, seed: int):
    if not args.dataset_name:
        raise SystemExit("grpo.py: error: give at least one --dataset_name")
    if args.dataset_weights is not None and len(args.dataset_weights) != len(args.dataset_name):
        raise SystemExit("grpo.py: error: --dataset_weights needs one weight per --dataset_name")
    parts = []
    for name in args.dataset_name:
        path, _, revision = name.partition("@")
        dataset = load_dataset(path, revision=revision or None, split=args.dataset_split)
        missing = {"prompt", "images", "answer", "task"} - set(dataset.column_names)
        if missing:
            raise SystemExit(f"grpo.py: error: {name} lacks {sorted(missing)}; is it built by ssl4rl-data?")
        parts.append(dataset)
    if len(parts) == 1:
        return parts[0]
    if args.dataset_weights is None:
        return concatenate_datasets(parts)
    total = sum(args.dataset_weights)
    return interleave_datasets(parts, probabilities=[w / total for w in args.dataset_weights], seed=seed,
                               stopping_strategy="all_exhausted")


def prompt_tokens(processor, dataset) -> list[int]:
    """Prompt length of each row in tokens, images included, from image headers (no pixel decoding)."""
    image_processor = processor.image_processor
    merge = image_processor.merge_size ** 2
    raw = dataset.cast_column("images", List(Image(decode=False)))
    lengths = []
    for row in raw:
        text = processor.apply_chat_template(row["prompt"], tokenize=False, add_generation_prompt=True)
        tokens = len(processor.tokenizer(text)["input_ids"])
        for image in row["images"]:
            width, height = PILImage.open(_image_file(image)).size
            # The template already counted the image's one placeholder token; it expands to this many.
            tokens += image_processor.get_number_of_image_patches(height, width, {}) // merge - 1
        lengths.append(tokens)
    return lengths


def _image_file(image: dict):
    return io.BytesIO(image["bytes"]) if image.get("bytes") is not None else image["path"]


def reward_functions(args: SSL4RLArguments, dataset) -> tuple[list, list[float]]:
    funcs = [TaskAccuracy(task) for task in sorted(set(dataset["task"]))]
    weights = [1.0] * len(funcs)
    if args.format_reward_weight:
        funcs.append(format_reward)
        weights.append(args.format_reward_weight)
    for dotted in args.extra_reward_funcs:
        module, _, name = dotted.rpartition(".")
        sys.path.insert(0, os.getcwd())
        funcs.append(getattr(importlib.import_module(module), name))
        weights.append(1.0)
    return funcs, weights


def main(script_args: SSL4RLArguments, training_args: GRPOConfig, model_args: ModelConfig):
    image_kwargs = {"max_pixels": script_args.max_pixels} if script_args.max_pixels else {}
    processor = load_processor(model_args.model_name_or_path, revision=model_args.model_revision, **image_kwargs)
    dataset = load_mixture(script_args, training_args.seed)
    if script_args.max_prompt_tokens:
        lengths = prompt_tokens(processor, dataset)
        keep = [i for i, n in enumerate(lengths) if n <= script_args.max_prompt_tokens]
        print(f"dropped {len(lengths) - len(keep)} of {len(lengths)} rows over {script_args.max_prompt_tokens} prompt tokens")
        dataset = dataset.select(keep)
    reward_funcs, weights = reward_functions(script_args, dataset)
    training_args.reward_weights = training_args.reward_weights or weights
    training_args.model_init_kwargs = {
        **(training_args.model_init_kwargs or {}),
        "revision": model_args.model_revision,
        "dtype": model_args.dtype,
        **({"attn_implementation": model_args.attn_implementation} if model_args.attn_implementation else {}),
    }
    trainer = GRPOTrainer(
        model=model_args.model_name_or_path,
        reward_funcs=reward_funcs,
        args=training_args,
        train_dataset=dataset,
        processing_class=processor,
        peft_config=get_peft_config(model_args),
    )
    resume = training_args.resume_from_checkpoint
    if resume in ("true", "True", "last"):
        resume = get_last_checkpoint(training_args.output_dir)
    trainer.train(resume_from_checkpoint=resume)
    trainer.save_model(training_args.output_dir)  # the model and its processor, loadable as a checkpoint
    if trainer.accelerator.is_main_process:
        trainer.state.save_to_json(str(Path(training_args.output_dir) / "trainer_state.json"))
        (Path(training_args.output_dir) / "ssl4rl_datasets.json").write_text(
            json.dumps({"datasets": script_args.dataset_name, "weights": script_args.dataset_weights}, indent=2))
    if training_args.push_to_hub:
        trainer.push_to_hub(dataset_name=script_args.dataset_name)


if __name__ == "__main__":
    parser = TrlParser((SSL4RLArguments, GRPOConfig, ModelConfig))
    main(*parser.parse_args_and_config())
