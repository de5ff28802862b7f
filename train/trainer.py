"""TRL's GRPOTrainer with a resume that resumes: the checkpoint's weights, and each epoch's own shuffle.

Two faults of trl 1.16 / transformers 5.23 make `--resume_from_checkpoint` continue from the wrong
place, silently:
- Weights. Checkpoints are saved with the legacy key names (`model.layers.*`, `visual.*`) while the
  in-memory Qwen2.5-VL module is `model.language_model.*`, `model.visual.*`. The Trainer's loader
  does not translate them, warns about missing and unexpected keys, and goes on with the launch
  weights (optimizer, scheduler, RNG and step are restored). Here the checkpoint is read through
  the model's own save-time key mapping, and any key left missing or unexpected is an error.
- Data order. TRL's `RepeatSampler` draws every epoch's shuffle from one generator created in the
  process, so a run resumed in epoch 2 replays epoch 1's order. Here each epoch's shuffle is seeded
  by (seed, epoch), which the Trainer announces through `set_epoch`.
"""

import hashlib
import json
import os

import torch
from safetensors.torch import load_file
from transformers.core_model_loading import revert_weight_conversion
from trl import GRPOTrainer
from trl.trainer.utils import RepeatSampler

WEIGHTS_FILE = "model.safetensors"
WEIGHTS_INDEX_FILE = "model.safetensors.index.json"


class CheckpointMismatchError(RuntimeError):
    """A checkpoint whose weights do not cover the model exactly."""


class EpochSeededRepeatSampler(RepeatSampler):
    """TRL's sampler, with the shuffle of epoch e drawn from seed (seed, e) instead of one running generator.

    Epoch 0 draws exactly what TRL draws (the generator seeded with `seed`), so fresh runs are unchanged.
    """

    def set_epoch(self, epoch: int) -> None:
        if self.shuffle:
            self.generator.manual_seed(epoch_seed(self.seed or 0, epoch))


def epoch_seed(seed: int, epoch: int) -> int:
    """`seed` for epoch 0, otherwise a stable 63-bit mix of (seed, epoch).

    >>> epoch_seed(7, 0), epoch_seed(7, 1) == epoch_seed(7, 1), epoch_seed(7, 1) != epoch_seed(8, 1)
    (7, True, True)
    """
    if epoch == 0:
        return seed
    return int.from_bytes(hashlib.sha256(f"{seed}:{epoch}".encode()).digest()[:8], "big") >> 1


def checkpoint_state_dict(model: torch.nn.Module, folder: str) -> dict[str, torch.Tensor]:
    """The checkpoint's tensors under the model's in-memory names; raises on any key not accounted for.

    The mapping is the model's own: `revert_weight_conversion` gives, for every in-memory tensor, the
    name `save_pretrained` writes it under. Tied parameters (saved once) may be absent from the file.
    """
    saved = _read_weights(folder)
    in_memory = model.state_dict()
    saved_name = {id(tensor): name for name, tensor in revert_weight_conversion(model, dict(in_memory)).items()}
    tied = set(getattr(model, "all_tied_weights_keys", None) or {})
    loaded, missing = {}, []
    for name, tensor in in_memory.items():
        key = saved_name.get(id(tensor), name)
        if key in saved:
            loaded[name] = saved[key]
        elif name not in tied:
            missing.append(name)
    unexpected = sorted(set(saved) - set(saved_name.values()) - set(in_memory))
    if missing or unexpected:
        raise CheckpointMismatchError(
            f"{folder}: checkpoint does not match the model ({len(missing)} missing keys, e.g. {missing[:3]}; "
            f"{len(unexpected)} unexpected, e.g. {unexpected[:3]}); refusing to resume from the launch weights"
        )
    return loaded


def _read_weights(folder: str) -> dict[str, torch.Tensor]:
    single = os.path.join(folder, WEIGHTS_FILE)
    if os.path.isfile(single):
        return load_file(single, device="cpu")
    index = os.path.join(folder, WEIGHTS_INDEX_FILE)
    if not os.path.isfile(index):
        raise CheckpointMismatchError(f"{folder}: no {WEIGHTS_FILE} or {WEIGHTS_INDEX_FILE} to resume from")
    tensors = {}
    for shard in sorted(set(json.loads(open(index, encoding="utf-8").read())["weight_map"].values())):
        tensors.update(load_file(os.path.join(folder, shard), device="cpu"))
    return tensors


class SSL4RLGRPOTrainer(GRPOTrainer):
    """GRPOTrainer whose resume restores the checkpoint's weights and each epoch's data order."""

    def _get_train_sampler(self, dataset=None):
        sampler = super()._get_train_sampler(dataset)
        return EpochSeededRepeatSampler(
            data_source=sampler.data_source,
            mini_repeat_count=sampler.mini_repeat_count,
            batch_size=sampler.batch_size,
            repeat_count=sampler.repeat_count,
            shuffle=sampler.shuffle,
            seed=sampler.seed,
        )

    def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
        model = self.accelerator.unwrap_model(model if model is not None else self.model)
        plain_weights = not (self.is_deepspeed_enabled or self.is_fsdp_enabled or hasattr(model, "peft_config"))
        if not plain_weights:  # DeepSpeed, FSDP and PEFT adapters resume through their own loaders
            return super()._load_from_checkpoint(resume_from_checkpoint, model)
        state = checkpoint_state_dict(model, resume_from_checkpoint)
        model.load_state_dict(state, strict=False)  # exactness was checked above, tied keys aside
        if getattr(model, "all_tied_weights_keys", None):
            model.tie_weights()
