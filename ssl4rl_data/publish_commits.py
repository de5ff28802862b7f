"""Sending a checked folder to a Hub repo's `main` in commits of at most 100 files, and checking what landed.

The Hub recommends commits of under 100 files, so a push that changes more goes up in several commits,
the card last. The Hub's own tree is the resume state: a file whose remote size and SHA-256 (its LFS
oid) already equal the manifest's is not sent again, and data the Hub already stores is skipped by its
upload protocol. Nothing is written into the local folder. Before a tag is set, the tree of the commit
to tag is compared with the manifest, so a half-finished push is never tagged.
"""

import hashlib
from collections.abc import Callable

from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi
from huggingface_hub.hf_api import RepoFile
from huggingface_hub.utils.sha import git_hash

from .errors import UserError

FILES_PER_COMMIT = 100  # the Hub's recommended ceiling (huggingface.co/docs/hub/repositories-recommendations)


def remote_files(api: HfApi, repo_id: str, revision: str) -> dict[str, RepoFile]:
    tree = api.list_repo_tree(repo_id, recursive=True, revision=revision, repo_type="dataset")
    return {entry.path: entry for entry in tree if isinstance(entry, RepoFile)}


def holds(remote: RepoFile | None, entry: dict, read: Callable[[], bytes]) -> bool:
    """Whether the Hub's file is the manifest entry's: an LFS file's size and SHA-256, or a regular file's git
    blob id (`read` gives the local bytes; the Hub stores only small files as regular ones)."""
    if remote is None:
        return False
    if remote.lfs is not None:
        return remote.lfs.size == entry["bytes"] and remote.lfs.sha256 == entry["sha256"]
    return remote.size == entry["bytes"] and remote.blob_id == git_hash(read())


def holds_card(remote: RepoFile | None, card: bytes) -> bool:
    return holds(remote, {"bytes": len(card), "sha256": hashlib.sha256(card).hexdigest()}, lambda: card)


def plan(remote: dict[str, RepoFile], shards, card: bytes) -> list:
    """The operations that turn `main` into this version: stale data files deleted (main holds one version;
    tags keep the others), the data files the Hub lacks added, then the card if it differs."""
    ours = {name for name, _, _ in shards}
    operations = [
        CommitOperationDelete(path) for path in sorted(remote) if path.startswith("data/") and path not in ours
    ]
    for name, path, entry in shards:
        if not holds(remote.get(name), entry, path.read_bytes):
            # The client hashes what it sends (again: a file changed since the check is then not tagged).
            operations.append(CommitOperationAdd(name, path))
    if operations or not holds_card(remote.get("README.md"), card):
        operations.append(CommitOperationAdd("README.md", card))
    return operations


def commit_in_parts(api: HfApi, repo_id: str, operations: list, message: str) -> str | None:
    """Commit `operations` on main, FILES_PER_COMMIT at a time; returns the last commit (None if none)."""
    commit = None
    parts = [operations[start : start + FILES_PER_COMMIT] for start in range(0, len(operations), FILES_PER_COMMIT)]
    for number, part in enumerate(parts, 1):
        suffix = f" (part {number} of {len(parts)})" if len(parts) > 1 else ""
        commit = api.create_commit(repo_id, part, repo_type="dataset", commit_message=message + suffix).oid
    return commit


def check_landed(api: HfApi, repo_id: str, commit: str, shards, card: bytes) -> None:
    """Refuse to tag `commit` unless its data files are exactly the manifest's and its card is this one."""
    remote = remote_files(api, repo_id, commit)
    retry = "nothing was tagged: run the same command again to send what is missing"
    for name, path, entry in shards:
        if not holds(remote.get(name), entry, path.read_bytes):
            raise UserError(
                f"{repo_id} at {commit[:12]} lacks {name} as built (missing, or size or SHA-256 differ); {retry}"
            )
    ours = {name for name, _, _ in shards}
    extra = sorted(path for path in remote if path.startswith("data/") and path not in ours)
    if extra:
        raise UserError(f"{repo_id} at {commit[:12]} holds {extra[0]}, which is not part of this version; {retry}")
    if not holds_card(remote.get("README.md"), card):
        raise UserError(f"{repo_id} at {commit[:12]} does not hold this version's card; {retry}")
