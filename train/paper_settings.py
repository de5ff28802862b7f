"""The paper's verl GRPO run, setting by setting, as TRL 1.16 `GRPOConfig` fields.

`ALGORITHM` is what GRPO computes; TRL's defaults differ from verl's on some of it, so every
recipe pins all of it. `PAPER` holds the paper's hyperparameters, which the paper-scale recipes
keep; `DEVIATIONS` names, per recipe, each one it changes and why. The README's table is
`markdown_table()`, and tests hold every recipe and the README to these.
"""

# field: (value, the verl setting it reproduces, why it is pinned)
ALGORITHM = {
    "use_bias_correction_kl": (
        False,
        "`use_kl_loss: true`, `kl_loss_type: low_var_kl`",
        "TRL's default multiplies the k3 KL by the importance ratio",
    ),
    "vllm_importance_sampling_correction": (
        False,
        "no rollout importance correction",
        "TRL's default zeroes whole long completions (cap 3)",
    ),
    "loss_type": ("dapo", "`loss_agg_mode: token-mean`", "a token mean over the batch"),
    "scale_rewards": ("group", "`norm_adv_by_std_in_grpo: true`", "advantages divided by the group's std"),
    "top_p": (1.0, "rollout `top_p: 1.0`", "no nucleus truncation"),
    "top_k": (0, "rollout `top_k: -1`", "no top-k truncation (0 disables it in TRL)"),
    "mask_truncated_completions": (False, "truncated responses stay in the loss", "as verl"),
    "temperature": (1.0, "rollout `temperature: 1.0`", "sampling from the policy itself"),
    "epsilon": (0.2, "`clip_ratio: 0.2`", "PPO clip"),
    "num_iterations": (1, "`ppo_epochs: 1`", "each batch of rollouts is used once"),
}

PAPER = {
    "num_generations": (5, "`rollout.n: 5`"),
    "learning_rate": (1e-6, "`optim.lr: 1e-6`"),
    "lr_scheduler_type": ("constant", "constant learning rate"),
    "weight_decay": (0.01, "`weight_decay: 0.01`"),
    "max_grad_norm": (1.0, "`grad_clip: 1.0`"),
    "beta": (0.01, "`kl_loss_coef: 0.01`"),
    "max_completion_length": (2048, "`max_response_length: 2048`"),
    "max_prompt_tokens": (1024, "`max_prompt_length: 1024`, `filter_overlong_prompts: true`"),
}

# recipe file stem -> {field: why this recipe departs from the paper}
DEVIATIONS = {
    "qwen2_5_vl_3b_single_gpu": {
        "learning_rate": "LoRA adapters, not a full fine-tune, so that fp32 trainable weights fit one 80 GB GPU; "
        "1e-5, ten times the full fine-tune's rate, as is usual for LoRA",
    },
}


def expected_settings(recipe_stem: str, paper_scale: bool) -> dict[str, object]:
    """The fields a recipe must set, with their values (the paper's only for paper-scale recipes).

    >>> settings = expected_settings("qwen2_5_vl_3b_single_gpu", paper_scale=True)
    >>> settings["use_bias_correction_kl"], settings["beta"], "learning_rate" in settings
    (False, 0.01, False)
    """
    fields = {name: value for name, (value, _, _) in ALGORITHM.items()}
    if paper_scale:
        deviations = DEVIATIONS.get(recipe_stem, {})
        fields.update({name: value for name, (value, _) in PAPER.items() if name not in deviations})
    return fields


def markdown_table() -> str:
    """The README's table: each verl setting beside its TRL field and value."""
    rows = ["| verl (the paper's run) | TRL `GRPOConfig` | value | why pinned |", "|---|---|---|---|"]
    rows += [f"| {verl} | `{name}` | `{_yaml(value)}` | {why} |" for name, (value, verl, why) in ALGORITHM.items()]
    rows += [
        f"| {verl} | `{name}` | `{_yaml(value)}` | the paper's setting |" for name, (value, verl) in PAPER.items()
    ]
    return "\n".join(rows)


def _yaml(value) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)
