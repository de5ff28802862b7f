"""Scores from prediction records, each by its benchmark's rule (train/evals/): circular or plain
accuracy for multiple choice, the SSL rewards for built datasets."""

from collections import defaultdict

from ssl4rl_data.rewards import score


def record_name(record: dict) -> str:
    """What a record's scores are reported under: its `name` (ssl:FOLDER, ...), else its benchmark."""
    return record.get("name") or record["benchmark"]


def score_predictions(records: list[dict]) -> dict:
    """Scores per benchmark name from prediction records (see `evaluate.py --help` for their format).
    Every record gets `extracted`; rows without a gold answer (MMBench's test split) are not scored."""
    from ssl4rl_train.evals import benchmarks

    kinds, by_name = benchmarks(), defaultdict(list)
    for record in records:
        benchmark = kinds[record["benchmark"]]
        record["extracted"] = benchmark.extract(record["output"], record)
        if record["answer"]:
            by_name[record_name(record)].append(record)
    return {name: kinds[rows[0]["benchmark"]].score(rows) for name, rows in by_name.items()}


def headline(scores: dict) -> float:
    """The number a benchmark is reported by: circular accuracy for MMBench, accuracy otherwise."""
    return scores.get("circular_accuracy", scores["accuracy"])


def score_choice(rows: list[dict], circular: bool) -> dict:
    """Row accuracy; with `circular`, also accuracy over groups (a question counts only if all its
    option-rotated copies are right), and the per-category breakdown by questions."""
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


def score_ssl(rows: list[dict]) -> dict:
    """Mean reward by the training reward functions, overall and per task."""
    tasks = defaultdict(list)
    for row in rows:
        tasks[row["task"]].append(score(row["output"], row["answer"], row["task"]))
    rewards = [r for values in tasks.values() for r in values]
    return {
        "accuracy": sum(rewards) / len(rewards),
        "rows": len(rows),
        "unmatched": sum(r["extracted"] is None for r in rows),
        "categories": {t: {"accuracy": sum(v) / len(v), "questions": len(v)} for t, v in sorted(tasks.items())},
    }
