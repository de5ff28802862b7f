"""The row schema every task writes; rows feed TRL's GRPOTrainer as they are.

The parquet schema is written with pyarrow alone, carrying the `datasets` features in its metadata
as `datasets` itself does, so a build does not pay for importing `datasets` (about 0.8 s). A test
keeps it identical to `datasets.Features(...).arrow_schema`.
"""

import json

import pyarrow as pa

SOURCE_ID_SEPARATOR = "|"  # a contrastive negative names both images; ids never contain it


def _string() -> dict:
    return {"dtype": "string", "_type": "Value"}


FEATURES = {
    "prompt": {"feature": {"role": _string(), "content": {"feature": {"type": _string(), "text": _string()},
                                                          "_type": "List"}}, "_type": "List"},
    "images": {"feature": {"_type": "Image"}, "_type": "List"},
    "answer": _string(),
    "task": _string(),
    "source_id": _string(),
}

ARROW_SCHEMA = pa.schema(
    [
        ("prompt", pa.list_(pa.struct([("role", pa.string()),
                                       ("content", pa.list_(pa.struct([("type", pa.string()), ("text", pa.string())])))]))),
        ("images", pa.list_(pa.struct([("bytes", pa.binary()), ("path", pa.string())]))),
        ("answer", pa.string()),
        ("task", pa.string()),
        ("source_id", pa.string()),
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


def make_row(task: str, question: str, images: list[bytes], answer: str, source_ids: list[str]) -> dict:
    """One conversational row: a user turn with one image part per image (in `images` order), then the text."""
    content = [{"type": "image", "text": None} for _ in images] + [{"type": "text", "text": question}]
    return {
        "prompt": [{"role": "user", "content": content}],
        "images": [{"bytes": data, "path": None} for data in images],
        "answer": answer,
        "task": task,
        "source_id": SOURCE_ID_SEPARATOR.join(source_ids),
    }
