"""Benchmark items for evaluation and their prompts (extraction: extraction.py, scores: scoring.py).

The readers are the data sources' own (`mmbench_rows`, `seedbench_rows` in ssl4rl_data/sources), asked
here for the label columns too: this is the one place where benchmark labels (questions, options,
answers, categories, classes) are read; the data builders never see them.
"""

import re
import sys
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pyarrow.parquet as pq

from ssl4rl_data.sources import mmbench, seedbench
from ssl4rl_data.sources.mmbench import COPY_STRIDE
from ssl4rl_data.table_source import image_bytes
from ssl4rl_data.tables import open_tables
from ssl4rl_data.tsv import as_int
from ssl4rl_train.extraction import extract_choice  # noqa: F401  (re-exported: scoring and tests use it)

LETTERS = "ABCDEFGHIJ"
# VLMEvalKit's Qwen2-VL / Qwen2.5-VL multiple-choice instruction (vlmeval/vlm/qwen2_vl/prompt.py), and its
# Chinese one for questions with Chinese characters.
PLAIN_INSTRUCTION = "Please select the correct answer from the options above."
PLAIN_INSTRUCTION_CN = "请直接回答选项字母。"
PAPER_INSTRUCTION = (
    "Answer with the option's letter from the given choices. First think step by step inside "
    "<think> </think> tags, then give the letter inside <answer> </answer> tags, for example: "
    "<think>step-by-step reasoning</think> <answer>A</answer>"
)
CJK = re.compile("[\u4e00-\u9fff]")


@dataclass
class Item:
    """One benchmark row, with everything scoring needs (what predictions.jsonl stores)."""

    benchmark: str  # the kind: mmbench, seedbench, imagenet, ssl
    id: str
    answer: str  # the gold letter, or the gold SSL answer; "" where the split hides it (MMBench test)
    name: str = ""  # what the scores are reported under (the kind, or ssl:FOLDER); default: the kind
    group: str = ""  # MMBench: the question id shared by its option-rotated copies
    category: str | None = None
    hint: str = ""
    question: str = ""
    options: dict[str, str] = field(default_factory=dict)
    task: str | None = None  # SSL rows
    prompt: str = ""  # the exact text the model was given (after the images)
    images: list = field(default_factory=list, repr=False)  # callables returning encoded bytes

    def record(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k != "images"}


def multiple_choice_prompt(item: Item, style: str) -> str:
    """VLMEvalKit's layout: `Hint: …` (when there is one), `Question: …`, `Options:` and `A. …` lines,
    then the instruction: VLMEvalKit's own (`plain`) or the paper's think/answer request (`paper`)."""
    if item.task is not None:
        return item.question  # SSL rows carry their own prompt
    lines = ([f"Hint: {item.hint}"] if item.hint else []) + [f"Question: {item.question}"]
    if item.options:
        lines += ["Options:"] + [f"{letter}. {text}" for letter, text in item.options.items()]
    plain = PLAIN_INSTRUCTION_CN if CJK.search("\n".join(lines)) else PLAIN_INSTRUCTION
    return "\n".join(lines + [PAPER_INSTRUCTION if style == "paper" else plain])


def _cell(value) -> str:
    if value is None:
        return ""
    text = str(value).strip()
    return "" if text.lower() in ("nan", "none") else text


def _options(values: dict, keys) -> dict[str, str]:
    options = {}
    for letter, key in zip(LETTERS, keys):
        text = _cell(values.get(key))
        if text:
            options[letter] = text
    return options


def read_mmbench(path: Path) -> list[Item]:
    """Every MMBench row (all option-rotated copies). Rows of a split without answers (test) keep
    answer "" and become the submission file instead of scores."""
    items, skipped = [], Counter()
    for table in open_tables(path):
        column = mmbench.image_column(table)
        if column is None:
            raise ValueError(f"mmbench: {table.name} has no image column; expected {mmbench.MMBenchSource.expected}")
        table.on_skip = lambda reason: skipped.update([reason])  # rows the TSV reader cannot read
        for row, values, holder in mmbench.mmbench_rows(table, mmbench.LABEL_COLUMNS):
            index = as_int(values.get("index"))
            if index is None:
                skipped["bad-index"] += 1
                continue
            if holder is None:
                skipped["unresolved-image-reference"] += 1
                continue
            items.append(
                Item(
                    benchmark="mmbench",
                    id=str(index),
                    group=str(index % COPY_STRIDE),
                    answer=_cell(values.get("answer")),
                    category=_cell(values.get("category")) or None,
                    hint=_cell(values.get("hint")),
                    question=_cell(values.get("question")),
                    options=_options(values, "ABCDEFGH"),
                    images=[_table_image(table, holder, column)],
                )
            )
    _report_skipped("mmbench", path, skipped)
    return items


def read_seedbench(path: Path) -> list[Item]:
    """SEED-Bench image questions (video questions are left out), lmms-lab parquet or VLMEvalKit TSV."""
    items, skipped = [], Counter()
    for table in open_tables(path):
        column = seedbench.image_column(table)
        if column is None:
            raise ValueError(f"seedbench: {table.name} has no image column")
        table.on_skip = lambda reason: skipped.update([reason])
        keys = seedbench.LMMS_OPTIONS if "choice_a" in table.columns else tuple("ABCD")
        id_column = "question_id" if "question_id" in table.columns else "index"
        category_column = "question_type_id" if "question_type_id" in table.columns else "category"
        for row, values, holder, item in seedbench.seedbench_rows(table, seedbench.LABEL_COLUMNS):
            if holder is None:
                skipped["unresolved-image-reference"] += 1
                continue
            key = _cell(values.get(id_column)) or str(row)
            items.append(
                Item(
                    benchmark="seedbench",
                    id=key,
                    group=key,
                    answer=_cell(values.get("answer")),
                    category=_cell(values.get(category_column)) or None,
                    question=_cell(values.get("question")),
                    options=_options(values, keys),
                    images=[_table_image(table, holder, column, item)],
                )
            )
    _report_skipped("seedbench", path, skipped)
    return [item for item in items if item.answer]


def _report_skipped(kind: str, path: Path, skipped: Counter):
    if skipped:
        print(
            f"{kind}: {path}: rows left out because they cannot be read: "
            + ", ".join(f"{reason} {n}" for reason, n in sorted(skipped.items())),
            file=sys.stderr,
        )


def read_ssl(path: Path, name: str = "ssl") -> list[Item]:
    items = []
    for file in sorted(Path(path).glob("data/*.parquet")):
        for row in pq.read_table(file).to_pylist():
            text = next(part["text"] for part in row["prompt"][0]["content"] if part["type"] == "text")
            items.append(
                Item(
                    benchmark="ssl",
                    name=name,
                    id=f"{row['task']}:{row['source_id']}",
                    group=row["source_id"],
                    answer=row["answer"],
                    category=row["task"],
                    question=text,
                    task=row["task"],
                    images=[(lambda data=image["bytes"]: data) for image in row["images"]],
                )
            )
    if not items:
        raise ValueError(f"ssl: {path} has no data/*.parquet; is it a folder built by ssl4rl-data?")
    return items


def read_imagenet(path: Path, classes: Path | None, distractors: int, seed: int) -> list[Item]:
    """ImageNet as multiple choice (eval_imagenet.py)."""
    from ssl4rl_train.eval_imagenet import read_imagenet as read

    return read(path, classes, distractors, seed)


def _table_image(table, row, column, item=None):
    def load():
        value = table.cell(row, column)
        return image_bytes(value[item] if item is not None else value)

    return load
