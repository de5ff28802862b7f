"""Rule-based extraction of the chosen option letter, in the spirit of VLMEvalKit's `can_infer`.

Order (the first rule that decides wins; every step is linear in the output's length):
  1. Where to look: the text inside the first `<answer>...</answer>` (or after an `<answer>` never
     closed); without an answer tag, only what follows the last `</think>`; a `<think>` never closed
     is reasoning cut off, so nothing is found.
  2. A bare letter: the text is one option letter once markup (`*`, brackets, `.`, `:`) is stripped,
     in either case (`b`, `(B)`, `**B**`).
  3. An explicit statement: `answer is X`, `Answer: X`, `**Answer:** X`, `correct option is (X)`,
     `\\boxed{X}`, `I choose X`; the last one in the text counts.
  4. The last words: the one option letter (an uppercase single-letter word) among the last
     LAST_WORDS words; two different letters there decide nothing. `A` and `I` followed by a
     lowercase word (`A dog`, `I think`) are the article and the pronoun, not letters, unless that
     word is a verb such as `is`.
  5. Marked letters anywhere: `(X)`, `[X]`, `**X**`, `**X.`; exactly one distinct letter.
  6. Option text, only when the output is at most twice as long as all options together and no
     option letter stands anywhere in it as a word: the options found as whole words (case
     insensitive), less those found only inside a longer option found (`dog` in `black dog`);
     exactly one must remain.
Anything else is None (counted as unmatched, scored wrong).
"""

import re

LAST_WORDS = 8
ANSWER_OPEN, ANSWER_CLOSE, THINK_OPEN, THINK_CLOSE = "<answer>", "</answer>", "<think>", "</think>"
_LETTER = r"([A-Z])(?![A-Za-z0-9])"
# Single spaces only (whitespace is collapsed first) and bounded repeats: no backtracking blow-up.
_EXPLICIT = re.compile(
    r"(?i:answer|option|choice)(?:(?i: is| would be| should be| must be| will be| seems to be)(?: ?:)?| ?:)"
    r"[ *(\[]{0,4}(?:(?i:option|choice) [(\[]?)?"
    + _LETTER
    + r"|\\boxed\{ ?(?:\\text\{)?([A-Z])\b"
    + r"|(?i:\bchoose|\bpick|\bselect|\bgo with) (?:(?i:option|choice) )?[(\[*]{0,2}"
    + _LETTER
)
_MARKED = re.compile(r"\(([A-Z])\)|\[([A-Z])\]|\*\*\(?([A-Z])(?:\*\*|[.:)])")
_WORD = re.compile(r"[A-Za-z0-9]+")
_WHITESPACE = re.compile(r"\s+")
_MARKUP = " \t\n*()[]{}.:,;!#`'\""
VERBS = frozenset(
    "is was seems appears would could should must will matches fits describes represents shows "
    "correctly best and or".split()
)


def answer_region(output: str) -> str | None:
    """Where the answer is looked for: the answer tag's content, else what follows the reasoning."""
    start = output.find(ANSWER_OPEN)
    if start >= 0:
        start += len(ANSWER_OPEN)
        end = output.find(ANSWER_CLOSE, start)
        return output[start:end] if end >= 0 else output[start:]
    close = output.rfind(THINK_CLOSE)
    if close >= 0:
        return output[close + len(THINK_CLOSE) :]
    if THINK_OPEN in output:
        return None  # the reasoning never ended
    return output


def extract_choice(output: str, options: dict[str, str]) -> str | None:
    """The chosen option letter (a key of `options`), or None; see the module's rules.

    >>> options = {"A": "a cat", "B": "a dog", "C": "a bird"}
    >>> [extract_choice(o, options) for o in ["<think>hm</think> <answer>B</answer>", "(C)", "B. a dog",
    ...  "The answer is C.", "It is a dog.", "A cat and a dog", "D", "no idea", "I choose B because A is a cat."]]
    ['B', 'C', 'B', 'C', 'B', None, None, None, 'B']
    """
    region = answer_region(output)
    if region is None or not options:
        return None
    text = _WHITESPACE.sub(" ", region).strip()
    bare = text.strip(_MARKUP).upper()
    if len(bare) == 1 and bare in options:
        return bare
    explicit = [letter for match in _EXPLICIT.finditer(text) for letter in match.groups() if letter in options]
    if explicit:
        return explicit[-1]
    words = _last_words(text, LAST_WORDS)
    last = {
        m.group()
        for i, m in enumerate(words)
        if _is_letter(m, words[i + 1] if i + 1 < len(words) else None, text, options)
    }
    if len(last) == 1:
        return last.pop()
    if last:
        return None
    marked = {letter for match in _MARKED.finditer(text) for letter in match.groups() if letter in options}
    if len(marked) == 1:
        return marked.pop()
    if marked or _any_letter(text, options):
        return None
    return _by_option_text(text, options)


def _last_words(text: str, count: int) -> list:
    """Match objects of the last `count` words (fewer if the text has fewer), reading only the text's
    end: the window doubles until it holds enough words, so the work stays linear."""
    window = 256
    while True:
        start = max(0, len(text) - window)
        found = list(_WORD.finditer(text, start))
        if start > 0 and found and found[0].start() == start:
            found = found[1:]  # the window may cut a word
        if len(found) >= count or start == 0:
            return found[-count:]
        window *= 4


def _any_letter(text: str, options: dict) -> bool:
    """Whether an option letter stands anywhere in `text` as a word (not the article or pronoun)."""
    for match in _WORD.finditer(text):
        if len(match.group()) == 1:
            following = _WORD.match(text, match.end() + 1) if text[match.end() : match.end() + 1] == " " else None
            if _is_letter(match, following, text, options):
                return True
    return False


def _is_letter(word, following, text: str, options: dict) -> bool:
    letter = word.group()
    if len(letter) != 1 or letter not in options:
        return False
    if (
        letter in "AI"
        and following is not None
        and following.start() == word.end() + 1
        and text[word.end()] == " "
        and following.group().islower()
        and following.group() not in VERBS
    ):
        return False  # the article `A dog`, the pronoun `I think`
    return True


def _by_option_text(text: str, options: dict[str, str]) -> str | None:
    if len(text) > 2 * sum(len(v) for v in options.values()):
        return None  # long outputs mention options while reasoning: no text matching
    lowered = text.lower()
    spans = {}
    for letter, option in options.items():
        needle = option.strip().lower()
        if needle:
            pattern = re.compile(r"(?<!\w)" + re.escape(needle) + r"(?!\w)")
            spans[letter] = [m.span() for m in pattern.finditer(lowered)]
    found = {letter for letter, where in spans.items() if where}
    inside = {
        letter
        for letter in found
        if all(
            any(s <= a and b <= e and (s, e) != (a, b) for other in found - {letter} for s, e in spans[other])
            for a, b in spans[letter]
        )
    }
    remaining = found - inside
    return remaining.pop() if len(remaining) == 1 else None
