"""Qwen2.5-VL models with random weights, built offline: `tiny` for tests, `3b` for benchmarks.

The tokenizer is byte-level (no merges) with the Qwen special tokens; for `3b` the vocabulary is
padded with filler entries to the real size, so the special tokens keep their real ids (151643..)
and the embedding and LM head have the real shapes. The image processor is the PIL one, the chat
template is TRL's Qwen2.5-VL template, and the saved files name the standard `Qwen2_5_VLProcessor`,
so loading them exercises the same code paths as Qwen/Qwen2.5-VL-3B-Instruct.

    python train/synthetic_qwen.py --size tiny --out out/tiny-qwen            # about 200 KB, 0.1 s
    python train/synthetic_qwen.py --size 3b --out out/qwen3b --dtype bfloat16 --device cuda   # 7.5 GB
    python train/synthetic_qwen.py --size 3b --out out/qwen3b-config --no-weights   # config + processor only

The folder loads with `AutoModelForImageTextToText.from_pretrained` and `train/vlm.py`'s
`load_processor`, so train/grpo.py, train/evaluate.py and benchmarks/train_step.py take it as a model.
"""

import argparse
import json
import sys
from pathlib import Path

# torch and transformers load inside the functions that use them: `--help` and usage errors answer at once.

# TRL's Qwen2.5-VL chat template (trl/chat_templates/qwen2_5_vl.jinja, TRL 1.16, Apache-2.0), copied so
# that building a model needs neither TRL nor its imports (pandas, datasets); a test keeps it equal to TRL's.
qwen2_5_vl_chat_template = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "{% endif %}<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}{{ message['content'] }}"
    "<|im_end|>\n{% else %}{% for content in message['content'] %}{% if content['type'] == 'image' or 'image' in "
    "content or 'image_url' in content %}{% set image_count.value = image_count.value + 1 %}{% if add_vision_id %}"
    "Picture {{ image_count.value }}: {% endif %}<|vision_start|><|image_pad|><|vision_end|>{% elif content['type'] == "
    "'video' or 'video' in content %}{% set video_count.value = video_count.value + 1 %}{% if add_vision_id %}Video "
    "{{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>{% elif 'text' in content %}"
    "{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endif %}{% endfor %}{% if add_generation_prompt %}"
    "<|im_start|>assistant\n{% endif %}"
)

SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
]

SIZES = {
    "tiny": {
        "regular_vocab": 256,
        "max_pixels": 56 * 56,
        "text": {
            "hidden_size": 16,
            "intermediate_size": 32,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "rope_scaling": {"type": "mrope", "mrope_section": [1, 1]},
            "max_position_embeddings": 4096,
        },
        "vision": {
            "depth": 2,
            "hidden_size": 16,
            "intermediate_size": 32,
            "num_heads": 2,
            "out_hidden_size": 16,
            "fullatt_block_indexes": [1],
            "window_size": 56,
        },
    },
    # The published Qwen2.5-VL-3B-Instruct architecture.
    "3b": {
        "regular_vocab": 151643,
        "max_pixels": 12845056,
        "text": {
            "hidden_size": 2048,
            "intermediate_size": 11008,
            "num_hidden_layers": 36,
            "num_attention_heads": 16,
            "num_key_value_heads": 2,
            "rope_theta": 1000000.0,
            "max_position_embeddings": 128000,
            "rope_scaling": {"type": "mrope", "mrope_section": [16, 24, 24]},
            "rms_norm_eps": 1e-6,
        },
        "vision": {
            "depth": 32,
            "hidden_size": 1280,
            "intermediate_size": 3420,
            "num_heads": 16,
            "out_hidden_size": 2048,
            "fullatt_block_indexes": [7, 15, 23, 31],
            "window_size": 112,
        },
    },
}


def build_tokenizer(regular_vocab: int):
    from transformers import Qwen2Tokenizer
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    symbols = list(bytes_to_unicode().values())
    vocab = {symbol: index for index, symbol in enumerate(symbols)}
    for index in range(len(symbols), regular_vocab):  # never produced by encoding; decodable filler
        vocab[f"<filler{index}>"] = index
    tokenizer = Qwen2Tokenizer(vocab=vocab, merges=[], unk_token=None, bos_token=None, eos_token=None, pad_token=None)
    tokenizer.add_special_tokens({"additional_special_tokens": SPECIAL_TOKENS})  # in Qwen's order: 151643..
    tokenizer.eos_token, tokenizer.pad_token = "<|im_end|>", "<|endoftext|>"
    tokenizer.chat_template = qwen2_5_vl_chat_template
    return tokenizer


def qwen_config(size: str, tokenizer):
    """The Qwen2_5_VLConfig of `size`, with the special-token ids of `tokenizer`."""
    from transformers import Qwen2_5_VLConfig

    spec, ids = SIZES[size], {token: tokenizer.convert_tokens_to_ids(token) for token in SPECIAL_TOKENS}
    vocab_size = 151936 if size == "3b" else len(tokenizer)  # the real model pads its embedding to 151936
    return Qwen2_5_VLConfig(
        text_config={
            **spec["text"],
            "vocab_size": vocab_size,
            "tie_word_embeddings": True,
            "bos_token_id": ids["<|endoftext|>"],
            "eos_token_id": ids["<|im_end|>"],
            "pad_token_id": ids["<|endoftext|>"],
        },
        vision_config={**spec["vision"], "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2},
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
    )


def build_synthetic_qwen(
    folder: Path,
    size: str = "tiny",
    seed: int = 0,
    save_weights: bool = True,
    dtype=None,
    device: str = "cpu",
):
    """Write tokenizer, image processor and config to `folder` (and random weights when `save_weights`).

    The weights are initialised from `seed` on `device` in `dtype`, a torch dtype (default float32; the 3B
    model: 15 GB in float32, 7.5 GB in bfloat16; initialising it on a GPU takes seconds, on a CPU minutes).
    Returns (folder, config).
    """
    import torch
    from transformers import Qwen2_5_VLForConditionalGeneration
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    dtype = dtype or torch.float32
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(SIZES[size]["regular_vocab"])
    config = qwen_config(size, tokenizer)
    tokenizer.save_pretrained(folder)
    Qwen2VLImageProcessorPil(min_pixels=28 * 28, max_pixels=SIZES[size]["max_pixels"]).save_pretrained(folder)
    (folder / "processor_config.json").write_text(json.dumps({"processor_class": "Qwen2_5_VLProcessor"}))
    (folder / "chat_template.json").write_text(json.dumps({"chat_template": qwen2_5_vl_chat_template}))
    if save_weights:
        torch.manual_seed(seed)
        if dtype == torch.float32 and device == "cpu":
            model = Qwen2_5_VLForConditionalGeneration(config)
        else:
            with torch.device(device):
                model = Qwen2_5_VLForConditionalGeneration._from_config(config, dtype=dtype)
        model.generation_config.eos_token_id = config.text_config.eos_token_id
        model.generation_config.pad_token_id = config.text_config.pad_token_id
        model.save_pretrained(folder)
    else:
        config.save_pretrained(folder)
    return folder, config


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="synthetic_qwen.py",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=__doc__.split("\n\n")[0] + "\n\n" + __doc__.split("\n\n", 1)[1],
    )
    parser.add_argument(
        "--size",
        choices=sorted(SIZES),
        required=True,
        help="tiny: hidden 16, 2 layers, byte vocabulary (tests); 3b: the Qwen2.5-VL-3B-Instruct architecture.",
    )
    parser.add_argument(
        "--out", type=Path, required=True, help="Folder to write (created; existing files are overwritten)."
    )
    parser.add_argument("--seed", type=int, default=0, help="Seed of the random weights (default 0).")
    parser.add_argument(
        "--no-weights",
        action="store_true",
        help="Write config, tokenizer and processor only (what benchmarks/train_step.py needs).",
    )
    parser.add_argument(
        "--dtype",
        choices=["float32", "bfloat16", "float16"],
        default="float32",
        help="Dtype of the saved weights (default float32).",
    )
    parser.add_argument("--device", default="cpu", help="Where to initialise the weights, e.g. cuda (default cpu).")
    args = parser.parse_args(argv)
    import torch

    folder, config = build_synthetic_qwen(
        args.out,
        args.size,
        seed=args.seed,
        save_weights=not args.no_weights,
        dtype=getattr(torch, args.dtype),
        device=args.device,
    )
    what = "config, tokenizer and processor" if args.no_weights else f"random {args.dtype} weights (seed {args.seed})"
    print(f"wrote Qwen2.5-VL-{args.size}: {what} to {folder}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
