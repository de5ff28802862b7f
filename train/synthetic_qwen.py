"""Qwen2.5-VL models with random weights, built offline: `tiny` for tests, `3b` for benchmarks.

The tokenizer is byte-level (no merges) with the Qwen special tokens; for `3b` the vocabulary is
padded with filler entries to the real size, so the special tokens keep their real ids (151643..)
and the embedding and LM head have the real shapes. The image processor is the PIL one, the chat
template is TRL's Qwen2.5-VL template, and the saved files name the standard `Qwen2_5_VLProcessor`,
so loading them exercises the same code paths as Qwen/Qwen2.5-VL-3B-Instruct.
"""

import json
from pathlib import Path

import torch
from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2Tokenizer
from transformers.convert_slow_tokenizer import bytes_to_unicode
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil
from trl.chat_template_utils import qwen2_5_vl_chat_template

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
                  "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>",
                  "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>"]

SIZES = {
    "tiny": {
        "regular_vocab": 256, "max_pixels": 56 * 56,
        "text": {"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
                 "num_key_value_heads": 2, "rope_scaling": {"type": "mrope", "mrope_section": [1, 1]},
                 "max_position_embeddings": 4096},
        "vision": {"depth": 2, "hidden_size": 16, "intermediate_size": 32, "num_heads": 2, "out_hidden_size": 16,
                   "fullatt_block_indexes": [1], "window_size": 56},
    },
    # The published Qwen2.5-VL-3B-Instruct architecture.
    "3b": {
        "regular_vocab": 151643, "max_pixels": 12845056,
        "text": {"hidden_size": 2048, "intermediate_size": 11008, "num_hidden_layers": 36, "num_attention_heads": 16,
                 "num_key_value_heads": 2, "rope_theta": 1000000.0, "max_position_embeddings": 128000,
                 "rope_scaling": {"type": "mrope", "mrope_section": [16, 24, 24]}, "rms_norm_eps": 1e-6},
        "vision": {"depth": 32, "hidden_size": 1280, "intermediate_size": 3420, "num_heads": 16, "out_hidden_size": 2048,
                   "fullatt_block_indexes": [7, 15, 23, 31], "window_size": 112},
    },
}


def build_tokenizer(regular_vocab: int):
    symbols = list(bytes_to_unicode().values())
    vocab = {symbol: index for index, symbol in enumerate(symbols)}
    for index in range(len(symbols), regular_vocab):  # never produced by encoding; decodable filler
        vocab[f"<filler{index}>"] = index
    tokenizer = Qwen2Tokenizer(vocab=vocab, merges=[], unk_token=None, bos_token=None, eos_token=None, pad_token=None)
    tokenizer.add_special_tokens({"additional_special_tokens": SPECIAL_TOKENS})  # in Qwen's order: 151643..
    tokenizer.eos_token, tokenizer.pad_token = "<|im_end|>", "<|endoftext|>"
    tokenizer.chat_template = qwen2_5_vl_chat_template
    return tokenizer


def qwen_config(size: str, tokenizer) -> Qwen2_5_VLConfig:
    spec, ids = SIZES[size], {token: tokenizer.convert_tokens_to_ids(token) for token in SPECIAL_TOKENS}
    vocab_size = 151936 if size == "3b" else len(tokenizer)  # the real model pads its embedding to 151936
    return Qwen2_5_VLConfig(
        text_config={**spec["text"], "vocab_size": vocab_size, "tie_word_embeddings": True,
                     "bos_token_id": ids["<|endoftext|>"], "eos_token_id": ids["<|im_end|>"],
                     "pad_token_id": ids["<|endoftext|>"]},
        vision_config={**spec["vision"], "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2},
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
    )


def build_synthetic_qwen(folder: Path, size: str = "tiny", seed: int = 0, save_weights: bool = True):
    """Write tokenizer, image processor and config to `folder` (and random weights when `save_weights`).

    Returns (folder, config).
    """
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
        model = Qwen2_5_VLForConditionalGeneration(config)
        model.generation_config.eos_token_id = config.text_config.eos_token_id
        model.generation_config.pad_token_id = config.text_config.pad_token_id
        model.save_pretrained(folder)
    else:
        config.save_pretrained(folder)
    return folder, config
