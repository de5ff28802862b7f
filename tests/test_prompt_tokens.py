"""The paper recipes keep native image size; at benchmark image sizes their prompts fit the paper's 1,024 tokens."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import prompt_tokens  # noqa: E402


def test_paper_prompts_at_640x480_fit_and_larger_images_are_dropped_by_the_limit():
    records = prompt_tokens.count(
        [(640, 480), (1024, 768)], ["mmbench_rotation", "mmbench_jigsaw", "mmbench_contrastive"]
    )
    by_key = {(r["recipe"], r["size"]): r for r in records}
    assert all(
        by_key[(name, "640x480")]["fits"] for name in ("mmbench_rotation", "mmbench_jigsaw", "mmbench_contrastive")
    )
    # Native size is the point: the same rotation rows at 1024x768 carry more image tokens than the limit allows.
    assert (
        by_key[("mmbench_rotation", "1024x768")]["max_tokens"] > by_key[("mmbench_rotation", "640x480")]["max_tokens"]
    )
    assert not by_key[("mmbench_rotation", "1024x768")]["fits"]
    assert all(r["rows"] == 12 for r in records)


def test_every_paper_data_recipe_keeps_native_size():
    import yaml

    for recipe in (ROOT / "recipes/data").glob("*.yaml"):
        if not recipe.stem.startswith("sample"):
            assert yaml.safe_load(recipe.read_text())["max_side"] == 0, recipe.name
