"""ImageNet as multiple choice for evaluation: the true class and distractor classes near it.

Layouts are told apart by the imagenet source's own `layout` (ssl4rl_data/sources/imagenet.py): parquet
or save_to_disk tables with an integer `label` column (read through the same `open_tables`), or an
ImageFolder whose class folders are named by synset (listed by the same `image_file_names`). Flat
folders and tar shards carry no labels the evaluator can read.
"""

import hashlib
import json
import os
from pathlib import Path

from ssl4rl_data.sources.folder import image_file_names
from ssl4rl_data.sources.imagenet import layout
from ssl4rl_data.tables import open_tables
from ssl4rl_train.eval_data import LETTERS, Item, _table_image

NEAREST = 10
QUESTION = "Which of these is shown in the image?"


def read_imagenet(path: Path, classes: Path | None, distractors: int, seed: int) -> list[Item]:
    """One item per labelled image: the true class and `distractors` others, all with distinct names.

    Distractors come from the NEAREST classes to the true one in sorted-synset order (neighbours are
    mostly related: dog breeds, birds, ...; harder than random classes, which inflate accuracy) whose
    names differ from the true class's and from each other (two synsets are both "crane", two both
    "maillot"). They are picked, and the options ordered, by a hash of seed, image number and class,
    so a run is reproducible.
    """
    given = class_names(classes) if classes else None
    kind = layout(path)
    if kind == "folder":  # ImageFolder: class folders named by synset
        if not isinstance(given, dict):
            raise ValueError(f"imagenet: {path} is an image folder; pass --imagenet-classes LOC_synset_mapping.txt")
        synsets = sorted(given)
        position = {synset: number for number, synset in enumerate(synsets)}
        names, labelled, unknown = [given[s] for s in synsets], [], set()
        for file, relative in image_file_names(path):
            folder = relative.split("/")[-2] if "/" in relative else ""
            if folder not in position:
                unknown.add(folder or "(no class folder)")
            elif os.path.isfile(file):  # a regular file: never a pipe or a device
                labelled.append((_file_image(file), position[folder]))
        if unknown:
            raise ValueError(
                f"imagenet: {path} needs class folders named by synsets in the mapping "
                f"(not in it: {sorted(unknown)[0]})"
            )
    elif kind == "tables":  # parquet or save_to_disk with an integer `label` column
        names, labelled = given if isinstance(given, list) else None, []
        for table in open_tables(path):
            if "label" not in table.columns:
                raise ValueError(f"imagenet: {table.name} has no label column")
            names = names or _label_names(table)
            labelled += [(_table_image(table, row, "image"), int(v["label"])) for row, v in table.rows(["label"])]
    else:
        raise ValueError(
            f"imagenet: {path} holds {kind} without labels the evaluator can read; "
            "use parquet files, a save_to_disk folder or an ImageFolder of synset folders"
        )
    if not names:
        raise ValueError("imagenet: no class names; pass --imagenet-classes FILE (LOC_synset_mapping.txt or JSON)")
    names = [name.split(",")[0].strip() for name in names]
    items = []
    for number, (loader, label) in enumerate(labelled):
        if label < 0:
            continue  # the test split's hidden labels
        shown = choose_classes(names, label, distractors, f"{seed}\0{number}")
        items.append(
            Item(
                benchmark="imagenet",
                id=str(number),
                group=str(number),
                answer=LETTERS[shown.index(label)],
                question=QUESTION,
                options={LETTERS[i]: names[c] for i, c in enumerate(shown)},
                images=[loader],
            )
        )
    return items


def choose_classes(names: list[str], label: int, distractors: int, key: str) -> list[int]:
    """The true class and `distractors` near classes with names distinct from it and from each other,
    in a hashed order."""

    def rank(c):
        return hashlib.blake2b(f"{key}\0{c}".encode(), digest_size=8).digest()

    seen, near = {names[label]}, []
    for c in sorted(range(len(names)), key=lambda c: (abs(c - label), c)):
        if names[c] not in seen:
            seen.add(names[c])
            near.append(c)
            if len(near) == NEAREST:
                break
    return sorted([label, *sorted(near, key=rank)[:distractors]], key=rank)


def _file_image(file: str):
    return lambda: Path(file).read_bytes()


def _label_names(table) -> list[str] | None:
    metadata = getattr(getattr(table, "file", None), "schema_arrow", None)
    if metadata is not None and metadata.metadata and b"huggingface" in metadata.metadata:
        features = json.loads(metadata.metadata[b"huggingface"])["info"]["features"]
        return features.get("label", {}).get("names")
    dataset = getattr(table, "dataset", None)
    feature = dataset.features.get("label") if dataset is not None else None
    return getattr(feature, "names", None)


def class_names(file: Path) -> dict[str, str] | list[str]:
    """`LOC_synset_mapping.txt` lines (`n01440764 tench, Tinca tinca`) or JSON (a list, or {synset: name})."""
    text = Path(file).read_text(encoding="utf-8")
    if Path(file).suffix == ".json":
        data = json.loads(text)
        return data if isinstance(data, list) else {str(k): v for k, v in data.items()}
    mapping = {}
    for line in text.splitlines():
        if line.strip():
            synset, _, name = line.strip().partition(" ")
            mapping[synset] = name.split(",")[0].strip()
    return mapping
