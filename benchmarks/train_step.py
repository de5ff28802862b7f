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
import resource
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]

PEAK_BF16_FLOPS = {"H100": 989e12, "H200": 989e12, "A100": 312e12}  # dense bf16 tensor-core peaks


# ---------------------------------------------------------------------------------------------
# FLOP accounting


@dataclasses.dataclass(frozen=True)
class Arch:
    """The numbers of a Qwen2.5-VL that its FLOPs depend on (matmul weights only; norms, biases,
    activations and softmax are left out: under 1% of the total)."""

    text_matmul: int  # decoder-layer matmul weights of the language model (all layers), used once per token
    lm_head: int  # vocab x hidden, used once per token whose logits are computed
    text_layers: int
    text_attn_width: int  # query heads x head dim: QK^T and AV cost 2 x this x keys each, per layer
    patch_matmul: int  # vision weights used once per 14x14 patch: the patch embedding and every block
    merger_matmul: int  # the patch merger's weights, used once per merged token (merge x merge patches)
    merge: int  # patches per merged (text) token: spatial_merge_size ** 2
    vision_full_layers: int  # blocks attending over the whole image
    vision_window_layers: int  # blocks attending within windows
    vision_window_patches: int  # patches per window (8 x 8 for Qwen2.5-VL)
    vision_attn_width: int  # vision hidden size


def arch_from_config(config) -> Arch:
    """`Arch` of a `Qwen2_5_VLConfig`, counted from its shapes."""
    text, vision = config.text_config, config.vision_config
    h, heads, kv = text.hidden_size, text.num_attention_heads, text.num_key_value_heads
    head_dim = getattr(text, "head_dim", None) or h // heads
    per_layer = h * heads * head_dim + 2 * h * kv * head_dim + heads * head_dim * h + 3 * h * text.intermediate_size
    hv, merge = vision.hidden_size, vision.spatial_merge_size**2
    patch_in = vision.in_channels * vision.temporal_patch_size * vision.patch_size**2
    block = 4 * hv * hv + 3 * hv * vision.intermediate_size  # qkv + proj, gated MLP
    merged = hv * merge
    window = vision.window_size // vision.patch_size  # patches per window side
    full = len(vision.fullatt_block_indexes)
    return Arch(
        text_matmul=text.num_hidden_layers * per_layer,
        lm_head=text.vocab_size * h,
        text_layers=text.num_hidden_layers,
        text_attn_width=heads * head_dim,
        patch_matmul=patch_in * hv + vision.depth * block,
        merger_matmul=merged * merged + merged * vision.out_hidden_size,
        merge=merge,
        vision_full_layers=full,
        vision_window_layers=vision.depth - full,
        vision_window_patches=window * window,
        vision_attn_width=hv,
    )


def vision_forward_flops(arch: Arch, image_patches) -> float:
    """Forward FLOPs of the vision tower over images of the given patch counts (before the merge).

    Per patch: 2 x patch_matmul. Per merged token: 2 x merger_matmul. Attention (QK^T and AV,
    2 x width FLOPs per query-key pair each): full-attention blocks pair every patch of an image
    with every other; window blocks pair it with the patches of its window (at most the image)."""
    flops = 0.0
    for patches in image_patches:
        flops += 2 * arch.patch_matmul * patches + 2 * arch.merger_matmul * patches / arch.merge
        keys = arch.vision_full_layers * patches + arch.vision_window_layers * min(arch.vision_window_patches, patches)
        flops += 4 * arch.vision_attn_width * patches * keys
    return flops


def text_forward_flops(arch: Arch, start: int, stop: int, logits: int) -> float:
    """Forward FLOPs of the language model for the tokens at positions start..stop-1 of a sequence
    whose earlier positions are cached, computing `logits` rows of the LM head.

    2 x text_matmul per token; causal attention: the token at position p attends p + 1 keys,
    4 x attn_width FLOPs per key per layer; 2 x lm_head per logits row. The embedding is a lookup."""
    pairs = (stop * (stop + 1) - start * (start + 1)) / 2  # sum of (p + 1) for p in start..stop-1
    return (
        2 * arch.text_matmul * (stop - start)
        + 4 * arch.text_attn_width * arch.text_layers * pairs
        + 2 * arch.lm_head * logits
    )


def rollout_flops(
    arch: Arch,
    prompt_tokens: int,
    completion_tokens: int,
    image_patches,
    *,
    prefill_shared_by: int = 1,
    old_logps: bool = False,
    reference: bool = False,
) -> dict[str, float]:
    """Model FLOPs TRL's GRPOTrainer spends on one rollout (one completion of one prompt), by pass.

    prompt_tokens: the prompt's length after the processor expanded its image tokens (P);
    completion_tokens: the completion's length (C); image_patches: the prompt's images' patch counts.
      rollout_prefill  the vision tower on the images and the prompt's P tokens, one logits row,
                       divided by `prefill_shared_by`: 1 for transformers generate (TRL repeats each
                       prompt num_generations times in the batch and nothing is cached between them), or
                       num_generations for an engine whose prefix cache shares a prompt's prefill
      rollout_decode   C - 1 single-token forwards (the first token comes from the prefill's logits)
                       at positions P..P+C-2 over the KV cache, each with a logits row
      old_logps        when TRL computes it (see `old_logps_computed`): vision + P + C tokens, C logits rows
      reference        when beta > 0: the same forward, on the reference model
      train            forward + backward = 3 x that forward (the backward costs two forwards)
    """
    scored = vision_forward_flops(arch, image_patches) + text_forward_flops(
        arch, 0, prompt_tokens + completion_tokens, completion_tokens
    )
    flops = {
        "rollout_prefill": (vision_forward_flops(arch, image_patches) + text_forward_flops(arch, 0, prompt_tokens, 1))
        / prefill_shared_by,
        "rollout_decode": text_forward_flops(
            arch, prompt_tokens, prompt_tokens + completion_tokens - 1, completion_tokens - 1
        )
        if completion_tokens > 1
        else 0.0,
        "old_logps": scored if old_logps else 0.0,
        "reference": scored if reference else 0.0,
        "train": 3 * scored,
    }
    flops["total"] = sum(flops.values())
    return flops


def old_logps_computed(
    gradient_accumulation_steps: int,
    steps_per_generation: int,
    num_iterations: int,
    use_vllm: bool = False,
    vllm_importance_sampling_correction: bool = True,
) -> bool:
    """Whether TRL 1.16's GRPOTrainer runs a separate old-log-prob forward pass (grpo_trainer.py,
    `_generate_and_score_completions`): when generation and optimisation steps are misaligned, or
    always with vLLM's importance-sampling correction (on by default)."""
    return gradient_accumulation_steps % (steps_per_generation * num_iterations) != 0 or (
        use_vllm and vllm_importance_sampling_correction
    )


def prompt_shapes(dataset, processor, rows: int = 64) -> list[tuple[int, list[int]]]:
    """(prompt tokens after image expansion, patches per image) of up to `rows` rows, as TRL tokenizes them."""
    shapes = []
    for row in dataset.select(range(min(rows, len(dataset)))):
        text = processor.apply_chat_template(row["prompt"], tokenize=False, add_generation_prompt=True)
        inputs = processor(text=[text], images=[row["images"]], return_tensors="pt")
        shapes.append(
            (int(inputs["input_ids"].shape[1]), [int(t * h * w) for t, h, w in inputs["image_grid_thw"].tolist()])
        )
    return shapes


# ---------------------------------------------------------------------------------------------
# The benchmark


class StepTimer:
    """A TrainerCallback recording wall time per optimizer step (CUDA-synchronised) and printing each step."""

    def __init__(self, rollout_seconds: list):
        self.times, self._start, self.rollout_seconds = [], None, rollout_seconds

    def on_step_begin(self, args, state, control, **kwargs):
        _sync()
        self._start = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        _sync()
        self.times.append(time.perf_counter() - self._start)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "completions/mean_length" in logs and self.times:
            rollout = self.rollout_seconds[-1] if self.rollout_seconds else float("nan")
            print(
                f"step {len(self.times)}: {self.times[-1]:.2f} s (rollout {rollout:.2f} s), mean completion "
                f"{logs['completions/mean_length']:.0f} tokens, peak memory {_peak_memory_gib():.1f} GiB",
                flush=True,
            )

    def __getattr__(self, name):  # the other callback events: nothing to do
        if name.startswith("on_"):
            return lambda *args, **kwargs: None
        raise AttributeError(name)


def _sync():
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _peak_memory_gib() -> float:
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


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
        _sync()
        started = time.perf_counter()
        result = generate(*a, **k)
        _sync()
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
        "peak_memory_gib": _peak_memory_gib(),
        "peak_memory_kind": "GPU allocated" if not args.cpu else "host RSS",
        "peak_reserved_gib": torch.cuda.max_memory_reserved() / 2**30 if not args.cpu else None,
        "step_times_s": [t for t, _, _ in steps],
        "rollout_times_s": [r for _, r, _ in steps],
    }
    print_figures(figures, args)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return figures


def print_figures(f: dict, args):
    share = {k: v / f["flops_per_step"]["total"] for k, v in f["flops_per_step"].items() if k != "total"}
    print(f"device                 {f['device']}")
    print(
        f"model                  Qwen2.5-VL-{f['size']} architecture, {f['parameters']:,} parameters, random weights"
    )
    print(
        f"rollouts               {'vLLM colocate' if args.use_vllm else 'transformers generate'}; "
        f"{args.prompts_per_step} prompts x {args.num_generations} per step, max {args.max_completion_length} new tokens"
    )
    print(
        f"step time              {f['step_time_s']:.3f} s (mean of {f['steps_measured']} steps after warm-up; "
        f"rollout {f['rollout_time_s']:.3f} s of it)"
    )
    print(
        f"generated tokens/s     {f['generated_tokens_per_s']:.1f} per GPU over the whole step; "
        f"{f['rollout_tokens_per_s'] or float('nan'):.1f} during rollouts ({f['generated_tokens_per_step']:.0f} tokens per step)"
    )
    print(
        f"prompt                 {f['prompt_tokens_per_rollout']:.0f} tokens ({f['prompt_tokens_per_rollout_trl']:.0f} "
        f"counted by TRL), {f['image_patches_per_rollout']:.0f} image patches per rollout"
    )
    print(
        f"peak memory            {f['peak_memory_gib']:.2f} GiB {f['peak_memory_kind']}"
        + (f" ({f['peak_reserved_gib']:.1f} GiB reserved)" if f["peak_reserved_gib"] is not None else "")
    )
    print(
        f"model FLOPs per step   {f['flops_per_step']['total'] / 1e12:.4g} TFLOP: "
        + ", ".join(f"{k} {100 * v:.0f}%" for k, v in share.items() if v)
    )
    print(f"achieved               {f['achieved_flops'] / 1e12:.4g} TFLOP/s")
    if f["mfu"] is not None:
        print(f"MFU                    {100 * f['mfu']:.2f} % of {f['peak_flops'] / 1e12:.0f} TFLOP/s")
    else:
        print("MFU                    n/a (no peak FLOP/s known for this device; pass --peak-flops)")


if __name__ == "__main__":
    main()
