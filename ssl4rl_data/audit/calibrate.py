"""`ssl4rl-data calibrate`: how often a model solves each row, and a new dataset version with the rows in a
pass-rate band.

Each row is answered k times by the model, sampling at temperature 1 (top-k and top-p off) from the
training prompt, and scored by the training reward (ssl4rl_data.rewards.score). A row whose k rewards
are all equal gives GRPO a group with zero advantage: no learning signal. `--keep MIN..MAX` writes the
rows whose pass rate (share of the k answers scoring 1) lies in the band as a new dataset version; its
card records the model (by folder name), k, the band and the zero-variance share before and after.
Needs the `train` extra (torch, transformers); runs on CPU or GPU.
"""

import hashlib
import io
import json
import os
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from ..card import read_provenance, render_card
from ..errors import UserError
from ..output import check_out, move_into_place
from ..records import file_record
from ..rewards import score
from ..schema import PARQUET_WRITER_OPTIONS
from .run import shard_files


def parse_band(text: str) -> tuple[float, float]:
    """'0.1..0.9' -> (0.1, 0.9).

    >>> parse_band("0.125..0.875")
    (0.125, 0.875)
    """
    low, sep, high = text.partition("..")
    try:
        band = (float(low), float(high))
    except ValueError:
        band = None
    if not sep or band is None or not 0 <= band[0] <= band[1] <= 1:
        raise UserError(f"--keep must be MIN..MAX with 0 <= MIN <= MAX <= 1, e.g. 0.1..0.9, got {text!r}")
    return band


def pass_rates(
    folder: Path, model_path: str, k: int = 8, max_new_tokens: int = 512, max_pixels: int | None = None, seed: int = 0
) -> list[dict]:
    """Per row: source id, pass rate, mean reward and whether its k rewards are all equal."""
    if k < 2:
        raise UserError(f"--k must be at least 2 (a GRPO group), got {k}")
    try:
        import torch
        from transformers import AutoModelForImageTextToText

        from ssl4rl_train.vlm import load_processor
    except ImportError as error:
        raise UserError(f"calibrate needs the train extra (pip install -e '.[train]'): {error}") from None
    if not Path(model_path).exists() and "/" not in str(model_path):
        raise UserError(f"--model {model_path}: no such folder or Hub model id")
    torch.manual_seed(seed)
    processor = load_processor(model_path, **({"max_pixels": max_pixels} if max_pixels else {}))
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = (
        AutoModelForImageTextToText.from_pretrained(
            model_path, dtype=torch.float32 if device == "cpu" else torch.bfloat16
        )
        .to(device)
        .eval()
    )
    results = []
    for file in shard_files(folder):
        for row in pq.read_table(file, columns=["prompt", "images", "answer", "task", "source_id"]).to_pylist():
            images = [Image.open(io.BytesIO(image["bytes"])).convert("RGB") for image in row["images"]]
            messages = [
                {
                    "role": turn["role"],
                    "content": [{k2: v for k2, v in part.items() if v is not None} for part in turn["content"]],
                }
                for turn in row["prompt"]
            ]
            text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            inputs = processor(text=[text], images=images, return_tensors="pt").to(device)
            with torch.no_grad():
                output = model.generate(
                    **inputs,
                    do_sample=True,
                    temperature=1.0,
                    top_k=0,
                    top_p=1.0,
                    num_return_sequences=k,
                    max_new_tokens=max_new_tokens,
                )
            completions = processor.batch_decode(output[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
            rewards = [score(c, row["answer"], row["task"]) for c in completions]
            results.append(
                {
                    "source_id": row["source_id"],
                    "pass_rate": float(np.mean([r == 1.0 for r in rewards])),
                    "mean_reward": float(np.mean(rewards)),
                    "zero_variance": len(set(rewards)) == 1,
                }
            )
    return results


def check_keep_out(folder: Path, out: Path, overwrite: bool) -> None:
    """Refuse an `--out` for the kept rows that is the dataset itself, overlaps it, or may not be replaced
    (checked before sampling too, so hours of sampling never end in this error)."""
    if Path(out).resolve() == Path(folder).resolve():
        raise UserError("--out must differ from the dataset folder")
    check_out(Path(out), [Path(folder)], overwrite)


def keep_band(
    folder: Path,
    out: Path,
    rates: list[dict],
    band: tuple[float, float],
    model_path: str,
    k: int,
    overwrite: bool = False,
) -> dict:
    """Write the rows whose pass rate lies in `band` as a new dataset version in `out`; returns its record."""
    folder, out = Path(folder), Path(out)
    check_keep_out(folder, out, overwrite)
    keep = np.array([band[0] <= r["pass_rate"] <= band[1] for r in rates])
    if not keep.any():
        raise UserError(f"no row has a pass rate in {band[0]}..{band[1]}")
    record = read_provenance(folder)
    tables, start = [], 0
    for file in shard_files(folder):
        table = pq.read_table(file)
        tables.append(table.filter(pa.array(keep[start : start + len(table)])))
        start += len(table)
    kept = pa.concat_tables(tables)
    staging = out.with_name(f".{out.name}.calibrate-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "data").mkdir(parents=True)
    name = "data/train-00000-of-00001.parquet"
    pq.write_table(kept, staging / name, **PARQUET_WRITER_OPTIONS)
    zero = np.array([r["zero_variance"] for r in rates])
    calibration = {
        "model": Path(str(model_path).rstrip("/")).name,
        "k": k,
        "temperature": 1.0,
        "band": list(band),
        "rows_before": len(rates),
        "rows_kept": int(keep.sum()),
        "zero_variance_before": round(float(zero.mean()), 4),
        "zero_variance_after": round(float(zero[keep].mean()), 4),
        "parent_version": record["version"],
    }
    key = json.dumps(
        {"parent": record["version"], "model": calibration["model"], "k": k, "band": list(band)}, sort_keys=True
    )
    record.update(
        version=hashlib.blake2b(key.encode(), digest_size=8).hexdigest(),
        rows=int(keep.sum()),
        answers=dict(sorted(Counter(kept.column("answer").to_pylist()).items())),
        calibration=calibration,
        files={name: file_record(staging / name)},
    )
    record.pop("audit", None)  # the audit was of the parent's rows
    (staging / "README.md").write_text(render_card(record), encoding="utf-8")
    move_into_place(staging, out, overwrite)
    return record
