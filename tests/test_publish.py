"""Publishing to a Hub-protocol server with the real clients: tags, immutability, recipes, failures."""

import pytest
import yaml
from conftest import read_rows
from datasets import load_dataset
from huggingface_hub import DatasetCard, HfApi

from ssl4rl_data.card import card_arguments, read_provenance, render_card

REPO = "tester/ssl4rl-jigsaw"


def build(run_cli, out, *args):
    code, err = run_cli("build", "jigsaw", "--out", out, "-q", *args)
    assert code == 0, err
    return err


def tags(repo=REPO):
    return {t.name: t.target_commit for t in HfApi().list_repo_refs(repo, repo_type="dataset").tags}


def versions(folder):
    return yaml.safe_load((folder / "README.md").read_text().split("---")[1])["ssl4rl"]["version"]


def test_card_renders_as_huggingface_hub_does(tmp_path, run_cli):
    build(run_cli, tmp_path / "d", "--limit", "5")
    record = read_provenance(tmp_path / "d")
    for repo_id, tag in ((None, None), (REPO, "v1")):
        card_data, template, values = card_arguments(record, repo_id, tag)
        expected = str(DatasetCard.from_template(card_data, template_str=template, **values))
        assert render_card(record, repo_id, tag) == expected


def test_push_tags_and_loads_by_tag(tmp_path, run_cli, hub):
    build(run_cli, tmp_path / "d")
    code, err = run_cli("push", tmp_path / "d", REPO)
    assert code == 0, err
    tag = f"v{versions(tmp_path / 'd')}"
    assert f"pushed: {REPO} tag {tag} commit " in err
    assert tag in tags()
    dataset = load_dataset(REPO, revision=tag, split="train")
    assert sorted(dataset["answer"]) == sorted(r["answer"] for r in read_rows(tmp_path / "d"))
    readme = hub.state.repos[REPO].commits[tags()[tag]]["README.md"].decode()
    assert f'load_dataset("{REPO}", revision="{tag}"' in readme and "accelerate launch train/grpo.py" in readme


def test_second_version_leaves_the_first_intact(tmp_path, run_cli, hub):
    build(run_cli, tmp_path / "v1", "--seed", "0")
    build(run_cli, tmp_path / "v2", "--seed", "1")
    assert run_cli("push", tmp_path / "v1", REPO)[0] == 0
    assert run_cli("push", tmp_path / "v2", REPO)[0] == 0
    first, second = f"v{versions(tmp_path / 'v1')}", f"v{versions(tmp_path / 'v2')}"
    assert first != second and set(tags()) == {first, second}
    old = load_dataset(REPO, revision=first, split="train")
    new = load_dataset(REPO, revision=second, split="train")
    assert list(old["answer"]) == [r["answer"] for r in read_rows(tmp_path / "v1")]
    assert list(new["answer"]) == [r["answer"] for r in read_rows(tmp_path / "v2")]
    assert list(old["answer"]) != list(new["answer"])


def test_pushing_the_same_content_twice_is_a_no_op(tmp_path, run_cli, hub):
    build(run_cli, tmp_path / "a")
    build(run_cli, tmp_path / "b")  # the same command elsewhere: the same version
    assert run_cli("push", tmp_path / "a", REPO)[0] == 0
    commits_before = len(hub.state.repos[REPO].commits)
    code, err = run_cli("push", tmp_path / "b", REPO)
    assert code == 0 and "already published, nothing pushed" in err
    assert len(hub.state.repos[REPO].commits) == commits_before and len(tags()) == 1


def test_a_tag_holding_other_content_is_never_moved(tmp_path, run_cli, hub):
    build(run_cli, tmp_path / "a", "--seed", "0")
    build(run_cli, tmp_path / "b", "--seed", "1")
    assert run_cli("push", tmp_path / "a", REPO, "--tag", "v1")[0] == 0
    target = tags()["v1"]
    code, err = run_cli("push", tmp_path / "b", REPO, "--tag", "v1")
    assert code != 0 and "a published tag is never moved" in err and len(err.strip().splitlines()) == 1
    assert tags()["v1"] == target
    assert read_rows(tmp_path / "b")  # the local dataset is intact


@pytest.mark.parametrize("card", [None, b"---\nlicense: mit\n---\n# someone's notes\n", b"---\n: [\n---\n"])
def test_a_tag_on_a_commit_that_is_no_version_is_never_moved(tmp_path, run_cli, hub, card):
    """A tag someone set by hand on a commit without a card, with another card, or with a broken one."""
    build(run_cli, tmp_path / "d")
    HfApi().create_repo(REPO, repo_type="dataset")
    repo = hub.state.repos[REPO]
    first = repo.branches["main"]
    if card is not None:
        repo.commit({**repo.commits[first], "README.md": card}, first, "someone's card")
    repo.tags["v1"] = repo.branches["main"]
    code, err = run_cli("push", tmp_path / "d", REPO, "--tag", "v1")
    assert code != 0 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert "tag v1 on tester/ssl4rl-jigsaw already names a commit that is not an ssl4rl-data version" in err
    assert "a published tag is never moved" in err and "rebuild" not in err
    assert repo.tags == {"v1": repo.branches["main"]} and "data" not in str(repo.commits[repo.branches["main"]])


def test_private_never_pushes_into_a_public_repo(tmp_path, run_cli, hub):
    """--private only sets the visibility of a repo the push creates: an existing public one is refused."""
    build(run_cli, tmp_path / "d")
    HfApi().create_repo(REPO, repo_type="dataset")  # public
    commits = len(hub.state.repos[REPO].commits)
    code, err = run_cli("push", tmp_path / "d", REPO, "--private")
    assert code != 0 and len(err.strip().splitlines()) == 1 and "exists and is public" in err, err
    assert len(hub.state.repos[REPO].commits) == commits and not tags()
    private = "tester/ssl4rl-private"
    assert run_cli("push", tmp_path / "d", private, "--private")[0] == 0
    assert hub.state.repos[private].private and tags(private)
    code, err = run_cli("push", tmp_path / "d", private, "--private")
    assert code == 0 and "already published" in err


def test_build_with_push_to_hub_and_a_recipe_with_overrides(tmp_path, run_cli, hub):
    code, err = run_cli(
        "build",
        "--recipe",
        "recipes/data/sample_jigsaw.yaml",
        "--seed",
        "7",
        "--out",
        tmp_path / "d",
        "-q",
        "--push-to-hub",
        REPO,
        "--tag",
        "demo",
    )
    assert code == 0, err
    assert "demo" in tags()
    record = yaml.safe_load((tmp_path / "d" / "README.md").read_text().split("---")[1])["ssl4rl"]
    assert record["seed"] == 7 and record["parameters"] == {"grid": "2"}
    assert record["overrides"] == ["seed=7 (recipe: 0)"]
    assert len(load_dataset(REPO, revision="demo", split="train")) == 12


@pytest.mark.parametrize("failure", ["server-down", "refused", "no-token"])
def test_failed_push_fails_cleanly(tmp_path, run_cli, hub, monkeypatch, failure):
    build(run_cli, tmp_path / "d")
    before = sorted(p.name for p in (tmp_path / "d").rglob("*"))
    if failure == "server-down":
        hub.stop()
        expected = "cannot reach the Hub"
    elif failure == "refused":
        hub.state.refuse_writes = True
        expected = "the Hub refused the push"
    else:
        monkeypatch.delenv("HF_TOKEN")
        monkeypatch.setenv("HF_TOKEN_PATH", str(tmp_path / "no-token"))
        import huggingface_hub.constants as constants

        monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))
        expected = "no Hugging Face token"
    code, err = run_cli("push", tmp_path / "d", REPO)
    assert code != 0 and expected in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert sorted(p.name for p in (tmp_path / "d").rglob("*")) == before


@pytest.mark.parametrize(
    "recipe", sorted(__import__("pathlib").Path("recipes/data").glob("*.yaml")), ids=lambda p: p.stem
)
def test_every_paper_recipe_is_valid(recipe, run_cli, tmp_path):
    spec = yaml.safe_load(recipe.read_text())
    # Build each recipe's task and parameters on the bundled photos (the benchmark files are not here).
    code, err = run_cli(
        "build", "--recipe", recipe, "--source", "sample", "--limit", "3", "--out", tmp_path / "d", "-q"
    )
    assert code == 0, err
    record = yaml.safe_load((tmp_path / "d" / "README.md").read_text().split("---")[1])["ssl4rl"]
    assert record["task"] == spec["task"]
    assert all(record["parameters"][k] == spec[k] for k in record["parameters"] if k in spec)


def test_recipe_mistakes_get_one_line(tmp_path, run_cli):
    (tmp_path / "bad.yaml").write_text("task: jigsaw\ngird: 3\n")
    code, err = run_cli("build", "--recipe", tmp_path / "bad.yaml", "--out", tmp_path / "d")
    assert code != 0 and "unknown option 'gird'" in err and len(err.strip().splitlines()) == 1
    code, err = run_cli("build", "rotation", "--recipe", "recipes/data/sample_jigsaw.yaml", "--out", tmp_path / "d")
    assert code != 0 and "is for another task" in err
    (tmp_path / "typo.yaml").write_text("task: rotation\nseed: zero\n")
    code, err = run_cli("build", "--recipe", tmp_path / "typo.yaml", "--out", tmp_path / "d")
    assert code != 0 and "seed" in err and "not a valid integer" in err and len(err.strip().splitlines()) == 1


def test_the_hub_server_starts_by_hand_and_names_the_client_settings():
    import os
    import signal
    import subprocess
    import sys

    server = subprocess.Popen([sys.executable, "-m", "ssl4rl_data.hub_server"], stdout=subprocess.PIPE, text=True)
    try:
        first, settings = server.stdout.readline(), server.stdout.readline()
        url = first.split()[2].rstrip(";")
        assert f"HF_ENDPOINT={url}" in settings and "HF_HUB_DISABLE_XET=1" in settings
        env = {**os.environ, **dict(pair.split("=", 1) for pair in settings.split())}
        probe = (
            "from huggingface_hub import HfApi; api = HfApi(); api.create_repo('me/d', repo_type='dataset'); "
            "print(api.dataset_info('me/d').id)"
        )
        result = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=60)
        assert result.stdout.strip() == "me/d", result.stderr[-2000:]
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=10)


def test_build_help_names_the_recipe_option(run_cli, capsys):
    from ssl4rl_data.cli import main

    assert main(["build", "--help"]) == 0
    assert "--recipe FILE" in capsys.readouterr().out
