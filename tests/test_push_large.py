"""Pushes of hundreds of files: several commits, interrupted and resumed, tagged only once whole (issue 16).

Real parts throughout: the CLI (in a fresh process where it is interrupted), huggingface_hub's client and
the local Hub server, whose `fail_after` switch refuses one commit or tag past a count (HTTP 503).
"""

import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from ssl4rl_data.card import read_provenance, render_card
from ssl4rl_data.cli import main
from ssl4rl_data.hub_handler import Handler
from ssl4rl_data.records import file_record

REPO = "tester/ssl4rl-large"
SHARDS = 250  # with the card, 251 files: commits of 100, 100 and 51


@pytest.fixture(scope="module")
def many_shards(tmp_path_factory):
    """A dataset folder of 250 one-row shards with a valid manifest. A build makes at most 64 shards below
    64,000 rows, so a small build's rows are written out one per shard and its card's manifest rewritten."""
    out = tmp_path_factory.mktemp("large") / "d"
    assert main(["build", "rotation", "--limit", "10", "--max-side", "64", "--out", str(out), "-q"]) == 0
    (built,) = out.glob("data/*.parquet")
    table = pq.read_table(built)
    built.unlink()
    record, files = read_provenance(out), {}
    for index in range(SHARDS):
        name = f"data/train-{index:05d}-of-{SHARDS:05d}.parquet"
        row = table.slice(index % table.num_rows, 1)  # the index in the schema's metadata: no two files alike
        pq.write_table(row.replace_schema_metadata({**row.schema.metadata, b"shard": b"%d" % index}), out / name)
        files[name] = file_record(out / name)
    (out / "README.md").write_text(render_card({**record, "files": files}), encoding="utf-8")
    return out


def cli_process(*args):
    """`ssl4rl-data ARGS` in a fresh process; returns (exit code, stderr)."""
    command = [str(Path(sys.executable).parent / "ssl4rl-data"), *map(str, args)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    return done.returncode, done.stderr


def one_line(code, err):
    assert code != 0 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err


@pytest.fixture
def failing_hub(hub):
    yield hub
    hub.state.fail_after = None


def count_uploads(monkeypatch):
    """The number of LFS objects the server receives from now on."""
    received = []
    upload = Handler.lfs_upload

    def counted(self, oid):
        received.append(oid)
        return upload(self, oid)

    monkeypatch.setattr(Handler, "lfs_upload", counted)
    return received


def assert_tag_holds_the_folder(hub, folder, tag):
    files = hub.state.repos[REPO].commits[hub.state.repos[REPO].tags[tag]]
    local = {path.relative_to(folder).as_posix(): path.read_bytes() for path in folder.glob("data/*")}
    assert {path: data for path, data in files.items() if path.startswith("data/")} == local
    assert files["README.md"].decode() == render_card(read_provenance(folder), repo_id=REPO, tag=tag)


def test_an_interrupted_large_push_resumes_and_is_tagged_once_whole(many_shards, failing_hub, run_cli, monkeypatch):
    hub, tag = failing_hub, f"v{read_provenance(many_shards)['version']}"
    hub.state.fail_after = 1  # the first commit lands, the second is refused
    code, err = cli_process("push", many_shards, REPO)
    one_line(code, err)
    assert "HTTP 503" in err and "run the same command again to resume" in err
    repo = hub.state.repos[REPO]
    main_files = repo.commits[repo.branches["main"]]
    assert not repo.tags and len(repo.commits) == 2  # the repo's first commit and part 1 of 3
    assert sum(path.startswith("data/") for path in main_files) == 100 and "README.md" not in main_files

    assert hub.state.fail_after is None  # the switch refused once and turned off
    uploads = count_uploads(monkeypatch)
    code, err = run_cli("push", many_shards, REPO)
    assert code == 0 and f"pushed: {REPO} tag {tag}" in err, err
    assert len(repo.commits) == 4  # the 150 files and the card left: two commits
    shards = {entry["sha256"] for entry in read_provenance(many_shards)["files"].values()}
    assert len(shards & set(uploads)) == 50  # part 2's files reached the Hub before its commit was refused
    assert repo.tags[tag] == repo.branches["main"]
    assert_tag_holds_the_folder(hub, many_shards, tag)

    code, err = run_cli("push", many_shards, REPO)
    assert code == 0 and "already published, nothing pushed" in err
    assert len(repo.commits) == 4 and list(repo.tags) == [tag] and len(shards & set(uploads)) == 50


def test_a_push_killed_mid_commit_resumes(many_shards, hub, run_cli, monkeypatch):
    """SIGKILL while part 2's commit is on the wire: the process leaves nothing behind but what the Hub holds."""
    import signal
    import threading

    arrived, killed, commit = threading.Event(), threading.Event(), Handler.commit

    def held_at_part_2(self, repo, rev):
        files = self.state.repos[repo].commits[self.state.repos[repo].branches["main"]]
        if sum(path.startswith("data/") for path in files) < 100:
            return commit(self, repo, rev)
        arrived.set()
        killed.wait(60)  # the client is gone: the request is dropped unanswered

    monkeypatch.setattr(Handler, "commit", held_at_part_2)
    command = [str(Path(sys.executable).parent / "ssl4rl-data"), "push", str(many_shards), REPO]
    process = subprocess.Popen(command, stderr=subprocess.DEVNULL)
    try:
        assert arrived.wait(60)
        process.send_signal(signal.SIGKILL)
        assert process.wait(10) == -signal.SIGKILL
    finally:
        process.kill()
        killed.set()
    monkeypatch.setattr(Handler, "commit", commit)
    repo, tag = hub.state.repos[REPO], f"v{read_provenance(many_shards)['version']}"
    assert len(repo.commits) == 2 and not repo.tags
    code, err = run_cli("push", many_shards, REPO)
    assert code == 0, err
    assert len(repo.commits) == 4 and repo.tags[tag] == repo.branches["main"]
    assert_tag_holds_the_folder(hub, many_shards, tag)


def test_a_push_cut_before_its_tag_tags_without_a_commit_when_run_again(many_shards, failing_hub, run_cli):
    hub, tag = failing_hub, f"v{read_provenance(many_shards)['version']}"
    hub.state.fail_after = 3  # all three commits land, the tag is refused
    code, err = run_cli("push", many_shards, REPO)
    one_line(code, err)
    repo = hub.state.repos[REPO]
    assert not repo.tags and len(repo.commits) == 4
    code, err = run_cli("push", many_shards, REPO)
    assert code == 0, err
    assert len(repo.commits) == 4 and repo.tags[tag] == repo.branches["main"]
    assert_tag_holds_the_folder(hub, many_shards, tag)


def test_a_commit_missing_a_file_is_not_tagged(many_shards, hub, run_cli, monkeypatch):
    """Another writer deletes a shard from main between the push's commits: the check before tagging refuses."""
    commit, lost = Handler.commit, "data/train-00007-of-00250.parquet"

    def and_a_deletion(self, repo, rev):
        commit(self, repo, rev)
        r = self.state.repos[repo]
        files = dict(r.commits[r.branches["main"]])
        if sum(path.startswith("data/") for path in files) == 100 and lost in files:  # after part 1 of 3
            del files[lost]
            r.commit(files, r.branches["main"], "someone else's commit")

    monkeypatch.setattr(Handler, "commit", and_a_deletion)
    code, err = run_cli("push", many_shards, REPO)
    one_line(code, err)
    assert f"lacks {lost}" in err and "nothing was tagged" in err
    assert not hub.state.repos[REPO].tags
    monkeypatch.setattr(Handler, "commit", commit)
    code, err = run_cli("push", many_shards, REPO)
    assert code == 0, err
    assert_tag_holds_the_folder(hub, many_shards, f"v{read_provenance(many_shards)['version']}")


def test_a_file_changed_during_the_push_is_not_tagged(many_shards, tmp_path, hub, run_cli, monkeypatch):
    """The folder passes its check, then a shard changes before it is sent: what landed is not tagged."""
    import shutil

    folder, preupload = tmp_path / "d", Handler.preupload
    shutil.copytree(many_shards, folder)
    changed, written = folder / "data/train-00150-of-00250.parquet", []

    def while_a_writer_changes_a_shard(self, repo, rev):
        if not written:  # once, while part 1 of 3 goes up; the shard is in part 2
            data = bytearray(changed.read_bytes())
            data[-10] ^= 1  # the same size, other bytes
            changed.write_bytes(data)
            written.append(changed)
        return preupload(self, repo, rev)

    monkeypatch.setattr(Handler, "preupload", while_a_writer_changes_a_shard)
    code, err = run_cli("push", folder, REPO)
    one_line(code, err)
    assert f"lacks data/{changed.name}" in err and not hub.state.repos[REPO].tags


def test_a_push_of_at_most_100_files_is_one_commit(tmp_path, hub, run_cli):
    assert run_cli("build", "rotation", "--limit", "6", "--max-side", "64", "--out", tmp_path / "d", "-q")[0] == 0
    assert run_cli("push", tmp_path / "d", REPO)[0] == 0
    assert len(hub.state.repos[REPO].commits) == 2  # the repo's first commit and the push's
