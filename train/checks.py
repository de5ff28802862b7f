"""Refuse training set-ups that would run and silently train the wrong thing.

- Precision. A full fine-tune whose parameters are bf16/fp16 and that has no fp32 master copy
  (plain DDP or one GPU) loses most AdamW updates at lr 1e-6: an update below half a bf16 ulp of
  the weight rounds to nothing (measured on the tiny test model: 3.2% of the weights with a gradient
  changed in 3 AdamW steps at lr 1e-6, against 100% in fp32; tests/test_train_trust.py repeats it). DeepSpeed ZeRO keeps fp32 partitions, accelerate's FSDP
  upcasts trainable parameters to fp32 under mixed precision, and LoRA adapters are created in fp32.
- Checkpoints inside a generation batch. TRL keeps the rollouts of one generation batch in memory
  for its `steps_per_generation / gradient_accumulation_steps` updates; they are not checkpointed,
  so a checkpoint saved in the middle resumes with new rollouts, not the ones an uninterrupted run used.
"""

import os

LOW_PRECISION = {"bfloat16", "float16"}


class RunConfigError(ValueError):
    """A set-up that would train the wrong thing; the message is one line."""


def distributed_backend(training_args) -> str:
    """'deepspeed', 'fsdp' or 'plain', from the Trainer's arguments or the variables `accelerate launch` sets."""
    if training_args.deepspeed or os.environ.get("ACCELERATE_USE_DEEPSPEED", "false").lower() == "true":
        return "deepspeed"
    if training_args.fsdp or os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true":
        return "fsdp"
    return "plain"


def parameter_dtype(model_args) -> str:
    """The dtype the model's parameters are loaded in; 'auto' is the checkpoint's own."""
    if model_args.dtype != "auto":
        return str(model_args.dtype)
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(model_args.model_name_or_path, revision=model_args.model_revision)
    dtype = getattr(config, "dtype", None) or getattr(getattr(config, "text_config", None), "dtype", None)
    return str(dtype).removeprefix("torch.") if dtype is not None else "float32"


def check_precision(training_args, model_args) -> None:
    """Raise unless what is trained keeps fp32 master weights.

    >>> from types import SimpleNamespace as NS
    >>> check_precision(NS(deepspeed=None, fsdp="", bf16=True, fp16=False), NS(use_peft=True, dtype="bfloat16"))
    >>> check_precision(NS(deepspeed=None, fsdp="", bf16=True, fp16=False), NS(use_peft=False, dtype="bfloat16"))
    Traceback (most recent call last):
    ...
    ssl4rl_train.checks.RunConfigError: --dtype bfloat16 with a full fine-tune and no DeepSpeed/FSDP keeps no fp32 master weights ...
    """
    if model_args.use_peft:
        return
    dtype = parameter_dtype(model_args)
    if dtype not in LOW_PRECISION:
        return
    backend = distributed_backend(training_args)
    mixed = training_args.bf16 or training_args.fp16
    if backend == "deepspeed" or (backend == "fsdp" and mixed):
        return
    raise RunConfigError(
        f"--dtype {dtype} with a full fine-tune and no DeepSpeed/FSDP keeps no fp32 master weights (at lr 1e-6 most "
        "AdamW updates round away); use --dtype float32 --bf16 true (fp32 weights, bf16 compute), --use_peft true, "
        "or a ZeRO/FSDP accelerate config"
    )


def check_checkpoint_alignment(training_args) -> None:
    """Raise when checkpoints would fall inside a generation batch (see the module docstring).

    >>> from types import SimpleNamespace as NS
    >>> check_checkpoint_alignment(NS(save_strategy="steps", save_steps=8, steps_per_generation=16,
    ...                               gradient_accumulation_steps=4, num_iterations=1))
    >>> check_checkpoint_alignment(NS(save_strategy="steps", save_steps=50, steps_per_generation=16,
    ...                               gradient_accumulation_steps=4, num_iterations=1))
    Traceback (most recent call last):
    ...
    ssl4rl_train.checks.RunConfigError: --save_steps 50 is not a multiple of the 4 optimizer updates made from each generation batch ...
    """
    if str(getattr(training_args.save_strategy, "value", training_args.save_strategy)) != "steps":
        return
    per_generation = updates_per_generation(training_args)
    if per_generation > 1 and training_args.save_steps % per_generation:
        raise RunConfigError(
            f"--save_steps {training_args.save_steps:g} is not a multiple of the {per_generation} optimizer updates made "
            "from each generation batch (steps_per_generation / gradient_accumulation_steps x num_iterations); a "
            "checkpoint inside a batch resumes with other rollouts"
        )


def updates_per_generation(training_args) -> int:
    """Optimizer updates made from one generation batch (the paper's 'step' is this many TRL steps)."""
    steps = training_args.steps_per_generation or training_args.gradient_accumulation_steps
    return steps // training_args.gradient_accumulation_steps * training_args.num_iterations
