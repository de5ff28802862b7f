"""Rule-checked rewards with TRL's reward-function signature.

Only the first `<answer>...</answer>` of a completion is scored, by the rule of the row's `task`
(each task's `score`), so datasets of several tasks can be mixed in one run. A completion is either
a string or a list of chat messages whose last one is the assistant's; content may be a string or a
list of `{"type": "text", "text": ...}` parts. No completion makes them raise: anything unreadable
scores 0; but a row whose task no registered task handles is an error (a data mistake, which a
silent zero would hide), as is any bug in a task's rule. Every check is linear in the text's length (no backtracking regex over the completion), and
lists of different lengths are an error, never silently cut to the shortest.
"""

import re

from .registry import tasks

OPEN, CLOSE = "<answer>", "</answer>"
THINK_OPEN = "<think>"
THINK_TO_ANSWER = re.compile(r"</think>\s*<answer>")  # \s* runs after distinct tags never overlap: linear


def completion_text(completion) -> str:
    """The assistant's text of one completion, whatever shape TRL hands over.

    >>> completion_text([{"role": "assistant", "content": [{"type": "text", "text": "hi"}]}])
    'hi'
    """
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        completion = [completion]
    if isinstance(completion, (list, tuple)) and completion:
        content = completion[-1].get("content", "") if isinstance(completion[-1], dict) else ""
        if isinstance(content, str):
            return content
        if isinstance(content, (list, tuple)):
            return "".join(p.get("text") or "" for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def extract_answer(text: str) -> str | None:
    """The stripped text inside the first <answer> tag, or None.

    >>> extract_answer("<think>x</think> <answer> 90 </answer><answer>180</answer>")
    '90'
    >>> extract_answer("90") is None
    True
    """
    start = text.find(OPEN)
    if start < 0:
        return None
    end = text.find(CLOSE, start + len(OPEN))  # no close after the first open: none after any later one
    return text[start + len(OPEN) : end].strip() if end >= 0 else None


def is_formatted(text: str) -> bool:
    """Whether `text` is `<think>...</think> <answer>...</answer>` with optional surrounding whitespace:
    the regex `\\s*<think>.*?</think>\\s*<answer>.*?</answer>\\s*` (full match, dot matching newlines),
    decided in linear time.

    >>> [is_formatted(t) for t in ["<think>a</think> <answer>b</answer>\\n", "<think>a</think>x<answer>b</answer>"]]
    [True, False]
    """
    text = text.strip()
    if len(text) < len(THINK_OPEN) + len(CLOSE) or not (text.startswith(THINK_OPEN) and text.endswith(CLOSE)):
        return False
    return THINK_TO_ANSWER.search(text, len(THINK_OPEN), len(text) - len(CLOSE)) is not None


def _same_lengths(**lists):
    lengths = {name: len(values) for name, values in lists.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(
            "reward inputs have different lengths: "
            + ", ".join(f"{name} {length}" for name, length in lengths.items())
        )


def score(completion, answer: str, task: str) -> float:
    """Reward of one completion for a row of `task` with ground truth `answer`.

    >>> score("<answer>90</answer>", "90", "no-such-task")
    Traceback (most recent call last):
    ...
    ValueError: no registered task scores rows of task 'no-such-task'
    """
    task_cls = tasks().get(task)
    if task_cls is None:
        raise ValueError(f"no registered task scores rows of task {task!r}")
    prediction = extract_answer(completion_text(completion))
    if prediction is None or not isinstance(answer, str):
        return 0.0
    return float(task_cls.score(prediction, answer))


def accuracy_reward(completions, answer, task, **kwargs) -> list[float]:
    """1.0 for a right answer (partial credit for jigsaw), else 0.0; routed by each row's `task`.

    Accepted variants, per task: case and surrounding spaces are ignored for every task; rotation
    also accepts a trailing degree sign (`90°`); jigsaw accepts spaces around the numbers and gives
    the fraction of right cells, but only for a permutation of 1..N of the right length.

    >>> accuracy_reward(
    ...     ["<think>...</think> <answer>90°</answer>", "<answer>2,1,3,4</answer>", "<answer>1,1,1,1</answer>",
    ...      [{"role": "assistant", "content": "<answer> Positive </answer>"}], "no tags: positive"],
    ...     answer=["90", "2,4,1,3", "2,4,1,3", "positive", "positive"],
    ...     task=["rotation", "jigsaw", "jigsaw", "contrastive", "contrastive"])
    [1.0, 0.25, 0.0, 1.0, 0.0]
    """
    _same_lengths(completions=completions, answer=answer, task=task)
    return [score(c, a, t) for c, a, t in zip(completions, answer, task, strict=True)]


def format_reward(completions, **kwargs) -> list[float]:
    """1.0 when the whole completion is `<think>...</think> <answer>...</answer>`, else 0.0.

    >>> format_reward(["<think>a</think>\\n<answer>b</answer>", "<answer>b</answer>", "<think>a</think><answer>b</answer> more"])
    [1.0, 0.0, 0.0]
    """
    return [1.0 if is_formatted(completion_text(completion)) else 0.0 for completion in completions]


class TaskAccuracy:
    """`accuracy_reward` for the rows of one task and None for the others.

    One instance per task makes TRL log each task's mean reward (`rewards/<task>/mean`); TRL sums the
    non-None rewards of a row, so a mixture of tasks trains as one run. A class, not a closure, so
    it pickles.

    >>> reward = TaskAccuracy("rotation")
    >>> reward.__name__, reward(["<answer>90</answer>", "<answer>1,2</answer>"], answer=["90", "1,2"], task=["rotation", "jigsaw"])
    ('rotation', [1.0, None])
    """

    def __init__(self, task: str):
        self.task = task
        self.__name__ = task

    def __call__(self, completions, answer, task, **kwargs) -> list[float | None]:
        _same_lengths(completions=completions, answer=answer, task=task)
        return [score(c, a, t) if t == self.task else None for c, a, t in zip(completions, answer, task, strict=True)]
