"""SEED-Bench: accuracy on image questions (video questions are left out), per question type."""

from pathlib import Path

from ssl4rl_train.eval_data import read_seedbench
from ssl4rl_train.evals import register_benchmark
from ssl4rl_train.evals.multiple_choice import MultipleChoice


@register_benchmark
class SEEDBench(MultipleChoice):
    kind = "seedbench"

    @staticmethod
    def read(path: Path, args) -> list:
        return read_seedbench(path)
