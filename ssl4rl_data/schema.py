"""The row schema every task writes; rows feed TRL's GRPOTrainer as they are."""

from datasets import Features, Image, List, Value

SOURCE_ID_SEPARATOR = "|"  # a contrastive negative names both images; ids never contain it

FEATURES = Features(
    {
        "prompt": List({"role": Value("string"), "content": List({"type": Value("string"), "text": Value("string")})}),
        "images": List(Image()),
        "answer": Value("string"),
        "task": Value("string"),
        "source_id": Value("string"),
    }
)


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
