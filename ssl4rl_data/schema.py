"""The row schema every task writes; rows feed TRL's GRPOTrainer as they are.

The parquet schema is written with pyarrow alone, carrying the `datasets` features in its metadata
as `datasets` itself does, so a build does not pay for importing `datasets` (about 0.8 s). A test
keeps it identical to `datasets.Features(...).arrow_schema`.
"""

import json

import numpy as np
import pyarrow as pa

SOURCE_ID_SEPARATOR = "|"  # a contrastive negative names both images; ids never contain it
ROW_GROUP_ROWS = 64
ROW_GROUP_BYTES = 256 * 2**20  # fewer rows per group when images are huge


def _string() -> dict:
    return {"dtype": "string", "_type": "Value"}


FEATURES = {
    "prompt": {
        "feature": {
            "role": _string(),
            "content": {"feature": {"type": _string(), "text": _string()}, "_type": "List"},
        },
        "_type": "List",
    },
    "images": {"feature": {"_type": "Image"}, "_type": "List"},
    "answer": _string(),
    "task": _string(),
    "source_id": _string(),
    "difficulty": {"dtype": "float64", "_type": "Value"},  # ssl4rl_data/difficulty.py; null: not scored
}

ARROW_SCHEMA = pa.schema(
    [
        (
            "prompt",
            pa.list_(
                pa.struct(
                    [
                        ("role", pa.string()),
                        ("content", pa.list_(pa.struct([("type", pa.string()), ("text", pa.string())]))),
                    ]
                )
            ),
        ),
        ("images", pa.list_(pa.struct([("bytes", pa.binary()), ("path", pa.string())]))),
        ("answer", pa.string()),
        ("task", pa.string()),
        ("source_id", pa.string()),
        ("difficulty", pa.float64()),
    ],
    metadata={"huggingface": json.dumps({"info": {"features": FEATURES}})},
)

# Image bytes are JPEG or PNG, which no general-purpose codec shrinks further, so nothing is
# compressed; the strings that repeat from row to row go into dictionaries. Against pyarrow's
# defaults (snappy and dictionaries on every column) this writes the same size 20-25% faster.
PARQUET_WRITER_OPTIONS = {
    "compression": "none",
    "use_dictionary": ["prompt.list.element.role", "prompt.list.element.content.list.element.text", "answer", "task"],
}


class RowBatch:
    """Rows gathered column by column, turned into an Arrow table straight from buffers.

    Conversational rows: a user turn with one image part per image (in `images` order), then the
    text. pyarrow's converters from Python objects (`Table.from_pylist`, `pa.array`) import pandas
    on first use, 0.5-0.7 s of every build and 40 MB in every worker; building from buffers skips
    that. Per row it took half the time of `from_pylist` for 9-image rows (3x3 jigsaw) and the same
    time for 2-image rows, in a review's measurement. A test keeps the result equal to `from_pylist`'s.
    """

    def __init__(self):
        self.tasks, self.questions, self.images, self.answers, self.source_ids = [], [], [], [], []
        self.difficulties = []
        self.nbytes = 0

    def add(
        self,
        task: str,
        question: str,
        images: list[bytes],
        answer: str,
        source_ids: list[str],
        difficulty: float | None,
    ):
        self.difficulties.append(difficulty)
        self.tasks.append(task)
        self.questions.append(question)
        self.images.append(images)
        self.answers.append(answer)
        self.source_ids.append(SOURCE_ID_SEPARATOR.join(source_ids))
        self.nbytes += sum(map(len, images))

    def __len__(self) -> int:
        return len(self.tasks)

    @property
    def full(self) -> bool:
        """Time to write a row group: bounded in rows and in bytes (Arrow's offsets end at 2 GiB)."""
        return len(self) >= ROW_GROUP_ROWS or self.nbytes >= ROW_GROUP_BYTES

    def table(self) -> pa.Table:
        rows, counts = len(self.tasks), [len(images) for images in self.images]
        turn_type = ARROW_SCHEMA.field("prompt").type
        content_type = turn_type.value_type.field("content").type
        content = _list(
            [count + 1 for count in counts],
            pa.StructArray.from_arrays(
                [
                    _strings([kind for count in counts for kind in ["image"] * count + ["text"]]),
                    _strings(
                        [
                            text
                            for question, count in zip(self.questions, counts, strict=True)
                            for text in [None] * count + [question]
                        ]
                    ),
                ],
                fields=list(content_type.value_type),
            ),
            content_type,
        )
        turns = pa.StructArray.from_arrays([_strings(["user"] * rows), content], fields=list(turn_type.value_type))
        images_type = ARROW_SCHEMA.field("images").type
        flat = [data for images in self.images for data in images]
        images = pa.StructArray.from_arrays(
            [_strings(flat, binary=True), pa.nulls(len(flat), pa.string())], fields=list(images_type.value_type)
        )
        columns = [
            _list([1] * rows, turns, turn_type),
            _list(counts, images, images_type),
            _strings(self.answers),
            _strings(self.tasks),
            _strings(self.source_ids),
            _floats(self.difficulties),
        ]
        return pa.Table.from_arrays(columns, schema=ARROW_SCHEMA)


def _offsets(lengths: list[int]) -> pa.Buffer:
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    if offsets[-1] > np.iinfo(np.int32).max:
        raise ValueError("a row group over 2 GiB: write it in smaller batches")
    return pa.py_buffer(offsets.astype(np.int32))


def _list(lengths: list[int], values: pa.Array, list_type: pa.DataType) -> pa.Array:
    return pa.ListArray.from_arrays(
        pa.Array.from_buffers(pa.int32(), len(lengths) + 1, [None, _offsets(lengths)]), values, type=list_type
    )


def _floats(values: list) -> pa.Array:
    """A float64 array of `values` (float or None).

    >>> _floats([0.5, None]).to_pylist()
    [0.5, None]
    """
    missing = np.fromiter((value is None for value in values), dtype=bool, count=len(values))
    data = np.array([0.0 if value is None else value for value in values], dtype=np.float64)
    validity = pa.py_buffer(np.packbits(~missing, bitorder="little")) if missing.any() else None
    return pa.Array.from_buffers(
        pa.float64(), len(values), [validity, pa.py_buffer(data)], null_count=int(missing.sum())
    )


def _strings(values: list, binary: bool = False) -> pa.Array:
    """A string (or binary) array of `values` (str, bytes or None).

    >>> _strings(["a", None, "bc"]).to_pylist()
    ['a', None, 'bc']
    """
    data = [value.encode() if isinstance(value, str) else value for value in values]
    missing = np.fromiter((value is None for value in data), dtype=bool, count=len(data))
    validity = None
    if missing.any():
        validity = pa.py_buffer(np.packbits(~missing, bitorder="little"))
        data = [b"" if value is None else value for value in data]
    return pa.Array.from_buffers(
        pa.binary() if binary else pa.string(),
        len(data),
        [validity, _offsets(list(map(len, data))), pa.py_buffer(b"".join(data))],
        null_count=int(missing.sum()),
    )
