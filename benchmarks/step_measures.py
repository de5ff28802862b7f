"""train_step.py's measurements and report: step times per optimizer step, peak memory, the printed figures."""

import resource
import time

import torch


class StepTimer:
    """A TrainerCallback recording wall time per optimizer step (CUDA-synchronised) and printing each step."""

    def __init__(self, rollout_seconds: list):
        self.times, self._start, self.rollout_seconds = [], None, rollout_seconds

    def on_step_begin(self, args, state, control, **kwargs):
        sync_device()
        self._start = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        sync_device()
        self.times.append(time.perf_counter() - self._start)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "completions/mean_length" in logs and self.times:
            rollout = self.rollout_seconds[-1] if self.rollout_seconds else float("nan")
            print(
                f"step {len(self.times)}: {self.times[-1]:.2f} s (rollout {rollout:.2f} s), mean completion "
                f"{logs['completions/mean_length']:.0f} tokens, peak memory {peak_memory_gib():.1f} GiB",
                flush=True,
            )

    def __getattr__(self, name):  # the other callback events: nothing to do
        if name.startswith("on_"):
            return lambda *args, **kwargs: None
        raise AttributeError(name)


def sync_device():
    """Wait for the GPU's queued work, so a wall time covers it (on a CPU there is none)."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def peak_memory_gib() -> float:
    """Peak memory so far, GiB: allocated on the GPU, else this process's peak resident set."""
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


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
