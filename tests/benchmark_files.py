"""Writers of small benchmark files in their real on-disk formats, from real photos.

Every label field (question, hint, options, answer, category, class) holds a MARKER string, so a
test can prove that none of them reaches a built dataset.
"""

import base64
import io
import json
import tarfile
from pathlib import Path

import pandas as pd
from datasets import ClassLabel, Dataset, DatasetDict, Features, Image, List, Value
from PIL import Image as PILImage

from ssl4rl_data.sources.sample import PHOTOS, photo_dir

MARKER = "LEAKMARK"
IMAGENET_MARKERS = ("n01440764", "n02102040", "ILSVRC2012_val", "tench", MARKER)


def photo(index: int, size=(240, 180), mode="RGB") -> PILImage.Image:
    image = PILImage.open(photo_dir() / PHOTOS[index % len(PHOTOS)]).convert("RGB").resize(size)
    if mode == "P":
        return image.convert("P", palette=PILImage.Palette.ADAPTIVE)
    return image.convert(mode)


def encoded(image: PILImage.Image, fmt="PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    return buffer.getvalue()


def b64(image, fmt="PNG") -> str:
    return base64.b64encode(encoded(image, fmt)).decode()


def label_fields(index: int) -> dict:
    return {
        "question": f'{MARKER} question {index}?\nSecond line\twith a tab and "quotes"',
        "hint": f"{MARKER} hint",
        "A": f"{MARKER} a",
        "B": f"{MARKER} b",
        "C": f"{MARKER} c",
        "D": f"{MARKER} d",
        "answer": f"{MARKER}-B",
        "category": f"{MARKER} category",
    }


# MMBench: 4 questions, each repeated once per option rotation; questions 0 and 3 share one image.
MMBENCH_IMAGES = {0: photo(0), 1: photo(1, mode="RGBA"), 2: photo(2, mode="P"), 3: photo(0)}
MMBENCH_UNIQUE = 3


def mmbench_rows(split: str, copies: int = 3):
    for question, image in MMBENCH_IMAGES.items():
        for copy in range(copies):
            yield question + copy * 1_000_000, question, image, split


def write_mmbench_tsv(path: Path, split="dev"):
    """VLMEvalKit style: base64 images; each copy's image cell is the index of the row that holds it."""
    records = []
    for index, question, image, split_name in mmbench_rows(split):
        cell = b64(image) if index == question else str(question)
        records.append(
            {
                "index": index,
                **label_fields(question),
                "image": cell,
                "source": f"{MARKER} src",
                "l2-category": f"{MARKER} l2",
                "comment": f"{MARKER} comment",
                "split": split_name,
            }
        )
    pd.DataFrame(records).to_csv(path, sep="\t", index=False)
    return path


def mmbench_dataset(index_as_string=True, image_as_base64=False) -> Dataset:
    rows = {
        key: []
        for key in [
            "index",
            "question",
            "hint",
            "A",
            "B",
            "C",
            "D",
            "answer",
            "category",
            "image",
            "source",
            "L2-category",
            "comment",
        ]
    }
    for index, question, image, _ in mmbench_rows("dev"):
        for key, value in label_fields(question).items():
            rows[key].append(value)
        rows["index"].append(str(index) if index_as_string else index)
        rows["image"].append(b64(image) if image_as_base64 else {"bytes": encoded(image), "path": None})
        rows["source"].append(f"{MARKER} src")
        rows["L2-category"].append(f"{MARKER} l2")
        rows["comment"].append(f"{MARKER} comment")
    features = Features({key: Value("string") for key in rows})
    features["index"] = Value("string" if index_as_string else "int64")
    features["image"] = Value("string") if image_as_base64 else Image()
    return Dataset.from_dict(rows, features=features)


def write_mmbench_lmms_folder(root: Path):
    """lmms-lab/MMBench layout: config folders, `L2-category`, string index (en) and int index (cn)."""
    (root / "en").mkdir(parents=True)
    (root / "cn").mkdir()
    mmbench_dataset(index_as_string=True).to_parquet(root / "en" / "dev-00000-of-00001.parquet")
    mmbench_dataset(index_as_string=False).to_parquet(root / "cn" / "dev-00000-of-00001.parquet")
    return root


def write_mmbench_m4_folder(root: Path):
    """HuggingFaceM4/MMBench layout: `image` is a base64 string; splits validation and test."""
    (root / "data").mkdir(parents=True)
    mmbench_dataset(image_as_base64=True).to_parquet(root / "data" / "validation-00000-of-00001.parquet")
    test = mmbench_dataset(image_as_base64=True).map(lambda row: {"index": str(int(row["index"]) + 500)})
    test = test.map(lambda row: {"image": b64(photo(5))} if row["index"] == "500" else {})
    test.to_parquet(root / "data" / "test-00000-of-00001.parquet")
    return root


def write_mmbench_saved(root: Path):
    DatasetDict({"dev": mmbench_dataset()}).save_to_disk(str(root))
    return root


# SEED-Bench: 3 image questions (two share an image, one CMYK) and 2 video questions.
SEED_UNIQUE = 2


def seed_dataset() -> Dataset:
    cmyk = encoded(photo(3, mode="CMYK"), "JPEG")
    shared = encoded(photo(4))
    frames = [encoded(photo(i)) for i in range(4)]
    rows = [
        ("img-1", "image", [cmyk]),
        ("img-2", "image", [shared]),
        ("img-2", "image", [shared]),
        ("vid-1", "video", frames),
        ("vid-2", "video", frames[:3]),
    ]
    return Dataset.from_dict(
        {
            "answer": [f"{MARKER}-A"] * 5,
            "choice_a": [f"{MARKER} a"] * 5,
            "choice_b": [f"{MARKER} b"] * 5,
            "data_id": [r[0] for r in rows],
            "data_type": [r[1] for r in rows],
            "question": [f"{MARKER} q"] * 5,
            "question_id": [f"{MARKER}-{i}" for i in range(5)],
            "question_type_id": [1, 2, 1, 10, 11],
            "image": [[{"bytes": b, "path": None} for b in r[2]] for r in rows],
        },
        features=Features(
            {
                "answer": Value("string"),
                "choice_a": Value("string"),
                "choice_b": Value("string"),
                "data_id": Value("string"),
                "data_type": Value("string"),
                "question": Value("string"),
                "question_id": Value("string"),
                "question_type_id": Value("int64"),
                "image": List(Image()),
            }
        ),
    )


def write_seed_parquet(root: Path):
    (root / "data").mkdir(parents=True)
    seed_dataset().to_parquet(root / "data" / "test-00000-of-00001.parquet")
    return root


def write_seed_tsv(path: Path):
    cmyk = base64.b64encode(encoded(photo(3, mode="CMYK"), "JPEG")).decode()
    records = [
        {"index": i, **label_fields(i), "image": image} for i, image in enumerate([cmyk, b64(photo(4)), b64(photo(4))])
    ]
    pd.DataFrame(records).to_csv(path, sep="\t", index=False)
    return path


# ImageNet: 4 usable images in every layout (one PNG named .JPEG, one CMYK, one greyscale).
IMAGENET_UNIQUE = 4


def imagenet_files() -> list[tuple[str, str, bytes]]:
    """(class folder, file name, bytes) as the real archive has them."""
    return [
        ("n01440764", "n01440764_10026.JPEG", encoded(photo(6), "JPEG")),
        ("n01440764", "n01440764_10027.JPEG", encoded(photo(7), "PNG")),  # a PNG named .JPEG
        ("n02102040", "n02102040_1.JPEG", encoded(photo(8, mode="CMYK"), "JPEG")),
        ("n02102040", "n02102040_2.JPEG", encoded(photo(9, mode="L"), "JPEG")),
        ("n02102040", "n02102040_3.JPEG", encoded(photo(6), "JPEG")),  # the same bytes as the first
    ]


def write_imagenet_folder(root: Path):
    for synset, name, data in imagenet_files():
        (root / "train" / synset).mkdir(parents=True, exist_ok=True)
        (root / "train" / synset / name).write_bytes(data)
    (root / "val").mkdir()
    (root / "val" / "ILSVRC2012_val_00000001.JPEG").write_bytes(encoded(photo(10), "JPEG"))
    return root


def write_imagenet_flat(root: Path):
    root.mkdir(parents=True)
    for index, (_, _, data) in enumerate(imagenet_files()):
        (root / f"ILSVRC2012_val_{index + 1:08d}.JPEG").write_bytes(data)
    return root


def write_imagenet_tars(root: Path):
    root.mkdir(parents=True)
    files = imagenet_files()
    for shard, chunk in enumerate([files[:3], files[3:]]):
        with tarfile.open(root / f"imagenet-train-{shard:06d}.tar", "w") as archive:
            for synset, name, data in chunk:
                key = name.rsplit(".", 1)[0]
                for suffix, payload in [
                    (".jpg", data),
                    (".cls", b"0"),
                    (".json", json.dumps({"synset": synset, "label": "tench"}).encode()),
                ]:
                    info = tarfile.TarInfo(key + suffix)
                    info.size = len(payload)
                    archive.addfile(info, io.BytesIO(payload))
    return root


def imagenet_dataset() -> Dataset:
    files = imagenet_files()
    return Dataset.from_dict(
        {"image": [{"bytes": data, "path": None} for _, _, data in files], "label": [0, 0, 1, 1, 1]},
        features=Features({"image": Image(), "label": ClassLabel(names=["tench LEAKMARK", "n02102040 LEAKMARK"])}),
    )


def write_imagenet_parquet(root: Path):
    (root / "data").mkdir(parents=True)
    imagenet_dataset().to_parquet(root / "data" / "train-00000-of-00001.parquet")
    return root


def write_imagenet_saved(root: Path):
    DatasetDict({"train": imagenet_dataset()}).save_to_disk(str(root))
    return root
