"""Benchmark items for evaluation, the prompts and rule-based answer extraction (scores: scoring.py).

This is the one place where benchmark labels (questions, options, answers, categories, classes) are
read: the data builders never see them.
"""

import hashlib
import json
import sys
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pyarrow.parquet as pq

from extraction import extract_choice  # noqa: F401  (re-exported: scoring and tests use it)

from ssl4rl_data.errors import UserError
from ssl4rl_data.sources.folder import image_files
from ssl4rl_data.sources.mmbench import COPY_STRIDE, REFERENCE_MAX_CHARS
from ssl4rl_data.tables import image_bytes, open_tables

LETTERS = "ABCDEFGHIJ"
PAPER_SUFFIX = ("Answer with the option's letter from the given choices. First think step by step inside "
                "<think> </think> tags, then give the letter inside <answer> </answer> tags, for example: "
                "<think>step-by-step reasoning</think> <answer>A</answer>")
PLAIN_SUFFIX = "Answer with the option's letter from the given choices directly."


@dataclass
class Item:
    """One benchmark row, with everything scoring needs (what predictions.jsonl stores)."""

    benchmark: str
    id: str
    answer: str  # the gold letter, or the gold SSL answer
    group: str = ""  # MMBench: the question id shared by its option-rotated copies
    category: str | None = None
    question: str = ""
    options: dict[str, str] = field(default_factory=dict)
    task: str | None = None  # SSL rows
    images: list = field(default_factory=list, repr=False)  # callables returning encoded bytes

    def record(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k != "images"}


def multiple_choice_prompt(item: Item, style: str) -> str:
    """The question, its options as `A. text` lines, and the paper's (or a plain) answer instruction."""
    if item.task is not None:
        return item.question  # SSL rows carry their own prompt
    lines = [item.question] + [f"{letter}. {text}" for letter, text in item.options.items()]
    return "\n".join(lines + [PAPER_SUFFIX if style == "paper" else PLAIN_SUFFIX])


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
    items, skipped = [], Counter()
    for table in open_tables(path):
        image_column = "image"
        columns = [c for c in ("index", "question", "hint", "A", "B", "C", "D", "answer", "category", image_column)
                   if c in table.columns]
        held = {}
        table.on_skip = lambda reason: skipped.update([reason])  # rows the TSV reader cannot read
        for row, values in table.rows(columns):
            index = _as_int(values.get("index"))
            if index is None:
                skipped["bad-index"] += 1
                continue
            cell = values[image_column]
            if isinstance(cell, str) and len(cell.strip()) <= REFERENCE_MAX_CHARS:
                source = held.get(_as_int(cell))
            else:
                source = (table, row, image_column)
                held[index] = source
            answer = _cell(values.get("answer"))
            if not answer or source is None:  # the test split hides its answers
                continue
            hint = _cell(values.get("hint"))
            items.append(Item(
                benchmark="mmbench", id=str(index), group=str(index % COPY_STRIDE), answer=answer,
                category=_cell(values.get("category")) or None,
                question=f"{hint}\n{_cell(values['question'])}" if hint else _cell(values["question"]),
                options=_options(values, "ABCD"), images=[_table_image(*source)],
            ))
    _report_skipped("mmbench", path, skipped)
    return items


def _report_skipped(kind: str, path: Path, skipped: Counter):
    if skipped:
        print(f"{kind}: {path}: rows left out because they cannot be read: "
              + ", ".join(f"{reason} {n}" for reason, n in sorted(skipped.items())), file=sys.stderr)


def _as_int(value) -> int | None:
    try:
        return int(float(value))
    except (TypeError, ValueError, OverflowError):
        return None


def read_seedbench(path: Path) -> list[Item]:
    items, skipped = [], Counter()
    for table in open_tables(path):
        table.on_skip = lambda reason: skipped.update([reason])  # rows the TSV reader cannot read
        lmms = "choice_a" in table.columns
        keys = ("choice_a", "choice_b", "choice_c", "choice_d") if lmms else tuple("ABCD")
        id_column = "question_id" if "question_id" in table.columns else "index"
        category_column = "question_type_id" if "question_type_id" in table.columns else "category"
        columns = [c for c in (id_column, "question", *keys, "answer", category_column, "data_type", "image")
                   if c in table.columns]
        for row, values in table.rows(columns):
            cell = values["image"]
            if isinstance(cell, list) and len(cell) != 1 or _cell(values.get("data_type", "image")) != "image":
                continue  # video questions
            item_index = 0 if isinstance(cell, list) else None
            items.append(Item(
                benchmark="seedbench", id=_cell(values[id_column]) or str(row), group=_cell(values[id_column]) or str(row),
                answer=_cell(values.get("answer")), category=_cell(values.get(category_column)) or None,
                question=_cell(values["question"]), options=_options(values, keys),
                images=[_table_image(table, row, "image", item_index)],
            ))
    _report_skipped("seedbench", path, skipped)
    return [item for item in items if item.answer]


def read_imagenet(path: Path, classes: Path | None, distractors: int, seed: int) -> list[Item]:
    """ImageNet as multiple choice: the true class and `distractors` classes near it in class order.

    Distractors are drawn deterministically (a hash of seed and image number) from the 10 classes
    nearest the true one in sorted-synset order, where neighbours are mostly related (dog breeds,
    birds, ...): harder than random classes, which inflate accuracy. The options are shuffled by
    the same hash.
    """
    given = _class_names(classes) if classes else None
    if _is_image_folder(path):  # ImageFolder: class folders named by synset
        if not isinstance(given, dict):
            raise UserError(f"imagenet: {path} is an image folder; pass --imagenet-classes LOC_synset_mapping.txt")
        synsets = sorted(given)
        folders = sorted(p.name for p in path.iterdir() if p.is_dir())
        unknown = [f for f in folders if f not in given]
        if not folders or unknown:
            raise UserError(f"imagenet: {path} needs class folders named by synsets in the mapping "
                            f"({'unknown: ' + unknown[0] if unknown else 'none found'})")
        names = [given[s] for s in synsets]
        labelled = [(_file_image(file), synsets.index(folder)) for folder in folders
                    for file in image_files(path / folder) if file.is_file()]  # no pipe or device
    else:  # parquet or save_to_disk with an integer `label` column
        names, labelled = given if isinstance(given, list) else None, []
        for table in open_tables(path):
            if "label" not in table.columns:
                raise UserError(f"imagenet: {table.name} has no label column")
            names = names or _label_names(table)
            labelled += [(_table_image(table, row, "image"), int(v["label"])) for row, v in table.rows(["label"])]
    if not names:
        raise UserError("imagenet: no class names; pass --imagenet-classes FILE (LOC_synset_mapping.txt or JSON)")
    names = [name.split(",")[0].strip() for name in names]
    items = []
    for number, (loader, label) in enumerate(labelled):
        if label < 0:
            continue  # the test split's hidden labels
        key = int.from_bytes(hashlib.blake2b(f"{seed}\0{number}".encode(), digest_size=8).digest(), "little")
        near = sorted(range(len(names)), key=lambda c: (abs(c - label), c))[1:11]
        picks = list(dict.fromkeys(near[(key >> (4 * k)) % len(near)] for k in range(16)))[:distractors]
        shown = sorted([label, *picks], key=lambda c: hashlib.blake2b(f"{key}\0{c}".encode()).digest())
        items.append(Item(
            benchmark="imagenet", id=str(number), group=str(number), answer=LETTERS[shown.index(label)],
            question="Which of these is shown in the image?", options={LETTERS[i]: names[c] for i, c in enumerate(shown)},
            images=[loader],
        ))
    return items


def read_ssl(path: Path) -> list[Item]:
    items = []
    for file in sorted(Path(path).glob("data/*.parquet")):
        for row in pq.read_table(file).to_pylist():
            text = next(part["text"] for part in row["prompt"][0]["content"] if part["type"] == "text")
            items.append(Item(
                benchmark="ssl", id=f"{row['task']}:{row['source_id']}", group=row["source_id"], answer=row["answer"],
                category=row["task"], question=text, task=row["task"],
                images=[(lambda data=image["bytes"]: data) for image in row["images"]],
            ))
    if not items:
        raise UserError(f"ssl: {path} has no data/*.parquet; is it a folder built by ssl4rl-data?")
    return items


def _table_image(table, row, column, item=None):
    def load():
        value = table.cell(row, column)
        return image_bytes(value[item] if item is not None else value)

    return load


def _file_image(file: Path):
    return lambda: file.read_bytes()


def _is_image_folder(path: Path) -> bool:
    return path.is_dir() and not any(path.rglob("*.parquet")) and not (path / "state.json").exists() \
        and not (path / "dataset_dict.json").exists()


def _label_names(table) -> list[str] | None:
    metadata = getattr(getattr(table, "file", None), "schema_arrow", None)
    if metadata is not None and metadata.metadata and b"huggingface" in metadata.metadata:
        features = json.loads(metadata.metadata[b"huggingface"])["info"]["features"]
        return features.get("label", {}).get("names")
    dataset = getattr(table, "dataset", None)
    feature = dataset.features.get("label") if dataset is not None else None
    return getattr(feature, "names", None)


def _class_names(file: Path) -> dict[str, str] | list[str]:
    """`LOC_synset_mapping.txt` lines (`n01440764 tench, Tinca tinca`) or JSON (a list, or {synset: name})."""
    text = Path(file).read_text(encoding="utf-8")
    if file.suffix == ".json":
        data = json.loads(text)
        return data if isinstance(data, list) else {str(k): v for k, v in data.items()}
    mapping = {}
    for line in text.splitlines():
        if line.strip():
            synset, _, name = line.strip().partition(" ")
            mapping[synset] = name.split(",")[0].strip()
    return mapping
