"""benchmarks/gpu_check.sh --cpu end to end, and the model-FLOP accounting of benchmarks/train_flops.py."""

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from train_flops import Arch, arch_from_config, old_logps_computed, rollout_flops  # noqa: E402

# Round numbers, so every term can be checked by hand.
ARCH = Arch(
    text_matmul=100,
    lm_head=10,
    text_layers=2,
    text_attn_width=3,
    patch_matmul=5,
    merger_matmul=7,
    merge=4,
    vision_full_layers=1,
    vision_window_layers=2,
    vision_window_patches=4,
    vision_attn_width=2,
)


def test_rollout_flops_match_a_hand_computation():
    # One rollout: a 3-token prompt holding one image of 8 patches, a 2-token completion.
    # Vision forward: patches 2*5*8 = 80; merger 2*7*(8/4) = 28; attention: each of the 8 patches has
    # 8 keys in the full layer and min(4, 8) = 4 in each of 2 window layers, 16 keys, 4*2 FLOPs per key: 4*2*8*16 = 1024.
    vision = 80 + 28 + 1024
    # Prefill: 3 tokens x 2*100 = 600; causal keys 1+2+3 = 6, x 4*3 per layer x 2 layers = 144; one logits row 2*10 = 20.
    prefill = vision + 600 + 144 + 20
    # Decode: one forward (token 2 is fed back; token 1 came from the prefill) at position 3: 200 + 4 keys*4*3*2 + 20.
    decode = 200 + 96 + 20
    # Scoring forward (old log-probs, reference, and a third of training): vision + 5 tokens (1000) + keys 1+..+5 = 15
    # (15*4*3*2 = 360) + 2 logits rows (40).
    scored = vision + 1000 + 360 + 40
    assert (vision, prefill, decode, scored) == (1132, 1896, 316, 2532)

    flops = rollout_flops(ARCH, 3, 2, [8])
    assert flops == {
        "rollout_prefill": 1896,
        "rollout_decode": 316,
        "old_logps": 0,
        "reference": 0,
        "train": 3 * 2532,
        "total": 1896 + 316 + 3 * 2532,
    }
    both = rollout_flops(ARCH, 3, 2, [8], old_logps=True, reference=True, prefill_shared_by=2)
    assert both["old_logps"] == both["reference"] == 2532
    assert both["rollout_prefill"] == 1896 / 2  # a prefix cache shares one prompt's prefill between 2 rollouts
    assert both["total"] == 948 + 316 + 2532 + 2532 + 3 * 2532


def test_rollout_flops_count_vision_per_patch_and_per_image():
    one = rollout_flops(ARCH, 10, 1, [8])["rollout_prefill"]
    two = rollout_flops(ARCH, 10, 1, [4, 4])["rollout_prefill"]
    # Same patches and merger work; full attention within each image: 8*8 keys for one image, 2*4*4 for two.
    assert one - two == 4 * 2 * (8 * 8 - 2 * 4 * 4)
    assert rollout_flops(ARCH, 10, 1, [])["rollout_decode"] == 0  # one token comes from the prefill alone


def test_arch_counts_the_models_own_weights(tmp_path):
    import torch
    from transformers import Qwen2_5_VLForConditionalGeneration

    from ssl4rl_train.synthetic_qwen import build_synthetic_qwen

    for size in ("tiny", "3b"):
        _, config = build_synthetic_qwen(tmp_path / size, size, save_weights=False)
        with torch.device("meta"):
            model = Qwen2_5_VLForConditionalGeneration._from_config(config)
        matrices = {name: p.numel() for name, p in model.named_parameters() if p.dim() >= 2}
        arch = arch_from_config(config)
        assert arch.text_matmul == sum(n for k, n in matrices.items() if "language_model.layers" in k)
        assert arch.merger_matmul == sum(n for k, n in matrices.items() if "visual.merger" in k)
        assert arch.patch_matmul == sum(n for k, n in matrices.items() if "visual" in k and "merger" not in k)
        assert arch.lm_head == config.text_config.vocab_size * config.text_config.hidden_size
    assert sum(p.numel() for p in model.parameters()) == 3_754_622_976  # Qwen2.5-VL-3B-Instruct
    assert (arch.vision_full_layers, arch.vision_window_layers, arch.vision_window_patches, arch.merge) == (
        4,
        28,
        64,
        4,
    )


def test_old_logps_pass_follows_trl():
    assert not old_logps_computed(1, 1, 1)  # generate every step, one update per generation
    assert old_logps_computed(1, 1, 2)  # num_iterations > 1
    assert old_logps_computed(4, 16, 1)  # steps_per_generation > gradient_accumulation_steps (the paper recipe)
    assert not old_logps_computed(4, 4, 1)
    assert old_logps_computed(1, 1, 1, use_vllm=True)  # vLLM importance-sampling correction
    assert not old_logps_computed(1, 1, 1, use_vllm=True, vllm_importance_sampling_correction=False)


def number(pattern, text):
    found = re.search(pattern, text, re.MULTILINE)
    assert found, f"no match for {pattern!r} in:\n{text}"
    return float(found.group(1))


def test_cpu_mode_runs_every_stage_and_prints_the_summary(tmp_path):
    env = {
        **os.environ,
        "PYTHON": sys.executable,
        "OUT": str(tmp_path / "out"),
        "GPU_CHECK_WORK": str(tmp_path / "work"),
    }
    result = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--cpu"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    summary = output[output.index("ssl4rl GPU check (cpu): summary") :]
    for stage in ("data", "model", "train", "eval"):
        assert re.search(rf"\b{stage} ok\b", summary), summary
    assert "install" not in summary.splitlines()[1]  # --cpu uses the current python, installs nothing
    assert number(r"^data\s+rotation (\d+) rows", summary) > 0
    assert number(r"^data\s+.*jigsaw (\d+) rows", summary) > 0
    step = number(r"^step time\s+([0-9.]+) s", summary)
    assert 0 < step < 120
    assert number(r"^generated tokens/s\s+([0-9.]+) per GPU", summary) > 0
    assert 0 < number(r"^peak memory\s+([0-9.]+) GiB host RSS", summary) < 24
    assert number(r"^model FLOPs per step\s+([0-9.e+-]+) TFLOP", summary) > 0
    # Trained from the saved checkpoint with beta 0.01: the reference model's pass ran and is counted.
    assert number(r"^model FLOPs per step.*reference ([0-9.e+-]+)", summary) > 0
    assert number(r"^achieved\s+([0-9.e+-]+) TFLOP/s", summary) > 0
    assert re.search(r"^MFU\s+n/a", summary, re.MULTILINE)  # no peak FLOP/s for a CPU
    assert number(r"^eval rows/s\s+([0-9.]+)", summary) > 0
    scored = re.search(r"^eval scores\s+ssl:rotation: (\d+) rows[^;]*; ssl:jigsaw: (\d+) rows", summary, re.MULTILINE)
    assert scored and scored.groups() == ("3", "3")  # --limit 3 per dataset, each scored under its own name
    assert summary.strip() in (tmp_path / "out" / "gpu_check_summary.txt").read_text()
    assert "summary" in (tmp_path / "out" / "gpu_check.log").read_text()
