"""Per-task row checkers: a label re-checked from a row's own images and answer, independently of the
code that made it, and the row's view of its source picture (for the contamination search).

A checker registers itself for a task name with `@register_checker("name")`. The audit's own checkers
live in `ssl4rl_data/audit/task_checks.py` and `task_checks_more.py`; a task file may register one for
its task the same way (every task module is imported before a checker is looked up), and a task with
no checker is reported as not re-checked. A build stores each row's difficulty as its checker scores
it (ssl4rl_data/difficulty.py).
"""

import importlib
from dataclasses import dataclass
from typing import ClassVar

from PIL import Image

from .. import registry

OK, WRONG, UNSURE = "ok", "wrong", "unsure"  # the row's label: confirmed, disproved, or not decidable here


@dataclass
class Row:
    index: int  # position in the dataset (shards in name order)
    images: list[bytes]
    answer: str
    source_id: str

    @property
    def group(self) -> str:
        """The source picture the row comes from (a negative's first picture): the cross-validation group."""
        return self.source_id.split("|")[0]


class Checker:
    task: ClassVar[str]
    needs_pixels: ClassVar[bool] = True
    # Per-image mean, spread and byte length describe a piece's content (sky is at the top, texture costs
    # bytes): for tasks that cut a picture into pieces they may tell the answer honestly, so the audit
    # reports them without calling them a shortcut. False: no such statistic may tell the answer.
    content_statistics: ClassVar[bool] = False

    def __init__(self, parameters: dict, score_only: bool = False):
        self.parameters = parameters
        # Scoring a build's rows (ssl4rl_data/difficulty.py): only `difficulty` is used, so a checker may skip
        # work that only its verdict needs (PositionCheck), never change the score.
        self.score_only = score_only
        self.difficulty: float | None = None  # set by `check`: see `examine`

    def examine(self, row: Row, images: list[Image.Image]) -> tuple[str, float | None]:
        """(verdict, difficulty): `check`'s verdict and the model-free difficulty score it left in
        `self.difficulty`, 0 (the answer stands far apart from every other) to 1 (another answer fits the
        pixels as well), or None where the checker has no score."""
        self.difficulty = None
        state = self.check(row, images)
        return state, self.difficulty

    def check(self, row: Row, images: list[Image.Image]) -> str:
        """OK, WRONG (the pixels contradict the answer) or UNSURE; `images` are decoded RGB."""
        raise NotImplementedError

    def picture(self, row: Row, images: list[Image.Image]) -> Image.Image | None:
        """The source picture as the row shows it (undone where the task altered it), or None where no
        image of the row shows most of it."""
        return None


_CHECKERS: dict[str, type] = {}


def register_checker(task: str):
    def decorator(cls):
        cls.task = task
        _CHECKERS[task] = cls
        return cls

    return decorator


def get_checker(task: str, parameters: dict, score_only: bool = False) -> Checker | None:
    registry.tasks()  # task modules may register their own checkers
    importlib.import_module(f"{__package__}.task_checks")
    importlib.import_module(f"{__package__}.task_checks_more")
    cls = _CHECKERS.get(task)
    return cls(parameters, score_only) if cls else None
