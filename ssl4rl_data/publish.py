"""Publish a built dataset folder to the Hub as an immutable, tagged version.

The folder's files are committed as they are (its parquet bytes; its card rendered again with the
repo id and tag), then the commit is tagged. A tag is never moved: pushing the same version again
is a no-op, and a tag that already names other content is an error. The local folder is only read.
"""

from dataclasses import dataclass
from pathlib import Path

from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi, get_token, hf_hub_download
from huggingface_hub.errors import HfHubHTTPError

from .card import read_provenance, render_card
from .errors import UserError


@dataclass
class Published:
    repo_id: str
    tag: str
    commit: str
    created: bool  # False when this version was already there


def default_tag(version: str) -> str:
    return f"v{version}"


def push(folder: Path, repo_id: str, tag: str | None = None, private: bool = False) -> Published:
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"{folder} does not exist")
    record = read_provenance(folder)
    tag = tag or default_tag(record["version"])
    token = get_token()
    if not token:
        raise UserError("no Hugging Face token: run `hf auth login` or set HF_TOKEN")
    api = HfApi(token=token)
    try:
        return _push(api, folder, record, repo_id, tag, private)
    except UserError:
        raise
    except Exception as error:
        raise _explain(error, api.endpoint, repo_id) from None


def _push(api: HfApi, folder: Path, record: dict, repo_id: str, tag: str, private: bool) -> Published:
    api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    tags = {ref.name: ref.target_commit for ref in api.list_repo_refs(repo_id, repo_type="dataset").tags}
    if tag in tags:
        published = read_provenance(Path(hf_hub_download(repo_id, "README.md", repo_type="dataset",
                                                          revision=tags[tag])).parent)
        if published.get("version") == record["version"]:
            return Published(repo_id, tag, tags[tag], created=False)
        raise UserError(f"tag {tag} on {repo_id} already holds version {published.get('version')}; "
                        "a published tag is never moved: choose another --tag")
    shards = sorted(folder.glob("data/*.parquet"))
    if not shards:
        raise UserError(f"{folder} has no data/*.parquet to push")
    ours = {f"data/{shard.name}" for shard in shards}
    stale = [path for path in api.list_repo_files(repo_id, repo_type="dataset")
             if path.startswith("data/") and path not in ours]
    operations = [
        CommitOperationAdd("README.md", render_card(record, repo_id=repo_id, tag=tag).encode()),
        *(CommitOperationAdd(f"data/{shard.name}", shard) for shard in shards),
        *(CommitOperationDelete(path) for path in stale),  # main holds one version; tags keep the others
    ]
    commit = api.create_commit(repo_id, operations, repo_type="dataset",
                               commit_message=f"ssl4rl {record['task']} version {record['version']}")
    api.create_tag(repo_id, tag=tag, revision=commit.oid, repo_type="dataset",
                   tag_message=f"ssl4rl-data version {record['version']}")
    return Published(repo_id, tag, commit.oid, created=True)


def _explain(error: Exception, endpoint: str, repo_id: str) -> Exception:
    """A one-line UserError for a refusal or an unreachable endpoint, looking through wrapped causes."""
    cause = error
    while cause is not None:
        if isinstance(cause, HfHubHTTPError):
            status = cause.response.status_code if cause.response is not None else "?"
            return UserError(f"the Hub refused the push to {repo_id} (HTTP {status}): {_first_line(cause)}")
        # Connection errors come from huggingface_hub's HTTP library; recognise them by kind, not by import.
        if isinstance(cause, OSError) or any(w in type(cause).__name__ for w in ("Connect", "Timeout", "Network")):
            return UserError(f"cannot reach the Hub at {endpoint}: {_first_line(cause)}")
        cause = cause.__cause__
    return error


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
