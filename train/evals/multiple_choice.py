"""The multiple-choice benchmarks: MMBench (circular), SEED-Bench and ImageNet (plain accuracy)."""

from pathlib import Path

from ssl4rl_train.eval_data import read_mmbench, read_seedbench
from ssl4rl_train.eval_imagenet import read_imagenet
from ssl4rl_train.evals import register_benchmark
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


@register_benchmark
class MMBench(MultipleChoice):
    """Circular accuracy: a question counts only if every option-rotated copy is right."""

    kind = "mmbench"
    circular = True

    @staticmethod
    def read(path: Path, args) -> list:
        return read_mmbench(path)


@register_benchmark
class SEEDBench(MultipleChoice):
    """Accuracy on image questions (video questions are left out), per question type."""

    kind = "seedbench"

    @staticmethod
    def read(path: Path, args) -> list:
        return read_seedbench(path)


@register_benchmark
class ImageNet(MultipleChoice):
    """Multiple choice between the true class and distractors with distinct names."""

    kind = "imagenet"

    @staticmethod
    def read(path: Path, args) -> list:
        return read_imagenet(path, args.imagenet_classes, args.imagenet_distractors, args.seed)
