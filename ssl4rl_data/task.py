"""What a pretext task is: a seeded transform of one image into images, a question and a checked answer.

A task lives in one file under `ssl4rl_data/tasks/`, registers itself with `@register_task`, declares
its parameters as a dataclass (`Config`, whose field help is the CLI help) and implements `make` and
`score`. Nothing else needs to change to add one.
"""

import dataclasses
import json
from dataclasses import dataclass
from typing import Callable, ClassVar

import numpy as np
from PIL import Image

ANSWER_FORMAT = (
    "First think through the problem step by step inside <think> </think> tags, then give only the "
    "final answer inside <answer> </answer> tags, for example: <think>...</think> <answer>{example}</answer>"
)

# What a task that pairs pictures is handed to draw another one (contrastive negatives): (source_id, image).
OtherImage = Callable[[np.random.Generator], tuple[str, Image.Image]]


@dataclass
class Sample:
    images: list[Image.Image]
    question: str
    answer: str
    extra_source_ids: list[str] = dataclasses.field(default_factory=list)


class Task:
    name: ClassVar[str]
    Config: ClassVar[type]
    # A task that needs a second picture says so here and takes `make(image, rng, other_image)`, where
    # `other_image(rng)` draws another picture (never a near-duplicate: the build indexes them for it).
    pairs_pictures: ClassVar[bool] = False

    def __init__(self, config):
        self.config = config

    def make(self, image: Image.Image, rng: np.random.Generator) -> Sample:
        """Transform one upright RGB image; raise SkipImage when the image cannot make a fair sample."""
        raise NotImplementedError

    @staticmethod
    def score(prediction: str, truth: str) -> float:
        """Reward in [0, 1] for the text inside <answer>. By default an exact match, ignoring case and
        surrounding spaces; tasks with other rules override it. Never raises.

        >>> [Task.score(p, "top-left") for p in ["top-left", " Top-Left ", "top left", "top-right"]]
        [1.0, 1.0, 0.0, 0.0]
        """
        return float(prediction.strip().lower() == truth.strip().lower())

    def parameters(self) -> dict:
        return dataclasses.asdict(self.config)

    def baseline(self) -> str | None:
        """How well a simple non-learned solver does on this task's rows (shown in the card), and where the
        figure comes from; None where nobody has measured one."""
        return None

    def sample_key(self) -> str:
        """The task's part of every sample's random key: its name and parameters. Variants of one task
        (`contrastive` and `contrastive --strength strong`, `position` and `position --augment-crop`)
        so draw independently: mixed in one recipe, they add new pairings and crops, not copies.

        >>> from ssl4rl_data.tasks.rotation import Rotation, RotationConfig
        >>> Rotation(RotationConfig()).sample_key(), Rotation(RotationConfig(step=45)).sample_key()
        ('rotation{"step": 90}', 'rotation{"step": 45}')
        """
        return self.name + json.dumps(self.parameters(), sort_keys=True)


def config_from_options(task_cls: type, options: dict):
    """Build a task's Config from CLI/recipe options; ValueError carries a one-line message."""
    names = {f.name for f in dataclasses.fields(task_cls.Config)}
    unknown = sorted(set(options) - names)
    if unknown:
        raise ValueError(
            f"task {task_cls.name!r} has no parameter {unknown[0]!r}; it takes: {', '.join(sorted(names))}"
        )
    return task_cls.Config(**options)
