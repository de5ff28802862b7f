"""A dataset built by ssl4rl-data, scored by the training reward functions."""

from pathlib import Path

from ssl4rl_data.rewards import extract_answer
from ssl4rl_train.eval_data import read_ssl
from ssl4rl_train.evals import register_benchmark
from ssl4rl_train.scoring import score_ssl


@register_benchmark
class SSL:
    kind = "ssl"

    @staticmethod
    def read(path: Path, args) -> list:
        return read_ssl(path, f"ssl:{path.resolve().name}")

    @staticmethod
    def extract(output: str, record: dict):
        return extract_answer(output)

    @staticmethod
    def score(rows: list[dict]) -> dict:
        return score_ssl(rows)
