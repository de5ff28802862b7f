"""Evaluation throughput: rows/s and generated tokens/s of train/evaluate.py's generation.

    python benchmarks/eval_throughput.py                          # tiny random Qwen2.5-VL on the CPU
    python benchmarks/eval_throughput.py --size 3b --rows 256 --batch-size 32 --max-new-tokens 256   # a GPU
    python benchmarks/eval_throughput.py --model out/qwen3b --rows 64                                 # any checkpoint

Rows are MMBench-style multiple-choice items (VLMEvalKit's prompt layout, the paper's instruction) on
the bundled sample photos (640x480 crops), generated with evaluate.py's own settings: pixel bounds
(VLMEvalKit's by default), greedy, repetition_penalty 1.0, stop at </answer> or EOS. A random-weight
model never writes EOS or </answer>, so every row runs to --max-new-tokens: the figures are decoding
throughput at that length, with prefill and image encoding included (model loading is not).
"""

import argparse
import io
import sys
import tempfile
import time
from pathlib import Path

from ssl4rl_data.sources.sample import PHOTOS, photo_dir
from ssl4rl_train.eval_data import Item, multiple_choice_prompt
from ssl4rl_train.generation import QWEN_MAX_PIXELS, QWEN_MIN_PIXELS, Settings, generate


def items(rows: int) -> list[Item]:
    from PIL import Image

    photos = []
    for name in PHOTOS:
        buffer = io.BytesIO()
        Image.open(photo_dir() / name).convert("RGB").resize((640, 480)).save(buffer, format="JPEG", quality=90)
        photos.append(buffer.getvalue())
    found = []
    for number in range(rows):
        item = Item(
            benchmark="mmbench",
            id=str(number),
            answer="A",
            hint="Look at the whole picture.",
            question=f"Which description fits the picture best? ({number})",
            options={"A": "a street scene", "B": "an animal", "C": "a landscape", "D": "food on a table"},
            images=[lambda data=photos[number % len(photos)]: data],
        )
        item.prompt = multiple_choice_prompt(item, "paper")
        found.append(item)
    return found


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=["tiny", "3b"], default="tiny", help="Random-weight model to build.")
    parser.add_argument("--model", help="Use this checkpoint instead of building one.")
    parser.add_argument("--rows", type=int, default=24)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--min-pixels", type=int, default=QWEN_MIN_PIXELS)
    parser.add_argument("--max-pixels", type=int, default=QWEN_MAX_PIXELS)
    parser.add_argument("--backend", choices=["transformers", "vllm"], default="transformers")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as work:
        model = args.model
        if model is None:
            import torch

            from ssl4rl_train.synthetic_qwen import build_synthetic_qwen

            cuda = torch.cuda.is_available()
            extra = {"dtype": torch.bfloat16, "device": "cuda"} if cuda and args.size == "3b" else {}
            model = str(build_synthetic_qwen(Path(work) / "model", args.size, **extra)[0])
        settings = Settings(args.min_pixels, args.max_pixels, args.max_new_tokens, args.batch_size, args.backend)
        rows = items(args.rows)
        started = time.perf_counter()
        outputs, facts = generate(rows, model, settings, progress=False)
        total = time.perf_counter() - started
    seconds = facts["seconds"]
    print(
        f"eval throughput: {args.rows} rows, model {args.model or args.size}, {facts.get('device')} "
        f"{facts.get('dtype')}, batch {args.batch_size}, max_new_tokens {args.max_new_tokens}, "
        f"pixels [{args.min_pixels}, {args.max_pixels}]"
    )
    print(
        f"rows/s              {args.rows / seconds:.2f} generating ({seconds:.1f} s); "
        f"{args.rows / total:.2f} with model loading ({total:.1f} s)"
    )
    print(f"generated tokens/s  {facts['generated_tokens'] / seconds:.1f} ({facts['generated_tokens']} tokens)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
