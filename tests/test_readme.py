"""The README's blocks marked as run by this test run as written, in order, in a copy of the repository."""

import re
import subprocess
from pathlib import Path

import torch
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parents[1]
MARK = "<!-- tests/test_readme.py runs this block"


def marked_blocks(text: str) -> list[str]:
    """The bash blocks that follow the marker comment, in README order."""
    return re.findall(re.escape(MARK) + r"[^\n]*\n```bash\n(.*?)```", text, flags=re.S)


def test_marked_readme_blocks_run_in_order_in_a_fresh_copy(tmp_path):
    blocks = marked_blocks((ROOT / "README.md").read_text())
    assert blocks, "no README block is marked to be run"
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout.split(b"\0")
    copy = tmp_path / "repo"
    for name in filter(None, tracked):
        source = ROOT / name.decode()
        if source.is_file():
            (copy / name.decode()).parent.mkdir(parents=True, exist_ok=True)
            (copy / name.decode()).write_bytes(source.read_bytes())
    (copy / ".venv").symlink_to(ROOT / ".venv")  # what the README's first command makes
    for number, block in enumerate(blocks, 1):
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", block], cwd=copy, capture_output=True, text=True, timeout=900
        )
        assert result.returncode == 0, f"README block {number} failed:\n{block}\n{result.stderr[-3000:]}"
    assert (copy / "sheet.png").stat().st_size > 0
    # As the README says: the two photos `sample` also holds are dropped as duplicates and counted.
    assert "duplicates: 2" in (copy / "out" / "jigsaw-mix" / "README.md").read_text()
    # The smoke run from the warm start moves the weights, and the evaluation scores its rows.
    warm, trained = (load_file(str(copy / "out" / name / "model.safetensors")) for name in ("warm", "run"))
    assert any(not torch.equal(warm[k], trained[k]) for k in warm)
    assert (copy / "eval" / "run" / "scores.json").is_file()
