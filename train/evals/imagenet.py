"""ImageNet: multiple choice between the true class and distractors with distinct names."""

from pathlib import Path

from ssl4rl_train.eval_imagenet import read_imagenet
from ssl4rl_train.evals import register_benchmark
from ssl4rl_train.evals.multiple_choice import MultipleChoice


@register_benchmark
class ImageNet(MultipleChoice):
    kind = "imagenet"

    @staticmethod
    def read(path: Path, args) -> list:
        return read_imagenet(path, args.imagenet_classes, args.imagenet_distractors, args.seed)
