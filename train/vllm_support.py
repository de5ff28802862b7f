"""vLLM rollouts for Qwen2.5-VL under TRL 1.16: prompts expanded once, images sized as in training.

TRL 1.16 hands vLLM the processor-expanded prompt ids (each image already N `<|image_pad|>`) plus the
raw images (upstream TRL issues 6294, 6401; PR 6718 open). In colocate mode vLLM 0.30's Qwen2.5-VL
processor replaces every single `<|image_pad|>` it finds by a whole image's tokens, from the left: the
images land inside the first image's slot, the other slots stay raw pad tokens, the prompt grows
(vLLM 0.30.0's own processor on CPU, real rows, max_pixels 448*448: rotation 722 -> 920 tokens, 3x3
jigsaw 751 -> 877) and rollouts are sampled from that corrupted context, silently. Given one
placeholder per image, its prompt equals training's token for token. Server mode is right with
expanded ids (TRL puts the server's image features on the runs of image tokens in its own ids) if the
server counts the same tokens per image. vLLM counts them with the checkpoint's processor defaults
unless given `mm_processor_kwargs`, and TRL 1.16 has no option to pass them. Imports without vLLM.
"""

import contextlib
import copy
import functools
import importlib
import itertools
import json


class VLLMSetupError(ValueError):
    """A vLLM setting that would make rollouts differ from what training sees."""


def image_token_runs(ids, token_id: int) -> list[int]:
    """Lengths of the maximal runs of `token_id` in `ids`, in order (one run per image for Qwen2.5-VL)."""
    return [len(list(run)) for token, run in itertools.groupby(ids) if token == token_id]


def collapse_image_runs(ids, token_id: int) -> list[int]:
    """`ids` with each run of `token_id` cut to one token: the prompt vLLM expects (it expands it itself)."""
    return [kept for token, run in itertools.groupby(ids) for kept in ([token] if token == token_id else run)]


def trl_prompt_ids(processor, prompt, images) -> tuple[list[int], list[int]]:
    """(ids TRL 1.16 tokenizes and hands vLLM, ids of the same prompt with one placeholder per image).

    The first is rendered exactly as GRPOTrainer does (images put into the prompt's image parts by TRL's
    own `prepare_multimodal_messages`, then one processor call); the second by the tokenizer alone.
    """
    from trl.data_utils import prepare_multimodal_messages

    messages = prepare_multimodal_messages(copy.deepcopy(list(prompt)), images=list(images))
    expanded = processor.apply_chat_template(
        conversation=[messages], add_generation_prompt=True, tokenize=True, return_dict=True
    )["input_ids"][0]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    return list(expanded), processor.tokenizer(text, add_special_tokens=False)["input_ids"]


def check_vllm_prompt(processor, prompt, images, vllm_mode: str, unexpanded: bool) -> list[int]:
    """Image tokens per image in training; raises VLLMSetupError if vLLM would see another prompt.

    `unexpanded`: whether `unexpand_colocated_prompts` is installed. Colocate mode without it raises as soon
    as an image takes more than one token (vLLM would expand it again); server mode needs one run per image.
    """
    expanded, single = trl_prompt_ids(processor, prompt, images)
    runs = image_token_runs(expanded, processor.image_token_id)
    if len(runs) != len(images):
        raise VLLMSetupError(
            f"the prompt's {len(images)} images make {len(runs)} runs of image tokens; vLLM rollouts "
            "need exactly one run per image"
        )
    if vllm_mode == "colocate":
        sent = collapse_image_runs(expanded, processor.image_token_id) if unexpanded else expanded
        if sent != single:
            raise VLLMSetupError(
                f"colocated vLLM would get {len(sent)} prompt tokens with image runs "
                f"{image_token_runs(sent, processor.image_token_id)} instead of one placeholder per "
                "image, and expand them again (TRL issue 6294); install unexpand_colocated_prompts"
            )
    return runs


def vllm_engine_kwargs(processor, max_images: int) -> dict:
    """vLLM engine settings that size images as `processor` does: the same min/max pixels, so the same tokens."""
    size = processor.image_processor.size
    return {
        "mm_processor_kwargs": {"min_pixels": int(size["shortest_edge"]), "max_pixels": int(size["longest_edge"])},
        "limit_mm_per_prompt": {"image": int(max_images), "video": 0},
    }


def prepare(processor, dataset, vllm_mode: str) -> dict:
    """Check the row with the most images (see check_vllm_prompt) and return the engine settings for vLLM."""
    counts = [
        sum(part.get("type") == "image" for message in prompt for part in message["content"])
        for prompt in dataset["prompt"]
    ]  # the light column: no image is decoded
    row = dataset[counts.index(max(counts))]
    check_vllm_prompt(processor, row["prompt"], row["images"], vllm_mode, unexpanded=True)
    return vllm_engine_kwargs(processor, max(counts))


def attach(trainer, engine_kwargs: dict) -> None:
    """After the trainer is built: un-expand colocated prompts, refuse a server that sizes images otherwise."""
    unexpand_colocated_prompts(trainer)
    check_server_settings(trainer, engine_kwargs)


@contextlib.contextmanager
def colocated_llm_kwargs(engine_kwargs: dict):
    """While open, TRL's colocated `LLM(...)` also gets `engine_kwargs`; wrap the trainer's construction in it.

    TRL 1.16 builds `vllm.LLM` inside GRPOTrainer.__init__ with a fixed argument list; this swaps the name it
    calls for one adding the keyword arguments, and puts it back. Without vLLM there is nothing to wrap.
    """
    module = importlib.import_module("trl.generation.vllm_generation")
    original = getattr(module, "LLM", None)
    if original is None:
        yield
        return
    module.LLM = functools.partial(original, **engine_kwargs)
    try:
        yield
    finally:
        module.LLM = original


def unexpand_colocated_prompts(trainer) -> bool:
    """Make the trainer's colocated vLLM get one placeholder per image (vLLM expands them with the images).

    Only vLLM's copy changes: GRPO 1.16 drops the prompt ids vLLM returns and trains on its own expanded ids.
    Idempotent on prompts already un-expanded (a TRL with PR 6718). Returns whether it was installed.
    """
    if not getattr(trainer, "use_vllm", False) or trainer.vllm_mode != "colocate":
        return False
    generation, token_id = trainer.vllm_generation, trainer.processing_class.image_token_id
    generate = generation.generate

    @functools.wraps(generate)
    def generate_unexpanded(prompts, *args, **kwargs):
        return generate([collapse_image_runs(ids, token_id) for ids in prompts], *args, **kwargs)

    generation.generate = generate_unexpanded
    return True


def check_server_settings(trainer, engine_kwargs: dict) -> None:
    """In server mode, refuse a vLLM server that sizes images otherwise than training (main process only).

    The server must be started with the same settings, e.g.
    `trl vllm-serve --model M --mm-processor-kwargs '{"min_pixels": A, "max_pixels": B}'`.
    """
    if not getattr(trainer, "use_vllm", False) or trainer.vllm_mode != "server":
        return
    client = getattr(trainer.vllm_generation, "vllm_client", None)
    if client is None:  # only the main process talks to the server
        return
    multimodal = client.get_server_info()["model_config"].get("multimodal_config") or {}
    wanted, served = engine_kwargs["mm_processor_kwargs"], multimodal.get("mm_processor_kwargs") or {}
    differing = {key: served.get(key) for key, value in wanted.items() if served.get(key) != value}
    if differing:
        raise VLLMSetupError(
            f"the vLLM server sizes images with {differing} where training uses {wanted}: restart it "
            f"with --mm-processor-kwargs '{json.dumps(wanted)}'"
        )
    limit = (multimodal.get("limit_per_prompt") or {}).get("image")
    count = limit.get("count") if isinstance(limit, dict) else limit
    if count is not None and count < engine_kwargs["limit_mm_per_prompt"]["image"]:
        raise VLLMSetupError(
            f"the vLLM server takes at most {count} images per prompt; the data has up to "
            f"{engine_kwargs['limit_mm_per_prompt']['image']}"
        )
