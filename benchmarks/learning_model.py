"""The learning check's model: a "small" random-weight Qwen2.5-VL and its format-only SFT warm start."""

import json
import os
import random
import shutil
from pathlib import Path

# A "small" Qwen2.5-VL: bigger than synthetic_qwen's "tiny" (hidden 16), still seconds per step on a CPU.
SMALL = {
    "regular_vocab": 256,
    "max_pixels": 28 * 28,  # one image token (2x2 patches of 14 px) per picture
    "text": {
        "hidden_size": 64,
        "intermediate_size": 256,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "rope_scaling": {"type": "mrope", "mrope_section": [2, 3, 3]},
        "max_position_embeddings": 4096,
    },
    "vision": {
        "depth": 2,
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_heads": 4,
        "out_hidden_size": 64,
        "fullatt_block_indexes": [1],
        "window_size": 112,
    },
}
MIN_PIXELS = 28 * 28


def prompt_tokenizer(texts: list[str]):
    """synthetic_qwen's byte-level tokenizer plus BPE merges learned from `texts`, with the Qwen special tokens.

    Byte tokens alone make the rotation question about 540 tokens long; with merges of its words it is
    about 130, about what Qwen's own tokenizer makes of it, and every step is several times cheaper.
    """
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import Qwen2Tokenizer
    from transformers.convert_slow_tokenizer import bytes_to_unicode
    from trl.chat_template_utils import qwen2_5_vl_chat_template

    from ssl4rl_train import synthetic_qwen

    symbols = list(bytes_to_unicode().values())
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.train_from_iterator(
        texts, trainers.BpeTrainer(vocab_size=4096, initial_alphabet=symbols, min_frequency=1, show_progress=False)
    )
    learned = json.loads(bpe.to_str())["model"]
    vocab = {symbol: index for index, symbol in enumerate(symbols)}  # the 256 byte symbols keep their ids
    for token in sorted(learned["vocab"], key=learned["vocab"].get):
        vocab.setdefault(token, len(vocab))
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in learned["merges"]]
    tokenizer = Qwen2Tokenizer(
        vocab=vocab, merges=merges, unk_token=None, bos_token=None, eos_token=None, pad_token=None
    )
    tokenizer.add_special_tokens({"additional_special_tokens": synthetic_qwen.SPECIAL_TOKENS})
    tokenizer.eos_token, tokenizer.pad_token = "<|im_end|>", "<|endoftext|>"
    tokenizer.chat_template = qwen2_5_vl_chat_template
    return tokenizer


def build_model(folder: Path, train_dir: Path, seed: int) -> Path:
    """A random-weight "small" Qwen2.5-VL saved like synthetic_qwen's, with a tokenizer fitted to the prompts."""
    import pyarrow.parquet as pq
    import torch
    from transformers import Qwen2_5_VLForConditionalGeneration
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil
    from trl.chat_template_utils import qwen2_5_vl_chat_template

    from ssl4rl_train import synthetic_qwen

    texts = {"system\nYou are a helpful assistant.", "user\n", "assistant\n"}
    for file in sorted(train_dir.glob("data/*.parquet")):
        for row in pq.read_table(file, columns=["prompt", "answer"]).to_pylist():
            texts.update(part["text"] for part in row["prompt"][0]["content"] if part["type"] == "text")
            texts.add(f"<answer>{row['answer']}</answer>")
    tokenizer = prompt_tokenizer(sorted(texts))
    synthetic_qwen.SIZES.setdefault("small", SMALL)  # in this process only; the module's file is not changed
    config = synthetic_qwen.qwen_config("small", tokenizer)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(folder)
    Qwen2VLImageProcessorPil(min_pixels=MIN_PIXELS, max_pixels=SMALL["max_pixels"]).save_pretrained(folder)
    (folder / "processor_config.json").write_text(json.dumps({"processor_class": "Qwen2_5_VLProcessor"}))
    (folder / "chat_template.json").write_text(json.dumps({"chat_template": qwen2_5_vl_chat_template}))
    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(config)
    model.generation_config.eos_token_id = config.text_config.eos_token_id
    model.generation_config.pad_token_id = config.text_config.pad_token_id
    model.save_pretrained(folder)
    return folder


def format_targets(dataset, samples: int, seed: int, true_answers: bool = False):
    """`samples` SFT rows: built prompts and images, completed by `<answer>A</answer>`.

    A is drawn afresh for every sample, uniformly from the answers seen in the data and independently of
    the row; rows repeat in reshuffled passes, each time with a new draw. So the warm start learns the
    format and the answer set, and nothing about the images (it cannot even memorise a fixed random
    label per image). `true_answers` uses the real answers instead (a supervised reference, not used by
    the check).
    """
    choices = sorted(set(dataset["answer"]))
    rng = random.Random(seed)
    order = []
    while len(order) < samples:
        batch = list(range(len(dataset)))
        rng.shuffle(batch)
        order += batch
    dataset = dataset.select(order[:samples])
    picks = list(dataset["answer"]) if true_answers else [rng.choice(choices) for _ in range(samples)]
    dataset = dataset.add_column("target", picks)

    def completion(row):
        return {
            "completion": [
                {"role": "assistant", "content": [{"type": "text", "text": f"<answer>{row['target']}</answer>"}]}
            ]
        }

    return dataset.map(completion, remove_columns=[c for c in dataset.column_names if c not in ("prompt", "images")])


def warm_start(
    model_dir: Path,
    train_dir: Path,
    out: Path,
    steps: int,
    seed: int,
    true_answers: bool = False,
    learning_rate: float = 3e-3,
):
    """A short SFT with TRL's SFTTrainer on format-only targets; the result is saved with the processor."""
    import torch
    from datasets import load_dataset
    from transformers import AutoModelForImageTextToText
    from trl import SFTConfig, SFTTrainer

    from ssl4rl_train.vlm import load_processor

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    torch.manual_seed(seed)
    processor = load_processor(str(model_dir))
    model = AutoModelForImageTextToText.from_pretrained(model_dir, dtype=torch.float32)
    batch_size = 16
    dataset = format_targets(load_dataset(str(train_dir), split="train"), steps * batch_size, seed, true_answers)
    config = SFTConfig(
        output_dir=str(out.parent / "sft-run"),
        use_cpu=True,
        bf16=False,
        seed=seed,
        max_steps=steps,
        per_device_train_batch_size=batch_size,
        gradient_accumulation_steps=1,
        learning_rate=learning_rate,
        lr_scheduler_type="constant",
        warmup_steps=0,
        logging_steps=5,
        report_to="none",
        save_strategy="no",
        max_length=None,
        activation_checkpointing=False,
        dataloader_num_workers=0,
    )
    trainer = SFTTrainer(model=model, args=config, train_dataset=dataset, processing_class=processor)
    trainer.train()
    model.save_pretrained(out)
    for name in os.listdir(model_dir):  # tokenizer, image processor, processor and chat template files
        if not name.startswith("model") and name not in ("config.json", "generation_config.json"):
            shutil.copy(model_dir / name, out / name)
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    return losses
