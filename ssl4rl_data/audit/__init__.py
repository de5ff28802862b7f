"""`ssl4rl-data audit`: measure a built dataset for wrong labels, answer imbalance, blind shortcuts and
contamination, and record the result in its card (so it is pushed with it).

One module per concern: checks.py (the per-task checker registry) and task_checks.py (the built-in
tasks' checkers), stats.py, blind.py, contamination.py, run.py (one pass over the rows, then the
dataset-wide tests), report.py (audit.json, audit.md, plots, the card's summary).
"""

import os
from pathlib import Path

from .checks import Checker, Row, register_checker  # noqa: F401  (a task file registers its checker with these)


def __getattr__(name):
    """`audit` on first use: its statistics load scipy and scikit-learn (0.5 s), which a build, scoring rows
    with the checkers alone, does without."""
    if name == "audit":
        from .run import audit

        return audit
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def default_report_dir(folder: Path) -> Path:
    """Next to the dataset, never inside it: `push` refuses files its build did not write."""
    folder = Path(folder).resolve()
    return folder.parent / f"{folder.name}-audit"


def record_in_card(folder: Path, result: dict) -> None:
    """Write the audit's summary into the card's `ssl4rl.audit` block and its Audit section."""
    from ..card import read_provenance, render_card
    from .report import card_summary

    record = read_provenance(folder)
    record["audit"] = card_summary(result)
    card = Path(folder) / "README.md"
    staged = card.with_name(f".README.md.audit-{os.getpid()}")
    try:
        staged.write_text(render_card(record), encoding="utf-8")
        os.replace(staged, card)  # a reader sees the old card or the new one, never half of one
    finally:
        staged.unlink(missing_ok=True)  # `push` refuses a folder holding files its build did not write


def audit_and_report(folder: Path, against=(), out: Path | None = None, num_proc: int = 1) -> tuple[dict, list[Path]]:
    from .report import write_reports
    from .run import audit

    result = audit(folder, list(against), num_proc=num_proc)
    written = write_reports(result, out or default_report_dir(folder))
    record_in_card(folder, result)
    return result, written
