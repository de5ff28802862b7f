"""train/extraction.py: a golden table of model outputs and the letter a careful reader would take from each."""

import time

import pytest

from ssl4rl_train.extraction import answer_region, extract_choice

ANIMALS = {"A": "a cat", "B": "a dog", "C": "a bird", "D": "a fish"}
DOGS = {"A": "dog", "B": "black dog", "C": "cat", "D": "horse"}
COLOURS = {"A": "red", "B": "green", "C": "blue", "D": "yellow"}
MANY = {letter: f"thing {letter.lower()}" for letter in "ABCDEFGHI"}

GOLDEN = [
    # the examples
    ("I choose B because A is a cat.", ANIMALS, "B"),
    ("Option A is wrong; the answer is B.", ANIMALS, "B"),
    ("**B**", ANIMALS, "B"),
    ("**Answer:** B", ANIMALS, "B"),
    ("I think it's B.", ANIMALS, "B"),
    ("\\boxed{B}", ANIMALS, "B"),
    ("black dog", DOGS, "B"),
    ("It is a black dog.", DOGS, "B"),
    ("A dog.", ANIMALS, "B"),
    # answer tags
    ("<think>it barks</think> <answer>B</answer>", ANIMALS, "B"),
    ("<think>A is a cat, no</think><answer>C</answer>", ANIMALS, "C"),
    ("<answer> (D) </answer>", ANIMALS, "D"),
    ("<answer>b</answer>", ANIMALS, "B"),
    ("<answer>B. a dog</answer>", ANIMALS, "B"),
    ("<answer>a fish</answer>", ANIMALS, "D"),
    ("<answer>B</answer><answer>C</answer>", ANIMALS, "B"),
    ("<think>x</think> <answer>C", ANIMALS, "C"),  # cut at the stop string's start
    ("<answer>maybe</answer>", ANIMALS, None),
    ("<answer></answer> B", ANIMALS, None),
    # reasoning: only what follows it
    ("<think>The answer is A.</think> B", ANIMALS, "B"),
    ("<think>The answer is A.</think>", ANIMALS, None),
    ("<think>It could be A or B, hmm", ANIMALS, None),  # the reasoning never ended
    ("<think>a</think> <think>b</think> C", ANIMALS, "C"),
    # bare letters
    ("A", ANIMALS, "A"),
    ("B.", ANIMALS, "B"),
    ("(C)", ANIMALS, "C"),
    ("[D]", ANIMALS, "D"),
    ("c", ANIMALS, "C"),
    ("  B  \n", ANIMALS, "B"),
    ("*C*", ANIMALS, "C"),
    ("E", ANIMALS, None),
    ("", ANIMALS, None),
    ("B:", ANIMALS, "B"),
    ("`B`", ANIMALS, "B"),
    # explicit statements
    ("The answer is C.", ANIMALS, "C"),
    ("Answer: D", ANIMALS, "D"),
    ("answer: (b) ...", ANIMALS, None),
    ("The correct answer is (C) a bird.", ANIMALS, "C"),
    ("The correct option is B", ANIMALS, "B"),
    ("The answer would be D, a fish.", ANIMALS, "D"),
    ("Final answer: **A**", ANIMALS, "A"),
    ("The answer is option B.", ANIMALS, "B"),
    ("The answer is: C", ANIMALS, "C"),
    ("I would choose option D.", ANIMALS, "D"),
    ("I'll go with C.", ANIMALS, "C"),
    ("First I thought the answer is A, but looking again the answer is D.", ANIMALS, "D"),
    ("\\boxed{\\text{C}}", ANIMALS, "C"),
    ("So the result is $\\boxed{A}$.", ANIMALS, "A"),
    ("The answer is a dog.", ANIMALS, "B"),  # the article: option text decides
    ("The answer is E.", ANIMALS, None),
    ("Answer:\n\nB", ANIMALS, "B"),
    ("**Answer: B**", ANIMALS, "B"),
    ("The image shows a dog. Therefore the correct option is B: a dog.", ANIMALS, "B"),
    ("Option B: a dog", ANIMALS, "B"),
    ("A: a cat", ANIMALS, "A"),
    # the last words
    ("Looking at the picture, the animal barks, so B.", ANIMALS, "B"),
    ("B. a dog", ANIMALS, "B"),
    ("(B) a dog", ANIMALS, "B"),
    ("C) a bird", ANIMALS, "C"),
    ("It must be D", ANIMALS, "D"),
    ("A is correct.", ANIMALS, "A"),
    ("Clearly A.", ANIMALS, "A"),
    ("A or B", ANIMALS, None),
    ("A and B are both possible.", ANIMALS, None),
    ("Between B and C I cannot decide.", ANIMALS, None),
    (
        "B is my pick because the animal clearly has fur and barks loudly at the mailman every morning",
        ANIMALS,
        None,
    ),  # the letter is far from the end and the text is long
    ("I think so.", MANY, None),  # `I` the pronoun, even where I is an option
    ("I", MANY, "I"),
    ("A cat sits on the mat.", ANIMALS, "A"),  # no letter: the option text `a cat`
    # marked letters anywhere
    ("**B** The animal in the image is barking loudly at the mailman near the door.", ANIMALS, "B"),
    ("(A) is wrong and (B) is wrong too, the image shows something that barks at strangers", ANIMALS, None),
    ("**C.** a bird, because it has feathers and wings and it is sitting on a branch now", ANIMALS, "C"),
    # option text
    ("It is a dog.", ANIMALS, "B"),
    ("a fish, clearly", ANIMALS, "D"),
    ("A cat and a dog", ANIMALS, None),
    ("a cat or a dog", ANIMALS, None),
    ("dog", DOGS, "A"),
    ("The horse.", DOGS, "D"),
    ("Blue", COLOURS, "C"),
    ("bluegreen", COLOURS, None),
    ("blue or green", COLOURS, None),
    ("It is red", COLOURS, "A"),
    ("The colour of the car parked in front of the house next to the tree is clearly blue, isn't it", COLOURS, None),
    ("no idea", ANIMALS, None),
    ("I cannot tell.", ANIMALS, None),
    ("There is a catalogue.", ANIMALS, None),  # `a cat` only inside a word
]


@pytest.mark.parametrize("output,options,expected", GOLDEN)
def test_golden_extraction(output, options, expected):
    assert extract_choice(output, options) == expected


def test_the_golden_table_is_large():
    assert len(GOLDEN) >= 60


def test_answer_region():
    assert answer_region("<think>x</think> B") == " B"
    assert answer_region("<answer> C </answer> D") == " C "
    assert answer_region("<think>x") is None
    assert answer_region("plain") == "plain"


@pytest.mark.parametrize(
    "text",
    [
        "answer" + " " * 1_000_000 + "x",
        "<answer>" * 131072,
        "(A) " * 250_000,
        "A " * 500_000,
        "answer is" * 100_000,
        "**" * 500_000,
        "a cat " * 200_000,
    ],
)
def test_extraction_is_linear(text):
    started = time.perf_counter()
    extract_choice(text, ANIMALS)
    assert time.perf_counter() - started < 2.0
