"""One pass over a built dataset: every row's label re-checked, its blind features and its picture's
perceptual hash taken, shard by shard (images are never all in memory); then the dataset-wide tests."""

import io
import os
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from PIL import Image

from ..card import read_provenance
from ..difficulty import difficulty_tiers
from ..errors import UserError
from ..near_duplicates import perceptual_hash
from .blind import blind_baselines, feature_matrix, image_features
from .checks import OK, UNSURE, WRONG, Row, get_checker
from .contamination import contamination, thumbnail
from .stats import chi_square_uniform

MAX_LISTED = 200  # failing row ids listed in audit.json
# Contradicted rows tolerated by --strict, as a share of the rows: the seam checkers (jigsaw, flip) call about
# 2 in 10,000 clean rows of periodic textures wrong; a broken builder contradicts far more.
LABEL_TOLERANCE = 0.001


def shard_files(folder: Path) -> list[Path]:
    files = sorted(Path(folder).glob("data/*.parquet"))
    if not files:
        raise UserError(f"{folder} has no data/*.parquet; is it a folder written by `ssl4rl-data build`?")
    return files


def audit_shard(task: str, parameters: dict, path: str, first_index: int) -> list[dict]:
    """Per row: verdict, blind features, picture hash, answer, ids (a worker's whole job)."""
    checker = get_checker(task, parameters)
    table = pq.read_table(path, columns=["images", "answer", "source_id"])
    out = []
    for offset, values in enumerate(table.to_pylist()):
        images = [im["bytes"] for im in values["images"]]
        row = Row(first_index + offset, images, values["answer"], values["source_id"])
        decoded = None
        if checker is not None and checker.needs_pixels:
            try:
                decoded = [Image.open(io.BytesIO(data)).convert("RGB") for data in row.images]
            except (OSError, ValueError) as error:
                raise UserError(f"{path}: row {row.index} holds an image that cannot be decoded ({error})") from None
        features = [image_features(data, None if decoded is None else decoded[i]) for i, data in enumerate(row.images)]
        state, difficulty, picture, thumb = None, None, None, None
        if checker is not None:
            state, difficulty = checker.examine(row, decoded or [])
            view = checker.picture(row, decoded or [])
            if view is not None:
                picture, thumb = perceptual_hash(view), thumbnail(view)
        out.append(
            {
                "index": row.index,
                "source_id": row.source_id,
                "group": row.group,
                "answer": row.answer,
                "verdict": state,
                "difficulty": difficulty,
                "features": features,
                "picture": picture,
                "thumb": thumb,
            }
        )
    return out


def audit_rows(folder: Path, task: str, parameters: dict, num_proc: int = 1) -> list[dict]:
    files = shard_files(folder)
    starts = np.cumsum([0] + [pq.ParquetFile(f).metadata.num_rows for f in files])
    jobs = [(task, parameters, str(f), int(s)) for f, s in zip(files, starts[:-1], strict=True)]
    if num_proc <= 1:
        parts = [audit_shard(*job) for job in jobs]
    else:
        with ProcessPoolExecutor(num_proc) as pool:
            parts = list(pool.map(audit_shard, *zip(*jobs)))
    return [row for part in parts for row in part]


def answer_balance(answers: list[str], task_answers=None) -> dict:
    """Each answer's share with a chi-square test against uniform; for comma-separated answers (jigsaw),
    also each cell's values."""
    counts = Counter(answers)
    result = {"counts": dict(sorted(counts.items())), "overall": chi_square_uniform(counts, task_answers)}
    if answers and all("," in a for a in answers):
        cells = [a.split(",") for a in answers]
        width = min(len(c) for c in cells)
        result["cells"] = [
            chi_square_uniform(Counter(c[k] for c in cells), [str(v) for v in range(1, width + 1)])
            for k in range(width)
        ]
    tests = [result["overall"], *result.get("cells", [])]
    result["p_min"] = min(t["p"] for t in tests)
    # Permutation answers (jigsaw) have far more values than rows: only the cells are tested then.
    meaningful = [t for t in tests if t is not result["overall"] or t["answers"] * 5 <= len(answers)]
    result["imbalanced"] = bool(meaningful) and min(t["p"] for t in meaningful) < 0.001 / len(meaningful)
    return result


def audit(folder: Path, against: list[str] = (), num_proc: int = 1) -> dict:
    """The audit of a built dataset folder, as audit.json holds it."""
    started = time.monotonic()
    folder = Path(folder)
    record = read_provenance(folder)
    task, parameters = record["task"], record["parameters"]
    checker = get_checker(task, parameters)
    rows = audit_rows(folder, task, parameters, num_proc or os.cpu_count() or 1)
    verdicts = Counter(r["verdict"] or "unchecked" for r in rows)
    wrong = [r["source_id"] for r in rows if r["verdict"] == WRONG]
    labels = {
        "checker": checker.task if checker else None,
        "rows": len(rows),
        **{k: verdicts.get(k, 0) for k in (OK, WRONG, UNSURE, "unchecked")},
        "wrong_ids": wrong[:MAX_LISTED],
        "tolerated": int(LABEL_TOLERANCE * len(rows)),
        "failure": len(wrong) > LABEL_TOLERANCE * len(rows),
    }
    x, names = feature_matrix([r["features"] for r in rows], [r["index"] for r in rows])
    blind = blind_baselines(
        x, names, [r["answer"] for r in rows], [r["group"] for r in rows], bool(checker and checker.content_statistics)
    )
    benchmarks = {s.get("benchmark") for s in record["sources"] if s.get("benchmark")}
    result = {
        "dataset": {
            "task": task,
            "parameters": parameters,
            "version": record["version"],
            "rows": len(rows),
            "transductive": sorted(benchmarks),
        },
        "labels": labels,
        "balance": answer_balance([r["answer"] for r in rows]),
        "blind": blind,
        "contamination": (
            contamination([(r["source_id"], r["picture"], r["thumb"]) for r in rows], list(against), benchmarks)
            if against
            else None
        ),
    }
    result["difficulty"], tiers = difficulty_tiers([r["difficulty"] for r in rows])
    result["rows"] = [
        {
            "index": r["index"],
            "source_id": r["source_id"],
            "verdict": r["verdict"],
            "difficulty": r["difficulty"],
            "tier": tier,
        }
        for r, tier in zip(rows, tiers, strict=True)
    ]
    result["problems"] = problems(result)
    result["passed"] = not result["problems"]
    result["seconds"] = round(time.monotonic() - started, 2)
    return result


def problems(result: dict) -> list[str]:
    """What `--strict` fails on, one line each."""
    out = []
    labels = result["labels"]
    if labels["failure"]:
        out.append(
            f"{labels['wrong']} of {labels['rows']} labels contradicted by the pixels "
            f"(first: {', '.join(labels['wrong_ids'][:3])})"
        )
    blind = result["blind"]
    if blind["shortcut"]:
        best = blind["strongest"]
        out.append(
            f"blind baseline beats chance: {best['feature']} predicts the {best['target']} "
            f"{best['accuracy']:.1%} (95% CI {best['ci95'][0]:.1%}-{best['ci95'][1]:.1%}), "
            f"chance {best['chance']:.1%}"
        )
    for entry in (result["contamination"] or {}).get("against", []):
        if entry["failure"]:
            name = entry["benchmark"] or entry["kind"]
            first = ", ".join(entry["rows"][:3])
            out.append(f"{entry['overlaps']} rows overlap the images of {name} (first: {first})")
    return out
