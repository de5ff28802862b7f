"""GRPO training-step benchmark: the Qwen2.5-VL-3B architecture with random weights (no download).

    python benchmarks/train_step.py                      # on a GPU: 3B, bf16, transformers rollouts
    python benchmarks/train_step.py --use-vllm           # vLLM colocated rollouts, when vLLM is installed
    python benchmarks/train_step.py --size tiny --cpu    # a CPU smoke run of the same code path
    python benchmarks/train_step.py --data out/rotation out/jigsaw --json figures.json

Trains a few GRPO steps with TRL on datasets built by ssl4rl-data (--data, or rotation and jigsaw
built here from the bundled photos) and prints, after each step and at the end: step time, rollout
(generation) time, generated tokens/s, peak memory and model FLOPs utilisation (MFU).
A random model rarely emits EOS, so completions run to --max-completion-length: a worst case for
generation length, which makes tokens/s comparable between runs.

MFU counts model FLOPs (see `rollout_flops`): every pass TRL makes over each rollout, with the
vision tower per 14x14 patch and attention included; activation-checkpointing recomputation and
padding are not counted (they are hardware work, not model work), so hardware utilisation is higher.
"""

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path

import torch
from step_measures import StepTimer, peak_memory_gib, print_figures, sync_device
from train_flops import PEAK_BF16_FLOPS, arch_from_config, old_logps_computed, prompt_shapes, rollout_flops


def processor_for(folder: str, max_pixels: int):
    """train/vlm.py's processor; where its fallback cannot load (transformers 5.17 without torchvision, as
    on the GPU machine, where AutoImageProcessor itself needs torchvision) the same image-only processor
    built from the PIL image processor class directly."""
    from ssl4rl_train.vlm import PROCESSORS, _chat_template, image_only, load_processor

    try:
        return load_processor(folder, max_pixels=max_pixels)
    except ImportError:
        from transformers import AutoTokenizer
        from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

        tokenizer = AutoTokenizer.from_pretrained(folder)
        processor = image_only(PROCESSORS["qwen2_5_vl"])(
            image_processor=Qwen2VLImageProcessorPil.from_pretrained(folder, max_pixels=max_pixels),
            tokenizer=tokenizer,
            chat_template=_chat_template(folder, tokenizer),
        )
        processor.tokenizer.padding_side = "left"
        print(
            "train/vlm.py could not load the processor (no torchvision); built it from the PIL image processor",
            flush=True,
        )
        return processor


def build_datasets(folder: Path, images: int) -> list[str]:
    from ssl4rl_data.cli import main

    paths = []
    for task in ("rotation", "jigsaw"):
        out = folder / task
        if main(["build", task, "--limit", str(images), "--out", str(out), "-q"]) != 0:
            raise SystemExit(f"could not build the {task} dataset")
        paths.append(str(out))
    return paths


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=["3b", "tiny"], default="3b")
    parser.add_argument("--cpu", action="store_true", help="Run on the CPU (with --size tiny).")
    parser.add_argument("--steps", type=int, default=6, help="Optimizer steps, --warmup of them not measured.")
    parser.add_argument("--warmup", type=int, default=2, help="Steps left out of the figures (default 2).")
    parser.add_argument("--prompts-per-step", type=int, default=16)
    parser.add_argument("--num-generations", type=int, default=5)
    parser.add_argument("--max-completion-length", type=int, default=512)
    parser.add_argument("--max-pixels", type=int, default=448 * 448)
    parser.add_argument(
        "--beta",
        type=float,
        default=0.0,
        help="KL coefficient; > 0 adds the reference model's pass (and needs --model).",
    )
    parser.add_argument(
        "--model",
        help="Train this saved checkpoint (e.g. from train/synthetic_qwen.py) instead of "
        "random weights made in memory; --size is then only a label.",
    )
    parser.add_argument("--use-vllm", action="store_true")
    parser.add_argument(
        "--data", nargs="+", help="Datasets built by ssl4rl-data (default: build rotation and jigsaw here)."
    )
    parser.add_argument(
        "--peak-flops", type=float, default=None, help="Peak bf16 FLOP/s of the GPU (default: by name)."
    )
    parser.add_argument("--json", type=Path, help="Also write the figures to this JSON file.")
    args = parser.parse_args(argv)

    from datasets import concatenate_datasets, load_dataset
    from transformers import Qwen2_5_VLForConditionalGeneration
    from trl import GRPOConfig, GRPOTrainer

    from ssl4rl_data.rewards import TaskAccuracy
    from ssl4rl_train.synthetic_qwen import build_synthetic_qwen

    work = Path(tempfile.mkdtemp(prefix="ssl4rl-bench-"))
    device = "cpu" if args.cpu else "cuda"
    dtype = torch.float32 if args.cpu else torch.bfloat16
    if args.model:  # a saved checkpoint (TRL loads the reference model from its path when --beta > 0)
        folder = args.model
        model = Qwen2_5_VLForConditionalGeneration.from_pretrained(folder, dtype=dtype).to(device)
        config = model.config
    else:
        if args.beta > 0:
            parser.error("--beta > 0 needs --model: TRL loads the reference model from the checkpoint's path")
        folder, config = build_synthetic_qwen(work / "model", args.size, save_weights=False)
        with torch.device(device):
            model = Qwen2_5_VLForConditionalGeneration._from_config(config, dtype=dtype)
    processor = processor_for(str(folder), args.max_pixels)
    data = args.data or build_datasets(work / "data", 12)
    dataset = concatenate_datasets([load_dataset(p, split="train") for p in data]).shuffle(seed=0)

    model.generation_config.eos_token_id = config.text_config.eos_token_id
    model.generation_config.pad_token_id = config.text_config.pad_token_id
    parameters = sum(p.numel() for p in model.parameters())
    arch = arch_from_config(config)

    completions_per_step = args.prompts_per_step * args.num_generations
    # transformers 5.2x renamed gradient_checkpointing to activation_checkpointing (5.17, on the GPU machine, has the old name).
    names = {f.name for f in dataclasses.fields(GRPOConfig)}
    checkpointing = {
        "activation_checkpointing" if "activation_checkpointing" in names else "gradient_checkpointing": not args.cpu
    }
    training_args = GRPOConfig(
        output_dir=str(work / "run"),
        use_cpu=args.cpu,
        bf16=not args.cpu,
        max_steps=args.steps,
        per_device_train_batch_size=completions_per_step,
        gradient_accumulation_steps=1,
        num_generations=args.num_generations,
        max_completion_length=args.max_completion_length,
        learning_rate=1e-6,
        beta=args.beta,
        temperature=1.0,
        logging_steps=1,
        report_to="none",
        save_strategy="no",
        use_vllm=args.use_vllm,
        vllm_mode="colocate",
        vllm_gpu_memory_utilization=0.35,
        seed=0,
        **checkpointing,
    )
    rollout_seconds = []
    timer = StepTimer(rollout_seconds)
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=[TaskAccuracy("rotation"), TaskAccuracy("jigsaw")],
        args=training_args,
        train_dataset=dataset,
        processing_class=processor,
        callbacks=[timer],
    )

    generate = trainer._generate_single_turn  # timed: the rollouts alone

    def timed_generate(*a, **k):
        sync_device()
        started = time.perf_counter()
        result = generate(*a, **k)
        sync_device()
        rollout_seconds.append(time.perf_counter() - started)
        return result

    trainer._generate_single_turn = timed_generate
    if not args.cpu:
        torch.cuda.reset_peak_memory_stats()
    name = torch.cuda.get_device_name() if not args.cpu else "cpu"
    print(
        f"training {args.steps} steps on {name}: {args.prompts_per_step} prompts x {args.num_generations} "
        f"completions per step, at most {args.max_completion_length} new tokens",
        flush=True,
    )
    trainer.train()

    logs = [entry for entry in trainer.state.log_history if "completions/mean_length" in entry]
    steps = list(zip(timer.times, rollout_seconds, logs))
    measured = steps[args.warmup :] or steps[-1:]  # drop warm-up steps (keep the last if there are no others)
    step_time = sum(t for t, _, _ in measured) / len(measured)
    rollout_time = sum(r for _, r, _ in measured) / len(measured)
    completion = sum(float(log["completions/mean_length"]) for _, _, log in measured) / len(measured)
    generated = completion * completions_per_step
    # Prompt tokens per rollout, from TRL's token counter (prompt + completion tokens, cumulative).
    counts = [0.0] + [float(log["num_tokens"]) for log in logs]
    trained = [counts[i + 1] - counts[i] for i in range(len(logs))][args.warmup :] or [counts[-1] - counts[-2]]
    prompt_measured = sum(trained) / len(trained) / completions_per_step - completion

    # FLOPs per step: the expected rollout over the data (TRL samples rows uniformly) times the rollouts per step.
    shapes = prompt_shapes(dataset, processor)
    steps_per_generation = training_args.steps_per_generation
    old = old_logps_computed(
        training_args.gradient_accumulation_steps,
        steps_per_generation,
        training_args.num_iterations,
        args.use_vllm,
        training_args.vllm_importance_sampling_correction,
    )
    per_rollout = {}
    for prompt_tokens, patches in shapes:
        for key, value in rollout_flops(
            arch,
            prompt_tokens,
            round(completion),
            patches,
            old_logps=old,
            reference=args.beta > 0,
            prefill_shared_by=args.num_generations if args.use_vllm else 1,
        ).items():
            per_rollout[key] = per_rollout.get(key, 0.0) + value / len(shapes)
    flops = {key: value * completions_per_step for key, value in per_rollout.items()}
    prompt_tokens = sum(p for p, _ in shapes) / len(shapes)
    patches = sum(sum(p) for _, p in shapes) / len(shapes)
    peak = args.peak_flops or next((v for k, v in PEAK_BF16_FLOPS.items() if k in name), None)
    achieved = flops["total"] / step_time
    figures = {
        "device": name,
        "size": args.size if not args.model else f"{args.size} ({args.model})",
        "parameters": parameters,
        "arch": dataclasses.asdict(arch),
        "steps_measured": len(measured),
        "step_time_s": step_time,
        "rollout_time_s": rollout_time,
        "completions_per_step": completions_per_step,
        "mean_completion_tokens": completion,
        "generated_tokens_per_step": generated,
        "generated_tokens_per_s": generated / step_time,
        "rollout_tokens_per_s": generated / rollout_time if rollout_time else None,
        "prompt_tokens_per_rollout": prompt_tokens,
        "prompt_tokens_per_rollout_trl": prompt_measured,
        "image_patches_per_rollout": patches,
        "old_logps_pass": old,
        "reference_pass": args.beta > 0,
        "flops_per_step": flops,
        "achieved_flops": achieved,
        "peak_flops": peak,
        "mfu": achieved / peak if peak else None,
        "peak_memory_gib": peak_memory_gib(),
        "peak_memory_kind": "GPU allocated" if not args.cpu else "host RSS",
        "peak_reserved_gib": torch.cuda.max_memory_reserved() / 2**30 if not args.cpu else None,
        "step_times_s": [t for t, _, _ in steps],
        "rollout_times_s": [r for _, r, _ in steps],
    }
    print_figures(figures, args)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return figures


if __name__ == "__main__":
    main()
