"""GRPO training-step benchmark: the Qwen2.5-VL-3B architecture with random weights (no download).

    python benchmarks/train_step.py                      # on a GPU: 3B, bf16, transformers rollouts
    python benchmarks/train_step.py --use-vllm           # vLLM colocated rollouts, when vLLM is installed
    python benchmarks/train_step.py --size tiny --cpu    # a CPU smoke run of the same code path

Builds rotation and jigsaw datasets with ssl4rl-data from the bundled photos, trains a few GRPO steps
with TRL and prints step time, generated tokens/s, peak GPU memory and model FLOPs utilisation (MFU).
A random model rarely emits EOS, so completions run to --max-completion-length: a worst case for
generation length, which makes tokens/s comparable between runs.
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "train"))

from synthetic_qwen import build_synthetic_qwen  # noqa: E402
from vlm import load_processor  # noqa: E402

PEAK_BF16_FLOPS = {"H100": 989e12, "H200": 989e12, "A100": 312e12}  # dense bf16 tensor-core peaks


class StepTimer:
    """A TrainerCallback recording wall time per optimizer step (CUDA-synchronised)."""

    def __init__(self):
        self.times, self._start = [], None

    def on_step_begin(self, args, state, control, **kwargs):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self._start = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self.times.append(time.perf_counter() - self._start)

    def __getattr__(self, name):  # the other callback events: nothing to do
        if name.startswith("on_"):
            return lambda *args, **kwargs: None
        raise AttributeError(name)


def build_datasets(folder: Path, images: int) -> list[str]:
    from ssl4rl_data.cli import main

    paths = []
    for task in ("rotation", "jigsaw"):
        out = folder / task
        if main(["build", task, "--limit", str(images), "--out", str(out), "-q"]) != 0:
            raise SystemExit(f"could not build the {task} dataset")
        paths.append(str(out))
    return paths


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=["3b", "tiny"], default="3b")
    parser.add_argument("--cpu", action="store_true", help="Run on the CPU (with --size tiny).")
    parser.add_argument("--steps", type=int, default=6, help="Optimizer steps; the first two are warm-up.")
    parser.add_argument("--prompts-per-step", type=int, default=16)
    parser.add_argument("--num-generations", type=int, default=5)
    parser.add_argument("--max-completion-length", type=int, default=512)
    parser.add_argument("--max-pixels", type=int, default=448 * 448)
    parser.add_argument("--use-vllm", action="store_true")
    parser.add_argument("--peak-flops", type=float, default=None, help="Peak bf16 FLOP/s of the GPU (default: by name).")
    args = parser.parse_args()

    from datasets import concatenate_datasets, load_dataset
    from transformers import Qwen2_5_VLForConditionalGeneration
    from trl import GRPOConfig, GRPOTrainer

    from ssl4rl_data.rewards import TaskAccuracy

    work = Path(tempfile.mkdtemp(prefix="ssl4rl-bench-"))
    folder, config = build_synthetic_qwen(work / "model", args.size, save_weights=False)
    processor = load_processor(str(folder), max_pixels=args.max_pixels)
    dataset = concatenate_datasets([load_dataset(p, split="train") for p in build_datasets(work / "data", 12)])

    device = "cpu" if args.cpu else "cuda"
    dtype = torch.float32 if args.cpu else torch.bfloat16
    with torch.device(device):
        model = Qwen2_5_VLForConditionalGeneration._from_config(config, dtype=dtype)
    model.generation_config.eos_token_id = config.text_config.eos_token_id
    model.generation_config.pad_token_id = config.text_config.pad_token_id
    parameters = sum(p.numel() for p in model.parameters())

    completions_per_step = args.prompts_per_step * args.num_generations
    training_args = GRPOConfig(
        output_dir=str(work / "run"), use_cpu=args.cpu, bf16=not args.cpu, max_steps=args.steps,
        per_device_train_batch_size=completions_per_step, gradient_accumulation_steps=1,
        num_generations=args.num_generations, max_completion_length=args.max_completion_length,
        learning_rate=1e-6, beta=0.0, temperature=1.0, logging_steps=1, report_to="none", save_strategy="no",
        activation_checkpointing=not args.cpu, use_vllm=args.use_vllm, vllm_mode="colocate",
        vllm_gpu_memory_utilization=0.35, seed=0,
    )
    timer = StepTimer()
    trainer = GRPOTrainer(model=model, reward_funcs=[TaskAccuracy("rotation"), TaskAccuracy("jigsaw")],
                          args=training_args, train_dataset=dataset.shuffle(seed=0), processing_class=processor,
                          callbacks=[timer])
    if not args.cpu:
        torch.cuda.reset_peak_memory_stats()
    trainer.train()

    logs = [entry for entry in trainer.state.log_history if "completions/mean_length" in entry]
    measured = list(zip(timer.times, logs))[2:] or list(zip(timer.times, logs))  # drop warm-up steps
    step_time = sum(t for t, _ in measured) / len(measured)
    generated = sum(float(log["completions/mean_length"]) * completions_per_step for _, log in measured) / len(measured)
    tokens_per_step = sum(float(log["num_tokens"]) for _, log in measured[-1:])
    tokens_per_step = tokens_per_step / measured[-1][1]["step"] if measured else 0.0
    # FLOPs: generation forward (2N per token) + policy forward/backward on prompt+completion (6N per token).
    flops = 2 * parameters * generated + 6 * parameters * tokens_per_step
    name = torch.cuda.get_device_name() if not args.cpu else "cpu"
    peak = args.peak_flops or next((v for k, v in PEAK_BF16_FLOPS.items() if k in name), None)

    print(f"device                 {name}")
    print(f"model                  Qwen2.5-VL-{args.size} architecture, {parameters / 1e9:.2f} B parameters, random weights")
    print(f"rollouts               {'vLLM colocate' if args.use_vllm else 'transformers generate'}; "
          f"{args.prompts_per_step} prompts x {args.num_generations} per step, max {args.max_completion_length} new tokens")
    print(f"step time              {step_time:.2f} s (mean of {len(measured)} steps after warm-up)")
    print(f"generated tokens/s     {generated / step_time:.0f} (per GPU; {generated:.0f} tokens per step)")
    print(f"trained tokens/step    {tokens_per_step:.0f} (prompt + completion)")
    if not args.cpu:
        print(f"peak GPU memory        {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB")
    if peak:
        print(f"MFU                    {100 * flops / step_time / peak:.1f} % of {peak / 1e12:.0f} TFLOP/s")


if __name__ == "__main__":
    main()
