"""Model-FLOP accounting of a Qwen2.5-VL GRPO step, for train_step.py's MFU: every pass TRL's GRPOTrainer
makes over a rollout, counted from the model's shapes and the prompts' token and patch counts."""

import dataclasses

PEAK_BF16_FLOPS = {"H100": 989e12, "H200": 989e12, "A100": 312e12}  # dense bf16 tensor-core peaks


@dataclasses.dataclass(frozen=True)
class Arch:
    """The numbers of a Qwen2.5-VL that its FLOPs depend on (matmul weights only; norms, biases,
    activations and softmax are left out: under 1% of the total)."""

    text_matmul: int  # decoder-layer matmul weights of the language model (all layers), used once per token
    lm_head: int  # vocab x hidden, used once per token whose logits are computed
    text_layers: int
    text_attn_width: int  # query heads x head dim: QK^T and AV cost 2 x this x keys each, per layer
    patch_matmul: int  # vision weights used once per 14x14 patch: the patch embedding and every block
    merger_matmul: int  # the patch merger's weights, used once per merged token (merge x merge patches)
    merge: int  # patches per merged (text) token: spatial_merge_size ** 2
    vision_full_layers: int  # blocks attending over the whole image
    vision_window_layers: int  # blocks attending within windows
    vision_window_patches: int  # patches per window (8 x 8 for Qwen2.5-VL)
    vision_attn_width: int  # vision hidden size


def arch_from_config(config) -> Arch:
    """`Arch` of a `Qwen2_5_VLConfig`, counted from its shapes."""
    text, vision = config.text_config, config.vision_config
    h, heads, kv = text.hidden_size, text.num_attention_heads, text.num_key_value_heads
    head_dim = getattr(text, "head_dim", None) or h // heads
    per_layer = h * heads * head_dim + 2 * h * kv * head_dim + heads * head_dim * h + 3 * h * text.intermediate_size
    hv, merge = vision.hidden_size, vision.spatial_merge_size**2
    patch_in = vision.in_channels * vision.temporal_patch_size * vision.patch_size**2
    block = 4 * hv * hv + 3 * hv * vision.intermediate_size  # qkv + proj, gated MLP
    merged = hv * merge
    window = vision.window_size // vision.patch_size  # patches per window side
    full = len(vision.fullatt_block_indexes)
    return Arch(
        text_matmul=text.num_hidden_layers * per_layer,
        lm_head=text.vocab_size * h,
        text_layers=text.num_hidden_layers,
        text_attn_width=heads * head_dim,
        patch_matmul=patch_in * hv + vision.depth * block,
        merger_matmul=merged * merged + merged * vision.out_hidden_size,
        merge=merge,
        vision_full_layers=full,
        vision_window_layers=vision.depth - full,
        vision_window_patches=window * window,
        vision_attn_width=hv,
    )


def vision_forward_flops(arch: Arch, image_patches) -> float:
    """Forward FLOPs of the vision tower over images of the given patch counts (before the merge).

    Per patch: 2 x patch_matmul. Per merged token: 2 x merger_matmul. Attention (QK^T and AV,
    2 x width FLOPs per query-key pair each): full-attention blocks pair every patch of an image
    with every other; window blocks pair it with the patches of its window (at most the image)."""
    flops = 0.0
    for patches in image_patches:
        flops += 2 * arch.patch_matmul * patches + 2 * arch.merger_matmul * patches / arch.merge
        keys = arch.vision_full_layers * patches + arch.vision_window_layers * min(arch.vision_window_patches, patches)
        flops += 4 * arch.vision_attn_width * patches * keys
    return flops


def text_forward_flops(arch: Arch, start: int, stop: int, logits: int) -> float:
    """Forward FLOPs of the language model for the tokens at positions start..stop-1 of a sequence
    whose earlier positions are cached, computing `logits` rows of the LM head.

    2 x text_matmul per token; causal attention: the token at position p attends p + 1 keys,
    4 x attn_width FLOPs per key per layer; 2 x lm_head per logits row. The embedding is a lookup."""
    pairs = (stop * (stop + 1) - start * (start + 1)) / 2  # sum of (p + 1) for p in start..stop-1
    return (
        2 * arch.text_matmul * (stop - start)
        + 4 * arch.text_attn_width * arch.text_layers * pairs
        + 2 * arch.lm_head * logits
    )


def rollout_flops(
    arch: Arch,
    prompt_tokens: int,
    completion_tokens: int,
    image_patches,
    *,
    prefill_shared_by: int = 1,
    old_logps: bool = False,
    reference: bool = False,
) -> dict[str, float]:
    """Model FLOPs TRL's GRPOTrainer spends on one rollout (one completion of one prompt), by pass.

    prompt_tokens: the prompt's length after the processor expanded its image tokens (P);
    completion_tokens: the completion's length (C); image_patches: the prompt's images' patch counts.
      rollout_prefill  the vision tower on the images and the prompt's P tokens, one logits row,
                       divided by `prefill_shared_by`: 1 for transformers generate (TRL repeats each
                       prompt num_generations times in the batch and nothing is cached between them), or
                       num_generations for an engine whose prefix cache shares a prompt's prefill
      rollout_decode   C - 1 single-token forwards (the first token comes from the prefill's logits)
                       at positions P..P+C-2 over the KV cache, each with a logits row
      old_logps        when TRL computes it (see `old_logps_computed`): vision + P + C tokens, C logits rows
      reference        when beta > 0: the same forward, on the reference model
      train            forward + backward = 3 x that forward (the backward costs two forwards)
    """
    scored = vision_forward_flops(arch, image_patches) + text_forward_flops(
        arch, 0, prompt_tokens + completion_tokens, completion_tokens
    )
    flops = {
        "rollout_prefill": (vision_forward_flops(arch, image_patches) + text_forward_flops(arch, 0, prompt_tokens, 1))
        / prefill_shared_by,
        "rollout_decode": text_forward_flops(
            arch, prompt_tokens, prompt_tokens + completion_tokens - 1, completion_tokens - 1
        )
        if completion_tokens > 1
        else 0.0,
        "old_logps": scored if old_logps else 0.0,
        "reference": scored if reference else 0.0,
        "train": 3 * scored,
    }
    flops["total"] = sum(flops.values())
    return flops


def old_logps_computed(
    gradient_accumulation_steps: int,
    steps_per_generation: int,
    num_iterations: int,
    use_vllm: bool = False,
    vllm_importance_sampling_correction: bool = True,
) -> bool:
    """Whether TRL 1.16's GRPOTrainer runs a separate old-log-prob forward pass (grpo_trainer.py,
    `_generate_and_score_completions`): when generation and optimisation steps are misaligned, or
    always with vLLM's importance-sampling correction (on by default)."""
    return gradient_accumulation_steps % (steps_per_generation * num_iterations) != 0 or (
        use_vllm and vllm_importance_sampling_correction
    )


def prompt_shapes(dataset, processor, rows: int = 64) -> list[tuple[int, list[int]]]:
    """(prompt tokens after image expansion, patches per image) of up to `rows` rows, as TRL tokenizes them."""
    shapes = []
    for row in dataset.select(range(min(rows, len(dataset)))):
        text = processor.apply_chat_template(row["prompt"], tokenize=False, add_generation_prompt=True)
        inputs = processor(text=[text], images=[row["images"]], return_tensors="pt")
        shapes.append(
            (int(inputs["input_ids"].shape[1]), [int(t * h * w) for t, h, w in inputs["image_grid_thw"].tolist()])
        )
    return shapes
