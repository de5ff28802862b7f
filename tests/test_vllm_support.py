"""train/vllm_support.py on CPU, without vLLM: the double-expansion guard and fix on real SSL4RL rows, the hand-off.

What vLLM itself does with these ids was measured with vLLM 0.30.0's own Qwen2.5-VL processor (see the
module docstring); here the guard must flag exactly the prompts TRL 1.16 would corrupt.
"""

import importlib
from pathlib import Path
from types import SimpleNamespace

import pytest

from ssl4rl_train import vllm_support as vs
from ssl4rl_train.synthetic_qwen import build_synthetic_qwen
from ssl4rl_train.vlm import load_processor

ROOT = Path(__file__).resolve().parents[1]

PIXELS = 448 * 448  # 448-px rotation images: 256 tokens each; 3x3 jigsaw tiles: 25


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return build_synthetic_qwen(tmp_path_factory.mktemp("tiny-qwen"), "tiny")[0]


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    """Real datasets, as GRPO loads them: rotation (2 images a row) and 3x3 jigsaw (9 images a row)."""
    from datasets import load_dataset

    from ssl4rl_data.cli import main

    root, out = tmp_path_factory.mktemp("data"), {}
    for task, extra in (("rotation", []), ("jigsaw", ["--grid", "3"])):
        # A folder name of its own: the datasets cache takes same-named local folders for one dataset.
        folder = root / f"{root.name}-{task}"
        assert main(["build", task, "--limit", "2", "--out", str(folder), "-q", *extra]) == 0
        out[task] = load_dataset(str(folder), split="train")
    return out


@pytest.fixture(scope="module")
def rows(datasets):
    return {task: dataset[0] for task, dataset in datasets.items()}


def test_module_imports_without_vllm():
    assert importlib.util.find_spec("vllm") is None  # CPU installs have no vLLM: the import above worked without it


def test_runs_and_collapse():
    assert vs.image_token_runs([1, 7, 7, 2, 7, 3, 7, 7, 7], 7) == [2, 1, 3]
    assert vs.collapse_image_runs([1, 7, 7, 2, 7, 3, 7, 7, 7], 7) == [1, 7, 2, 7, 3, 7]
    assert vs.collapse_image_runs([1, 7, 2, 7], 7) == [1, 7, 2, 7]  # idempotent


@pytest.mark.parametrize("task, images", [("rotation", 2), ("jigsaw", 9)])
def test_guard_refuses_expanded_colocate_prompts_and_accepts_the_fix(tiny_model, rows, task, images):
    processor = load_processor(str(tiny_model), max_pixels=PIXELS)
    row = rows[task]
    assert len(row["images"]) == images
    expanded, single = vs.trl_prompt_ids(processor, row["prompt"], row["images"])
    grid = processor.image_processor(images=row["images"], return_tensors="pt")["image_grid_thw"]
    tokens = (grid.prod(-1) // processor.image_processor.merge_size**2).tolist()
    assert vs.image_token_runs(expanded, processor.image_token_id) == tokens and min(tokens) > 1
    assert vs.image_token_runs(single, processor.image_token_id) == [1] * images
    with pytest.raises(vs.VLLMSetupError, match="expand them again"):
        vs.check_vllm_prompt(processor, row["prompt"], row["images"], "colocate", unexpanded=False)
    assert vs.check_vllm_prompt(processor, row["prompt"], row["images"], "colocate", unexpanded=True) == tokens
    assert vs.check_vllm_prompt(processor, row["prompt"], row["images"], "server", unexpanded=False) == tokens


def test_guard_passes_when_each_image_is_one_token(tiny_model, rows):
    # Nothing to expand twice: the guard flags the condition, not vLLM as such.
    processor = load_processor(str(tiny_model), max_pixels=28 * 28)
    row = rows["rotation"]
    assert vs.check_vllm_prompt(processor, row["prompt"], row["images"], "colocate", unexpanded=False) == [1, 1]


def test_guard_refuses_images_that_share_a_run(tiny_model, rows):
    # A template without <|vision_start|>/<|vision_end|> around each image: adjacent images make one run, which
    # neither the un-expansion nor TRL's server mode (one run per image) can split back.
    processor = load_processor(str(tiny_model), max_pixels=PIXELS)
    wrapped = "<|vision_start|><|image_pad|><|vision_end|>"
    processor.chat_template = processor.chat_template.replace(wrapped, "<|image_pad|>")
    row = rows["rotation"]
    with pytest.raises(vs.VLLMSetupError, match="2 images make 1 runs"):
        vs.check_vllm_prompt(processor, row["prompt"], row["images"], "server", unexpanded=False)


def test_engine_kwargs_reproduce_the_training_token_counts(tiny_model, rows):
    # vLLM applies mm_processor_kwargs to the checkpoint's processor: doing the same must give training's ids.
    trained = load_processor(str(tiny_model), max_pixels=PIXELS)
    kwargs = vs.vllm_engine_kwargs(trained, 9)
    assert kwargs == {
        "mm_processor_kwargs": {"min_pixels": 28 * 28, "max_pixels": PIXELS},
        "limit_mm_per_prompt": {"image": 9, "video": 0},
    }
    served = load_processor(str(tiny_model), **kwargs["mm_processor_kwargs"])
    default = load_processor(str(tiny_model))
    row = rows["rotation"]
    ids = vs.trl_prompt_ids(trained, row["prompt"], row["images"])[0]
    assert vs.trl_prompt_ids(served, row["prompt"], row["images"])[0] == ids
    assert vs.trl_prompt_ids(default, row["prompt"], row["images"])[0] != ids  # what vLLM does without them


def test_colocated_llm_gets_the_kwargs_and_the_name_is_restored(monkeypatch):
    module = importlib.import_module("trl.generation.vllm_generation")
    calls = []
    monkeypatch.setattr(module, "LLM", lambda **kwargs: calls.append(kwargs), raising=False)
    fake = module.LLM
    extra = {"mm_processor_kwargs": {"max_pixels": 9}, "limit_mm_per_prompt": {"image": 9, "video": 0}}
    with vs.colocated_llm_kwargs(extra):
        module.LLM(model="m", seed=0)
    assert calls == [{"model": "m", "seed": 0, **extra}]
    assert module.LLM is fake
    monkeypatch.delattr(module, "LLM")
    with vs.colocated_llm_kwargs(extra):  # no vLLM: nothing to wrap, TRL raises its own ImportError later
        assert not hasattr(module, "LLM")


def test_unexpand_installs_on_colocate_only(tiny_model, rows):
    processor = load_processor(str(tiny_model), max_pixels=PIXELS)
    row = rows["jigsaw"]
    expanded, single = vs.trl_prompt_ids(processor, row["prompt"], row["images"])
    seen = []
    generation = SimpleNamespace(generate=lambda prompts, images, num_generations: seen.append(prompts) or "out")
    trainer = SimpleNamespace(
        use_vllm=True, vllm_mode="colocate", processing_class=processor, vllm_generation=generation
    )
    assert vs.unexpand_colocated_prompts(trainer)
    out = trainer.vllm_generation.generate([expanded, expanded], images=[row["images"]] * 2, num_generations=2)
    assert out == "out"
    assert seen == [[single, single]]
    server = SimpleNamespace(use_vllm=True, vllm_mode="server", vllm_generation=SimpleNamespace(generate=print))
    assert not vs.unexpand_colocated_prompts(server) and server.vllm_generation.generate is print
    assert not vs.unexpand_colocated_prompts(SimpleNamespace(use_vllm=False))


def server_trainer(multimodal_config):
    info = {"model_config": {"logprobs_mode": "processed_logprobs", "multimodal_config": multimodal_config}}
    client = SimpleNamespace(get_server_info=lambda: info)
    return SimpleNamespace(use_vllm=True, vllm_mode="server", vllm_generation=SimpleNamespace(vllm_client=client))


def test_server_settings_must_match_training():
    engine = {"mm_processor_kwargs": {"min_pixels": 784, "max_pixels": PIXELS}, "limit_mm_per_prompt": {"image": 9}}
    served = {
        "mm_processor_kwargs": {"min_pixels": 784, "max_pixels": PIXELS},
        "limit_per_prompt": {"image": {"count": 9}},
    }  # as vLLM 0.30's /server_info reports them
    vs.check_server_settings(server_trainer(served), engine)
    vs.check_server_settings(server_trainer({"mm_processor_kwargs": engine["mm_processor_kwargs"]}), engine)
    with pytest.raises(vs.VLLMSetupError, match="--mm-processor-kwargs"):
        vs.check_server_settings(server_trainer({"mm_processor_kwargs": None}), engine)
    with pytest.raises(vs.VLLMSetupError, match="max_pixels"):
        vs.check_server_settings(
            server_trainer({"mm_processor_kwargs": {"min_pixels": 784, "max_pixels": 3136}}), engine
        )
    with pytest.raises(vs.VLLMSetupError, match="at most 4 images"):
        vs.check_server_settings(
            server_trainer(
                {"mm_processor_kwargs": engine["mm_processor_kwargs"], "limit_per_prompt": {"image": {"count": 4}}}
            ),
            engine,
        )
    vs.check_server_settings(
        SimpleNamespace(use_vllm=True, vllm_mode="server", vllm_generation=SimpleNamespace()), engine
    )  # not the main process


def test_prepare_checks_the_row_with_most_images_and_sizes_the_engine(tiny_model, datasets):
    from datasets import concatenate_datasets

    mixed = concatenate_datasets([datasets["rotation"], datasets["jigsaw"]])
    processor = load_processor(str(tiny_model), max_pixels=PIXELS)
    assert vs.prepare(processor, mixed, "colocate") == vs.vllm_engine_kwargs(processor, 9)
    assert vs.prepare(processor, datasets["rotation"], "server")["limit_mm_per_prompt"]["image"] == 2
    processor.chat_template = processor.chat_template.replace(
        "<|vision_start|><|image_pad|><|vision_end|>", "<|image_pad|>"
    )
    with pytest.raises(vs.VLLMSetupError, match="9 images make 1 runs"):
        vs.prepare(processor, mixed, "colocate")
