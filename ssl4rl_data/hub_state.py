"""The local Hub server's state: repos as commit snapshots with branches and tags, and LFS objects."""

import hashlib
import threading
import time
from urllib.parse import unquote

LFS_MIN_SIZE = 10_000


def git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class Repo:
    """One dataset repo: every commit is a full snapshot of its files."""

    def __init__(self, repo_id: str, private: bool):
        self.repo_id, self.private = repo_id, private
        self.commits: dict[str, dict[str, bytes]] = {}
        self.branches: dict[str, str] = {}
        self.tags: dict[str, str] = {}
        self.lfs_paths: set[str] = set()
        self.commit({".gitattributes": b"*.parquet filter=lfs diff=lfs merge=lfs -text\n"}, None, "initial commit")

    def commit(self, files: dict[str, bytes], parent: str | None, message: str) -> str:
        oid = hashlib.sha1(f"{parent}{message}{time.time_ns()}{sorted(files)}".encode()).hexdigest()
        self.commits[oid] = files
        self.branches["main" if parent is None else self._branch_of(parent)] = oid
        return oid

    def _branch_of(self, oid: str) -> str:
        return next((name for name, head in self.branches.items() if head == oid), "main")

    def resolve(self, revision: str) -> str | None:
        revision = unquote(revision)
        for name in (revision, revision.removeprefix("refs/heads/"), revision.removeprefix("refs/tags/")):
            if name in self.branches:
                return self.branches[name]
            if name in self.tags:
                return self.tags[name]
        return revision if revision in self.commits else None

    def oid(self, path: str, data: bytes) -> str:
        """What preupload reports for a file already there: an LFS file's SHA-256, else its git blob id, as the
        Hub does (the client then leaves an unchanged file out of the commit)."""
        return hashlib.sha256(data).hexdigest() if path in self.lfs_paths else git_blob_id(data)

    def entry(self, path: str, data: bytes) -> dict:
        entry = {"type": "file", "path": path, "size": len(data), "oid": git_blob_id(data)}
        if path in self.lfs_paths:
            entry["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}
        return entry


class HubState:
    """Every repo and LFS object the server holds, in memory."""

    def __init__(self):
        self.repos: dict[str, Repo] = {}
        self.lfs: dict[str, bytes] = {}
        self.refuse_writes = False
        # Fault injection: how many more commits and tags the server accepts before it refuses the next
        # one (HTTP 503), once, as a Hub failing mid-push; None when off. See hub_server.py.
        self.fail_after: int | None = None
        self.lock = threading.Lock()

    def accepts_ref_update(self) -> bool:
        """Counts a commit or tag against `fail_after`; False for the one to refuse (the switch then turns off)."""
        if self.fail_after is None:
            return True
        self.fail_after -= 1
        if self.fail_after < 0:
            self.fail_after = None
            return False
        return True
