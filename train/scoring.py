"""Scores from prediction records: circular accuracy for MMBench, accuracy elsewhere, the SSL rewards."""

from collections import defaultdict

from eval_data import extract_choice

from ssl4rl_data.rewards import extract_answer, score


def score_predictions(records: list[dict]) -> dict:
    """Scores per benchmark from prediction records (see `evaluate.py --help` for their format)."""
    by_benchmark = defaultdict(list)
    for record in records:
        by_benchmark[record["benchmark"]].append(record)
    return {name: _score_ssl(rows) if name == "ssl" else _score_choice(rows, circular=name == "mmbench")
            for name, rows in by_benchmark.items()}


def headline(name: str, scores: dict) -> float:
    """The number a benchmark is reported by: circular accuracy for MMBench, accuracy otherwise."""
    return scores["circular_accuracy"] if name == "mmbench" else scores["accuracy"]


def _score_choice(rows: list[dict], circular: bool) -> dict:
    """Row accuracy; with `circular`, also accuracy over groups (a question counts only if all its
    option-rotated copies are right), and the per-category breakdown by questions."""
    for row in rows:
        row["extracted"] = extract_choice(row["output"], row["options"])
    groups = defaultdict(list)
    for row in rows:
        groups[row["group"]].append(row)
    correct = {g: all(r["extracted"] == r["answer"] for r in members) for g, members in groups.items()}
    categories = defaultdict(list)
    for group, members in groups.items():
        categories[members[0]["category"] or "all"].append(correct[group])
    result = {"accuracy": sum(r["extracted"] == r["answer"] for r in rows) / len(rows)}
    if circular:
        result["circular_accuracy"] = sum(correct.values()) / len(correct)
    return {
        **result,
        "questions": len(correct),
        "rows": len(rows),
        "unmatched": sum(r["extracted"] is None for r in rows),
        "categories": {c: {"accuracy": sum(v) / len(v), "questions": len(v)} for c, v in sorted(categories.items())},
    }


def _score_ssl(rows: list[dict]) -> dict:
    """Mean reward by the training reward functions, overall and per task."""
    tasks = defaultdict(list)
    for row in rows:
        row["extracted"] = extract_answer(row["output"])
        tasks[row["task"]].append(score(row["output"], row["answer"], row["task"]))
    rewards = [r for values in tasks.values() for r in values]
    return {
        "accuracy": sum(rewards) / len(rewards),
        "rows": len(rows),
        "unmatched": sum(r["extracted"] is None for r in rows),
        "categories": {t: {"accuracy": sum(v) / len(v), "questions": len(v)} for t, v in sorted(tasks.items())},
    }
