"""GRPO on SSL4RL datasets with TRL.

    accelerate launch train/grpo.py --config recipes/train/qwen2_5_vl_3b_paper.yaml
    accelerate launch train/grpo.py --model_name_or_path Qwen/Qwen2.5-VL-3B-Instruct \
        --dataset_name you/ssl4rl-rotation@v1a2b3c you/ssl4rl-jigsaw --dataset_weights 0.5 0.5 --output_dir out/run

Every GRPOConfig and ModelConfig flag works (`--use_cpu`, `--max_steps`, `--num_generations`,
`--use_peft`, ...). Rewards come from `ssl4rl_data.rewards`, one per task found in the data, routed by
each row's `task` column, so a mixture of tasks trains in one run and each task's mean reward is
logged as `rewards/<task>/mean`.
"""

import contextlib
import importlib
import importlib.util
import io
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from datasets import Image, List
from PIL import Image as PILImage
from transformers.trainer_utils import get_last_checkpoint
from trl import GRPOConfig, ModelConfig, TrlParser, get_peft_config

from ssl4rl_data.rewards import TaskAccuracy, format_reward
from ssl4rl_train.checks import RunConfigError, check_checkpoint_alignment, check_precision
from ssl4rl_train.mixture import DatasetSpec, MixtureError, load_one, mix, mixture_counts, resolve_commit
from ssl4rl_train.trainer import CheckpointMismatchError, SSL4RLGRPOTrainer
from ssl4rl_train.vllm_support import VLLMSetupError, attach, colocated_llm_kwargs, prepare
from ssl4rl_train.vlm import load_processor


@dataclass
class SSL4RLArguments:
    dataset_name: list[str] = field(
        default_factory=list,
        metadata={
            "help": "Datasets built by ssl4rl-data: local folders or Hub repo ids, space-separated; pin a "
            "Hub version with REPO@REVISION (e.g. you/ssl4rl-jigsaw@v1a2b3c4d5e6f7a8b). Each Hub "
            "revision is resolved to its commit, which is loaded and recorded in ssl4rl_datasets.json."
        },
    )
    dataset_weights: list[float] | None = field(
        default=None,
        metadata={
            "help": "Mixing weights, one per dataset: the mixture holds rows in exactly these proportions "
            "(after over-long prompts are dropped from each dataset), and every dataset is seen whole at "
            "least once; smaller ones repeat (default: all rows of all datasets, concatenated)."
        },
    )
    dataset_split: str = field(default="train", metadata={"help": "Split to train on."})
    format_reward_weight: float = field(
        default=0.0, metadata={"help": "Weight of the <think>/<answer> format reward (0: not used, as in the paper)."}
    )
    extra_reward_funcs: list[str] = field(
        default_factory=list,
        metadata={"help": "More reward functions: package.module.function (importable) or path/to/file.py:function."},
    )
    max_pixels: int | None = field(default=None, metadata={"help": "Image processor max_pixels (fewer image tokens)."})
    max_prompt_tokens: int | None = field(
        default=None,
        metadata={"help": "Drop rows whose prompt, image tokens included, is longer (the paper drops over 1024)."},
    )
    validate_only: bool = field(
        default=False,
        metadata={
            "help": "Check the command line, the recipe and the set-up (every check made before the model and the "
            "data load, Hub dataset names and revisions looked up included), say so, and exit without training."
        },
    )


def prompt_tokens(processor, dataset, count_text=None) -> list[int]:
    """Prompt length of each row in tokens, images included, from image headers (no pixel decoding).

    `count_text(text)` counts the template's text tokens (default: the processor's own tokenizer).
    """
    image_processor = processor.image_processor
    merge = image_processor.merge_size**2
    raw = dataset.cast_column("images", List(Image(decode=False)))
    count_text = count_text or (lambda text: len(processor.tokenizer(text)["input_ids"]))
    lengths = []
    for row in raw:
        text = processor.apply_chat_template(row["prompt"], tokenize=False, add_generation_prompt=True)
        tokens = count_text(text)
        for image in row["images"]:
            width, height = PILImage.open(_image_file(image)).size
            # The template already counted the image's one placeholder token; it expands to this many.
            tokens += image_processor.get_number_of_image_patches(height, width, {}) // merge - 1
        lengths.append(tokens)
    return lengths


def _image_file(image: dict):
    return io.BytesIO(image["bytes"]) if image.get("bytes") is not None else image["path"]


def reward_functions(args: SSL4RLArguments, dataset, extra: list) -> tuple[list, list[float]]:
    """One accuracy reward per task in the data, the format reward when weighted, then the extra functions."""
    funcs = [TaskAccuracy(task) for task in sorted(set(dataset["task"]))]
    weights = [1.0] * len(funcs)
    if args.format_reward_weight:
        funcs.append(format_reward)
        weights.append(args.format_reward_weight)
    funcs += extra
    weights += [1.0] * len(extra)
    return funcs, weights


def load_reward_function(spec: str):
    """`package.module.function` (importable) or `path/to/file.py:function` (a file, wherever the run starts)."""
    try:
        if ":" in spec:
            path, _, name = spec.rpartition(":")
            module_spec = importlib.util.spec_from_file_location(Path(path).stem, path)
            if module_spec is None or not Path(path).is_file():
                raise FileNotFoundError(path)
            module = importlib.util.module_from_spec(module_spec)
            module_spec.loader.exec_module(module)
        else:
            module_name, _, name = spec.rpartition(".")
            module = importlib.import_module(module_name)
        return getattr(module, name)
    except (ImportError, FileNotFoundError, AttributeError, ValueError) as error:
        raise RunConfigError(
            f"--extra_reward_funcs {spec}: cannot load it ({type(error).__name__}: {error}); "
            "give module.function or path/to/file.py:function"
        ) from None


def validate(
    script_args: SSL4RLArguments, training_args: GRPOConfig, model_args: ModelConfig
) -> tuple[list[DatasetSpec], list]:
    """Every user mistake found before anything heavy loads, each raised with a one-line message; returns the
    dataset specs and the extra reward functions, loaded once."""
    if not script_args.dataset_name:
        raise MixtureError("give at least one --dataset_name")
    if script_args.dataset_weights is not None and len(script_args.dataset_weights) != len(script_args.dataset_name):
        raise MixtureError(
            f"--dataset_weights has {len(script_args.dataset_weights)} weights for "
            f"{len(script_args.dataset_name)} datasets; give one per --dataset_name"
        )
    if script_args.dataset_weights is not None and any(w <= 0 for w in script_args.dataset_weights):
        raise MixtureError("--dataset_weights must all be positive")
    specs = [DatasetSpec.parse(name) for name in script_args.dataset_name]
    extra = [load_reward_function(spec) for spec in script_args.extra_reward_funcs]
    if training_args.use_vllm and importlib.util.find_spec("vllm") is None:
        raise RunConfigError(
            "--use_vllm true needs vLLM: on a GPU machine pip install -c constraints.txt -e '.[train,gpu]'; "
            "or --use_vllm false (rollouts with transformers)"
        )
    check_precision(training_args, model_args)
    check_checkpoint_alignment(training_args)
    return specs, extra


def resume_checkpoint(training_args: GRPOConfig) -> str | None:
    resume = training_args.resume_from_checkpoint
    if resume in (None, "", "false", "False"):
        return None
    if resume in ("true", "True", "last"):
        last = get_last_checkpoint(training_args.output_dir) if Path(training_args.output_dir).is_dir() else None
        if last is None:
            raise RunConfigError(
                f"--resume_from_checkpoint {resume}: no checkpoint-* folder in {training_args.output_dir}"
            )
        return last
    if not Path(resume).is_dir():
        raise RunConfigError(f"--resume_from_checkpoint {resume}: no such checkpoint folder")
    return resume


def training_mixture(
    script_args: SSL4RLArguments,
    specs: list[DatasetSpec],
    processor,
    seed: int,
    commits: list[str | None] | None = None,
):
    """The mixed dataset and, per dataset, where it came from and how many rows it gave."""
    datasets, records = [], []
    for spec, commit in zip(specs, commits or [None] * len(specs), strict=True):
        dataset, record = load_one(spec, script_args.dataset_split, commit)
        record["rows"] = len(dataset)
        if script_args.max_prompt_tokens:
            lengths = prompt_tokens(processor, dataset)
            dataset = dataset.select([i for i, n in enumerate(lengths) if n <= script_args.max_prompt_tokens])
            print(
                f"{spec.name}: dropped {record['rows'] - len(dataset)} of {record['rows']} rows over "
                f"{script_args.max_prompt_tokens} prompt tokens"
            )
        if len(dataset) == 0:
            raise MixtureError(f"--dataset_name {spec.name}: no rows left to train on")
        record["rows_kept"] = len(dataset)
        datasets.append(dataset)
        records.append(record)
    mixed = mix(datasets, script_args.dataset_weights, seed)
    if script_args.dataset_weights is not None:
        counts = mixture_counts([len(d) for d in datasets], script_args.dataset_weights)
        for record, count in zip(records, counts, strict=True):
            record["rows_in_mixture"] = count
    return mixed, records


def main(script_args: SSL4RLArguments, training_args: GRPOConfig, model_args: ModelConfig):
    specs, extra_rewards = validate(script_args, training_args, model_args)
    resume = resume_checkpoint(training_args)
    # A wrong Hub name or revision fails here, early (a lookup of the commit: no data is downloaded).
    commits = [None if spec.local else resolve_commit(spec) for spec in specs]
    if script_args.validate_only:
        datasets = " ".join(spec.name for spec in specs)
        print(f"grpo.py: valid: {model_args.model_name_or_path} on {datasets}; nothing was loaded or trained")
        return
    image_kwargs = {"max_pixels": script_args.max_pixels} if script_args.max_pixels else {}
    processor = load_processor(model_args.model_name_or_path, revision=model_args.model_revision, **image_kwargs)
    dataset, provenance = training_mixture(script_args, specs, processor, training_args.seed, commits)
    reward_funcs, weights = reward_functions(script_args, dataset, extra_rewards)
    training_args.reward_weights = training_args.reward_weights or weights
    training_args.model_init_kwargs = {
        **(training_args.model_init_kwargs or {}),
        "revision": model_args.model_revision,
        "dtype": model_args.dtype,
        **({"attn_implementation": model_args.attn_implementation} if model_args.attn_implementation else {}),
    }
    # vLLM sizes images as training does and gets one placeholder per image (see vllm_support.py).
    engine = prepare(processor, dataset, training_args.vllm_mode) if training_args.use_vllm else None
    with colocated_llm_kwargs(engine) if engine else contextlib.nullcontext():
        trainer = SSL4RLGRPOTrainer(
            model=model_args.model_name_or_path,
            reward_funcs=reward_funcs,
            args=training_args,
            train_dataset=dataset,
            processing_class=processor,
            peft_config=get_peft_config(model_args),
        )
    if engine:
        attach(trainer, engine)
    trainer.train(resume_from_checkpoint=resume)
    trainer.save_model(training_args.output_dir)  # the model and its processor, loadable as a checkpoint
    if trainer.accelerator.is_main_process:
        output = Path(training_args.output_dir)
        trainer.state.save_to_json(str(output / "trainer_state.json"))
        (output / "ssl4rl_datasets.json").write_text(
            json.dumps(
                {
                    "datasets": script_args.dataset_name,
                    "weights": script_args.dataset_weights,
                    "seed": training_args.seed,
                    "resolved": provenance,
                },
                indent=2,
            )
        )
    if training_args.push_to_hub:
        trainer.push_to_hub(dataset_name=script_args.dataset_name)


def cli(argv: list[str] | None = None) -> None:
    """Parse, then run; a user mistake ends in one line (printed once, by the main process) and exit code 2."""
    parser = TrlParser((SSL4RLArguments, GRPOConfig, ModelConfig))
    try:
        try:
            args = parser.parse_args_and_config(argv)
        except ValueError as error:  # GRPOConfig's own checks (batch sizes, generations, ...)
            raise RunConfigError(str(error).strip().splitlines()[0]) from None
        main(*args)
    except (MixtureError, RunConfigError, CheckpointMismatchError, VLLMSetupError) as error:
        if os.environ.get("RANK", "0") == "0":
            print(f"grpo.py: error: {error}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    cli()
