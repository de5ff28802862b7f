"""The README's set-up commands are the ones CI runs."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ci_runs_the_readme_test_command():
    ci_command = [line for line in (ROOT / ".ci/run").read_text().splitlines() if line.startswith("python3 -m venv")]
    readme = (ROOT / "README.md").read_text().splitlines()
    assert len(ci_command) == 1 and ci_command[0] in readme
    assert readme.index(ci_command[0]) < 15  # among the README's opening commands


def test_readme_opens_with_the_build_command():
    opening = (ROOT / "README.md").read_text().splitlines()[:15]
    assert any("ssl4rl-data build" in line and line.startswith("python3 -m venv") for line in opening)
