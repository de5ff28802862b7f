"""Greedy generation for evaluation: transformers (batched, CPU or GPU) or vLLM, with the same settings.

Settings follow VLMEvalKit's Qwen2.5-VL setup: images resized into [min_pixels, max_pixels], greedy
decoding with repetition_penalty 1.0 whatever the checkpoint's generation config says (Qwen's says
1.05, with sampling), at most max_new_tokens, stopping at EOS or at `</answer>` (kept in the output).
"""

import io
import os
import time
from dataclasses import dataclass

STOP = "</answer>"
QWEN_MIN_PIXELS, QWEN_MAX_PIXELS = 1280 * 28 * 28, 16384 * 28 * 28  # VLMEvalKit's Qwen2.5-VL defaults
# Below this many parameters a CPU run uses one thread (unless OMP_NUM_THREADS says otherwise): a tiny
# model's operations are too small to share, and on a busy 2-core machine the threads' synchronisation
# made the 24-row smoke evaluation 6x slower (63 s vs 10 s of generation, measured).
ONE_THREAD_BELOW = 100_000_000


@dataclass
class Settings:
    min_pixels: int = QWEN_MIN_PIXELS
    max_pixels: int = QWEN_MAX_PIXELS
    max_new_tokens: int = 2048
    batch_size: int = 8
    backend: str = "transformers"

    def record(self) -> dict:
        return {
            "min_pixels": self.min_pixels,
            "max_pixels": self.max_pixels,
            "max_new_tokens": self.max_new_tokens,
            "do_sample": False,
            "repetition_penalty": 1.0,
            "stop": [STOP, "EOS"],
            "backend": self.backend,
        }


def chat_text(processor, images: int, prompt: str) -> str:
    content = [{"type": "image"}] * images + [{"type": "text", "text": prompt}]
    return processor.apply_chat_template(
        [{"role": "user", "content": content}], tokenize=False, add_generation_prompt=True
    )


def estimated_tokens(item, settings: Settings) -> int:
    """Prompt length estimate for batching similar rows together: text plus each image's visual tokens
    after resizing into the pixel bounds (read from the image header, not decoded)."""
    from PIL import Image

    total = len(item.prompt) // 3
    for load in item.images:
        try:
            width, height = Image.open(io.BytesIO(load())).size
        except Exception:  # noqa: BLE001  (an unreadable image fails later, where it is decoded)
            width = height = 0
        total += min(max(width * height, settings.min_pixels), settings.max_pixels) // (28 * 28)
    return total


def generate(items, model_path: str, settings: Settings, progress=True) -> tuple[list[str], dict]:
    """The outputs in `items`' order, and facts about the run (device, dtype, seconds, generated tokens)."""
    if settings.backend == "vllm":
        return _generate_vllm(items, model_path, settings)
    import torch
    from transformers import AutoModelForImageTextToText, GenerationConfig

    from ssl4rl_train.vlm import load_processor

    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    processor = load_processor(model_path, min_pixels=settings.min_pixels, max_pixels=settings.max_pixels)
    model = AutoModelForImageTextToText.from_pretrained(model_path, dtype=dtype).to(device).eval()
    own = model.generation_config
    pad = own.pad_token_id if own.pad_token_id is not None else processor.tokenizer.pad_token_id
    config = GenerationConfig(
        do_sample=False,
        repetition_penalty=1.0,
        max_new_tokens=settings.max_new_tokens,
        stop_strings=[STOP],
        eos_token_id=own.eos_token_id,
        pad_token_id=pad,
    )
    threads = torch.get_num_threads()
    if device == "cpu" and "OMP_NUM_THREADS" not in os.environ and model.num_parameters() < ONE_THREAD_BELOW:
        torch.set_num_threads(1)
    try:
        outputs, generated_tokens, seconds = _batches(items, model, processor, config, settings, device, progress)
        used = torch.get_num_threads()
    finally:
        torch.set_num_threads(threads)
    facts = {
        "device": device,
        "dtype": str(dtype).removeprefix("torch."),
        "batch_size": settings.batch_size,
        "seconds": seconds,
        "generated_tokens": generated_tokens,
    }
    if device == "cpu":
        facts["cpu_threads"] = used
    return outputs, facts


def _batches(items, model, processor, config, settings: Settings, device: str, progress: bool):
    """Rows in batches of similar prompt length (less padding), each batch generated at once."""
    import torch
    from tqdm import tqdm

    from ssl4rl_data.images import decode

    order = sorted(range(len(items)), key=lambda i: (len(items[i].images), estimated_tokens(items[i], settings)))
    outputs, generated_tokens, started = [None] * len(items), 0, time.perf_counter()
    batches = [order[start : start + settings.batch_size] for start in range(0, len(order), settings.batch_size)]
    for batch in tqdm(batches, desc="generating", unit="batch", disable=not progress):
        texts = [chat_text(processor, len(items[i].images), items[i].prompt) for i in batch]
        images = [[decode(load()) for load in items[i].images] for i in batch]
        inputs = processor(text=texts, images=images if any(images) else None, padding=True, return_tensors="pt").to(
            device
        )
        with torch.no_grad():
            result = model.generate(**inputs, generation_config=config, tokenizer=processor.tokenizer)
        new = result[:, inputs["input_ids"].shape[1] :]
        generated_tokens += int((new != config.pad_token_id).sum()) if config.pad_token_id is not None else new.numel()
        for i, text in zip(batch, processor.batch_decode(new, skip_special_tokens=True), strict=True):
            outputs[i] = text
    return outputs, generated_tokens, round(time.perf_counter() - started, 3)


def _generate_vllm(items, model_path: str, settings: Settings) -> tuple[list[str], dict]:
    """The same prompts and settings through vLLM (untested here: vLLM is not installed on the
    development machines). Images are handed over decoded; vLLM resizes them with the same bounds."""
    from vllm import LLM, SamplingParams

    from ssl4rl_data.images import decode
    from ssl4rl_train.vlm import load_processor

    processor = load_processor(model_path, min_pixels=settings.min_pixels, max_pixels=settings.max_pixels)
    most = max((len(item.images) for item in items), default=1)
    llm = LLM(
        model=model_path,
        limit_mm_per_prompt={"image": max(most, 1)},
        mm_processor_kwargs={"min_pixels": settings.min_pixels, "max_pixels": settings.max_pixels},
    )
    sampling = SamplingParams(
        temperature=0.0,
        repetition_penalty=1.0,
        max_tokens=settings.max_new_tokens,
        stop=[STOP],
        include_stop_str_in_output=True,
    )
    requests = [
        {
            "prompt": chat_text(processor, len(item.images), item.prompt),
            "multi_modal_data": {"image": [decode(load()) for load in item.images]},
        }
        for item in items
    ]
    started = time.perf_counter()
    results = llm.generate(requests, sampling)
    outputs = [result.outputs[0].text for result in results]
    facts = {
        "device": "cuda",
        "dtype": str(llm.llm_engine.model_config.dtype).removeprefix("torch."),
        "seconds": round(time.perf_counter() - started, 3),
        "generated_tokens": sum(len(result.outputs[0].token_ids) for result in results),
    }
    return outputs, facts
