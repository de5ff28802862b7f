"""Reading a predictions.jsonl written by evaluate.py, each record checked for what scoring reads."""

import json
from pathlib import Path

from ssl4rl_data.errors import UserError

FIELDS = {"benchmark": (str,), "group": (str,), "answer": (str,), "output": (str,), "category": (str, type(None))}
CHOICE_FIELDS = {"options": (dict,)}
SSL_FIELDS = {"task": (str,)}


def read_predictions(path: Path) -> list[dict]:
    """The records of a predictions.jsonl, each checked for the fields and types scoring reads."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UserError(
            f"--predictions {path} is not UTF-8 text (expected a predictions.jsonl from evaluate.py)"
        ) from None
    except OSError as error:
        raise UserError(f"--predictions {path} cannot be read: {error.strerror or error}") from None
    records = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise UserError(
                f"--predictions {path}: line {number} is not JSON ({error.msg}); is the file truncated?"
            ) from None
        if not isinstance(record, dict):
            raise UserError(f"--predictions {path}: line {number} is not a JSON object")
        fields = {**FIELDS, **(SSL_FIELDS if record.get("benchmark") == "ssl" else CHOICE_FIELDS)}
        for name, kinds in fields.items():
            if not isinstance(record.get(name), kinds):
                wanted = " or ".join("null" if kind is type(None) else kind.__name__ for kind in kinds)
                raise UserError(
                    f"--predictions {path}: line {number}: field {name!r} must be {wanted}, "
                    f"got {type(record.get(name)).__name__ if name in record else 'nothing'}"
                )
        if record["benchmark"] != "ssl" and not all(isinstance(v, str) for v in record["options"].values()):
            raise UserError(f"--predictions {path}: line {number}: options must map letters to text")
        records.append(record)
    if not records:
        raise UserError(f"--predictions {path} holds no predictions")
    return records
