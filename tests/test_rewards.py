"""Rewards: golden cases per task, and fuzzed text that must never raise or leave [0, 1]."""

import itertools
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ssl4rl_data.rewards import accuracy_reward, extract_answer, format_reward


def wrap(answer: str) -> str:
    return f"<think>looking closely</think> <answer>{answer}</answer>"


@pytest.mark.parametrize(
    "task,truth,prediction,expected",
    [
        ("rotation", "270", "270", 1.0),
        ("rotation", "270", " 270° ", 1.0),
        ("rotation", "270", "90", 0.0),
        ("rotation", "270", "270 degrees", 0.0),
        ("rotation", "0", "360", 0.0),
        ("jigsaw", "2,4,1,3", "2,4,1,3", 1.0),
        ("jigsaw", "2,4,1,3", "2,4,3,1", 0.5),
        ("jigsaw", "2,4,1,3", "1,1,1,1", 0.0),  # not a permutation: no partial credit
        ("jigsaw", "2,4,1,3", "2,4,1,3,5", 0.0),
        ("jigsaw", "2,4,1,3", "2 4 1 3", 0.0),
        ("jigsaw", "1,2,3,4,5,6,7,8,9", "1,2,3,4,5,6,7,9,8", 7 / 9),
        ("position", "bottom-right", "Bottom-Right", 1.0),
        ("position", "bottom-right", "bottom-left", 0.0),
        ("contrastive", "negative", "NEGATIVE", 1.0),
        ("contrastive", "negative", "positive", 0.0),
        ("flip", "5", " 5 ", 1.0),
        ("flip", "5", "05", 0.0),
        ("flip", "5", "cell 5", 0.0),
        ("context", "top-right", "Top-Right", 1.0),
        ("context", "top-right", "top right", 0.0),
        ("context", "top-right", "right", 0.0),
        ("inpaint", "3", "3", 1.0),
        ("inpaint", "3", "3rd", 0.0),
        ("inpaint", "3", "4", 0.0),
    ],
)
def test_golden_cases(task, truth, prediction, expected):
    assert accuracy_reward([wrap(prediction)], answer=[truth], task=[task]) == [pytest.approx(expected)]


def test_a_row_of_an_unknown_task_is_an_error_not_a_silent_zero():
    with pytest.raises(ValueError, match="no registered task scores rows of task 'unknown-task'"):
        accuracy_reward([wrap("x")], answer=["x"], task=["unknown-task"])


def test_a_bug_in_a_task_rule_surfaces(monkeypatch):
    from ssl4rl_data.registry import tasks

    def broken(prediction, truth):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(tasks()["rotation"], "score", staticmethod(broken))
    with pytest.raises(ZeroDivisionError):
        accuracy_reward([wrap("90")], answer=["90"], task=["rotation"])


def test_only_the_first_answer_counts_and_messages_are_read():
    completion = [{"role": "assistant", "content": "<answer>90</answer> wait, <answer>180</answer>"}]
    assert accuracy_reward([completion], answer=["90"], task=["rotation"]) == [1.0]
    assert accuracy_reward([completion], answer=["180"], task=["rotation"]) == [0.0]
    multiline = "<think>\nhmm\n</think>\n<answer>\ntop-left\n</answer>"
    assert accuracy_reward([multiline], answer=["top-left"], task=["position"]) == [1.0]
    assert format_reward([multiline]) == [1.0]


def test_jigsaw_partial_credit_is_the_fraction_of_right_cells_for_every_permutation():
    truth = (3, 1, 4, 2)
    for guess in itertools.permutations(range(1, 5)):
        right = sum(g == t for g, t in zip(guess, truth)) / 4
        reward = accuracy_reward([wrap(",".join(map(str, guess)))], answer=["3,1,4,2"], task=["jigsaw"])
        assert reward == [right]


completions = st.one_of(
    st.text(),
    st.text().map(lambda t: f"<answer>{t}</answer>"),
    st.builds(lambda a, b: f"<think>{a}</think><answer>{b}</answer>", st.text(), st.text()),
    st.lists(
        st.dictionaries(
            st.sampled_from(["role", "content", "type", "text"]),
            st.one_of(st.text(), st.none(), st.integers(), st.lists(st.text())),
        )
    ),
    st.none(),
    st.integers(),
)


@settings(max_examples=400, deadline=None)
@given(
    completion=completions,
    task=st.sampled_from(["rotation", "jigsaw", "position", "contrastive", "flip", "context", "inpaint"]),
    truth=st.one_of(st.sampled_from(["90", "2,4,1,3", "top-left", "positive", "5", "bottom"]), st.text(), st.none()),
)
def test_rewards_never_raise_and_stay_in_range(completion, task, truth):
    (reward,) = accuracy_reward([completion], answer=[truth], task=[task])
    assert 0.0 <= reward <= 1.0
    assert format_reward([completion])[0] in (0.0, 1.0)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=-3, max_value=12), min_size=1, max_size=12))
def test_jigsaw_credit_only_for_permutations(numbers):
    truth = ",".join(str(i) for i in range(1, 10))
    reward = accuracy_reward([wrap(",".join(map(str, numbers)))], answer=[truth], task=["jigsaw"])[0]
    if sorted(numbers) != list(range(1, 10)):
        assert reward == 0.0
    else:
        assert reward == sum(n == i + 1 for i, n in enumerate(numbers)) / 9


@given(st.text())
def test_extract_answer_finds_what_was_wrapped(text):
    if "</answer>" not in text:
        assert extract_answer(f"<answer>{text}</answer>") == text.strip()


OLD_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
OLD_FORMAT = re.compile(r"\s*<think>.*?</think>\s*<answer>.*?</answer>\s*", re.DOTALL)
PIECES = st.sampled_from(["<think>", "</think>", "<answer>", "</answer>", " ", "\n", "a", "9", "<", ">", "/"])


@settings(max_examples=500, deadline=None)
@given(st.lists(PIECES, max_size=14).map("".join))
def test_linear_checks_agree_with_the_reference_regexes(text):
    """The linear-time extraction and format check decide exactly what the regexes they replace decided."""
    match = OLD_ANSWER.search(text)
    assert extract_answer(text) == (match.group(1).strip() if match else None)
    assert format_reward([text]) == [1.0 if OLD_FORMAT.fullmatch(text) else 0.0]


def test_format_and_extraction_edge_cases():
    assert extract_answer("<answer>a<answer>b</answer>") == "a<answer>b"
    assert extract_answer("x</answer><answer> 7 </answer>") == "7"
    assert extract_answer("<answer>open") is None
    shapes = [
        "<think>a</think>\n<answer>b</answer>",
        " <think></think><answer></answer> ",
        "<think>a</think> x <answer>b</answer>",
        "<think>a</think><answer>b</answer> more",
        "<think>a</think></think> <answer>b</answer><answer>c</answer>",
        "<think></answer>",
        "<think>a<answer>b</answer>",
        "<think>x</think> <answer>y",
    ]
    assert format_reward(shapes) == [1.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0]
