"""`python train/synthetic_qwen.py`: a documented command that writes a loadable random-weight Qwen2.5-VL.

The script itself runs as a file for its help and usage errors here (and builds the tiny model as a file in
benchmarks/gpu_check.sh --cpu, tests/test_gpu_check.py); the models are built by its `main` in-process.
"""

import subprocess
import sys
from pathlib import Path

from ssl4rl_train.synthetic_qwen import main

ROOT = Path(__file__).resolve().parents[1]


def run(*args):
    return subprocess.run(
        [sys.executable, str(ROOT / "train" / "synthetic_qwen.py"), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
    )


def build(*args):
    """The command's `main` with these arguments, in this process; its exit code."""
    return main([str(a) for a in args])


def test_help_documents_the_command():
    result = run("--help")
    assert result.returncode == 0, result.stderr
    for option in ("--size", "--out", "--seed", "--no-weights", "tiny", "3b"):
        assert option in result.stdout
    assert "random weights" in result.stdout


def test_tiny_model_is_written_and_loads(tmp_path):
    import torch
    from transformers import AutoModelForImageTextToText

    from ssl4rl_train.vlm import load_processor

    assert build("--size", "tiny", "--out", tmp_path / "tiny", "--seed", "3") == 0
    model = AutoModelForImageTextToText.from_pretrained(tmp_path / "tiny")
    processor = load_processor(str(tmp_path / "tiny"))
    assert model.config.model_type == "qwen2_5_vl" and model.config.text_config.hidden_size == 16
    assert processor.tokenizer.convert_tokens_to_ids("<|image_pad|>") == model.config.image_token_id
    # The same seed gives the same weights; the command and the importable function agree.
    from ssl4rl_train.synthetic_qwen import build_synthetic_qwen

    build_synthetic_qwen(tmp_path / "again", "tiny", seed=3)
    again = AutoModelForImageTextToText.from_pretrained(tmp_path / "again")
    for (name, a), (_, b) in zip(model.state_dict().items(), again.state_dict().items()):
        assert torch.equal(a, b), name


def test_bfloat16_weights(tmp_path):
    import torch
    from safetensors.torch import load_file

    assert build("--size", "tiny", "--out", tmp_path / "bf16", "--dtype", "bfloat16") == 0
    weights = load_file(str(tmp_path / "bf16" / "model.safetensors"))
    assert {tensor.dtype for tensor in weights.values()} == {torch.bfloat16}


def test_no_weights_writes_the_3b_config_only(tmp_path):
    assert build("--size", "3b", "--out", tmp_path / "cfg", "--no-weights") == 0
    assert not (tmp_path / "cfg" / "model.safetensors").exists()
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(tmp_path / "cfg")
    assert (config.text_config.hidden_size, config.text_config.num_hidden_layers, config.vision_config.depth) == (
        2048,
        36,
        32,
    )


def test_missing_size_is_a_usage_error(tmp_path):
    result = run("--out", tmp_path / "x")
    assert result.returncode == 2 and "--size" in result.stderr


def test_chat_template_copy_matches_trl():
    from trl.chat_template_utils import qwen2_5_vl_chat_template

    from ssl4rl_train.synthetic_qwen import qwen2_5_vl_chat_template as copy

    assert copy == qwen2_5_vl_chat_template
