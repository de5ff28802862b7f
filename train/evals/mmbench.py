"""MMBench: circular accuracy, a question counting only if every option-rotated copy is right."""

from pathlib import Path

from ssl4rl_train.eval_data import read_mmbench
from ssl4rl_train.evals import register_benchmark
from ssl4rl_train.evals.multiple_choice import MultipleChoice


@register_benchmark
class MMBench(MultipleChoice):
    kind = "mmbench"
    circular = True

    @staticmethod
    def read(path: Path, args) -> list:
        return read_mmbench(path)
