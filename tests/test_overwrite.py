"""What `--overwrite` may delete (an empty folder, or a dataset folder as ssl4rl-data wrote it, nothing more), and
an `--out` given as `.` or `..`."""

import pytest
from conftest import read_rows

BUILD = ("build", "rotation", "--limit", "2", "--max-side", "64", "-q")


@pytest.fixture
def dataset(tmp_path, run_cli):
    code, err = run_cli(*BUILD, "--out", tmp_path / "d")
    assert code == 0, err
    return tmp_path / "d"


@pytest.mark.parametrize(
    "extra, named",
    [
        (".git/HEAD", ".git"),
        (".gitattributes", ".gitattributes"),
        ("thesis.tex", "thesis.tex"),
        ("runs/checkpoint-1/model.safetensors", "runs"),
        ("data/old/x.parquet", "data/old"),
    ],
)
def test_a_dataset_folder_holding_other_files_is_not_replaced(dataset, run_cli, extra, named):
    """A git clone of the published repo, or a dataset folder someone keeps notes or checkpoints in: its card has
    the ssl4rl block, but --overwrite would delete files the build never wrote."""
    (dataset / extra).parent.mkdir(parents=True, exist_ok=True)
    (dataset / extra).write_text("mine")
    before = sorted(str(p.relative_to(dataset)) for p in dataset.rglob("*"))
    code, err = run_cli(*BUILD, "--limit", "3", "--out", dataset, "--overwrite")
    assert code != 0 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert f"also holds {named}, which its build did not write" in err
    assert (dataset / extra).read_text() == "mine"
    assert sorted(str(p.relative_to(dataset)) for p in dataset.rglob("*")) == before
    assert not list(dataset.parent.glob(".d.*"))  # refused before building: no staging left beside it


def test_an_earlier_dataset_is_replaced_even_with_a_killed_audits_card(dataset, run_cli):
    (dataset / ".README.md.audit-12345").write_text("half a card")  # left by an audit killed mid-write
    code, err = run_cli(*BUILD, "--limit", "3", "--out", dataset, "--overwrite")
    assert code == 0, err
    assert len(read_rows(dataset)) == 3 and sorted(p.name for p in dataset.iterdir()) == ["README.md", "data"]


def test_a_folder_of_hidden_files_or_a_link_is_not_replaced(tmp_path, dataset, run_cli):
    hidden = tmp_path / "hidden"
    hidden.mkdir()
    (hidden / ".env").write_text("SECRET=1")
    code, err = run_cli(*BUILD, "--out", hidden, "--overwrite")
    assert code != 0 and "not a dataset written by ssl4rl-data" in err and (hidden / ".env").exists()
    link = tmp_path / "link"
    link.symlink_to(dataset)
    code, err = run_cli(*BUILD, "--limit", "3", "--out", link, "--overwrite")
    assert code != 0 and "exists and is not a folder" in err and len(err.strip().splitlines()) == 1
    assert len(read_rows(dataset)) == 2 and link.is_symlink()


@pytest.mark.parametrize("out", [".", "..", "data/.."])
def test_an_out_of_dot_or_dot_dot_is_refused_in_one_line(tmp_path, dataset, run_cli, monkeypatch, out):
    """`--out .` from inside a folder: its lock file (`..lock`) and staging folder would land inside it, and the
    folder was refused as holding someone's files; it is refused for what it is, nothing written anywhere."""
    monkeypatch.chdir(dataset)
    before = sorted(p for p in tmp_path.rglob("*"))
    code, err = run_cli(*BUILD, "--out", out, "--overwrite")
    assert code != 0 and len(err.strip().splitlines()) == 1, err
    assert f"--out {out} does not end in a folder's name" in err
    assert sorted(p for p in tmp_path.rglob("*")) == before and len(read_rows(dataset)) == 2
