"""What the multiple-choice benchmarks share: letters extracted by rule, scored against the gold letter."""

from ssl4rl_train.extraction import extract_choice
from ssl4rl_train.scoring import score_choice


class MultipleChoice:
    """Letters A-D: extracted by the rules of train/extraction.py, scored against the gold letter."""

    circular = False

    @staticmethod
    def extract(output: str, record: dict):
        return extract_choice(output, record["options"])

    @classmethod
    def score(cls, rows: list[dict]) -> dict:
        return score_choice(rows, circular=cls.circular)
