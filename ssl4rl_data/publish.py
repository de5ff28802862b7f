"""Publish a built dataset folder to the Hub as an immutable, tagged version.

The folder's files are committed to `main` as they are (its parquet bytes; its card rendered again
with the repo id and tag), then the commit is tagged. A push that changes at most 100 files (data
files, deletions of the previous version's and the card) is one commit; a larger one goes up in
commits of 100 files with the card last (publish_commits.py), and the tag is set only once the tree
of the last commit matches the manifest. An interrupted push resumes when run again: the files the
Hub already holds are not sent again. A tag is never moved: pushing the same version again is a
no-op, and a tag that already names other content is an error. The local folder is only read: the
resume state is what the Hub holds, none is kept beside the data.

Before anything is sent, the folder is checked against the manifest its build wrote into the card
(every data file's name, size and SHA-256): a missing, changed or unknown file, or a symbolic link
anywhere, refuses the push. Tag names follow git's rules for ref names and never name a branch.
"""

import os
import re
from dataclasses import dataclass
from pathlib import Path

import yaml
from huggingface_hub import HfApi, get_token, hf_hub_download
from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError
from huggingface_hub.repocard import metadata_load

from .card import read_provenance, render_card
from .errors import UserError
from .publish_commits import check_landed, commit_in_parts, plan, remote_files
from .records import file_record


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
    check_repo_id(repo_id)
    record = read_provenance(folder)
    tag = default_tag(record["version"]) if tag is None else tag
    check_tag(tag)
    shards = verified_data_files(folder, record)
    token = get_token()
    if not token:
        raise UserError("no Hugging Face token: run `hf auth login` or set HF_TOKEN")
    api = HfApi(token=token)
    try:
        return _push(api, folder, record, repo_id, tag, private, shards)
    except UserError:
        raise
    except Exception as error:
        raise _explain(error, api.endpoint, repo_id) from None


def check_repo_id(repo_id: str) -> None:
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError as error:
        raise UserError(f"invalid repo id {repo_id!r}: {_first_line(error)}") from None


FORBIDDEN_IN_REFS = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]|\.\.|@\{|//")
RESERVED_TAGS = {"main", "HEAD", "@"}


def check_tag(tag: str) -> None:
    """A tag name git (`git check-ref-format`) and the Hub accept, that is not a branch's name.

    >>> check_tag("v1.2/rc-3")
    >>> check_tag("bad tag")
    Traceback (most recent call last):
    ...
    ssl4rl_data.errors.UserError: invalid tag 'bad tag': git ref names may not hold spaces, ~ ^ : ? * [ \\, control characters, '..', '@{' or '//'
    """
    parts = tag.split("/")
    problem = (
        "it is empty"
        if not tag
        else "git ref names may not hold spaces, ~ ^ : ? * [ \\, control characters, '..', '@{' or '//'"
        if FORBIDDEN_IN_REFS.search(tag)
        else f"{tag!r} names a branch or HEAD"
        if tag in RESERVED_TAGS or tag.startswith("refs/")
        else "it may not start with '-' or '/', or end with '/' or '.'"
        if tag[0] in "-/" or tag[-1] in "/."
        else "no part may start with '.' or end with '.lock'"
        if any(p.startswith(".") or p.endswith(".lock") for p in parts)
        else "it is longer than 255 characters"
        if len(tag) > 255
        else None
    )
    if problem:
        raise UserError(f"invalid tag {tag!r}: {problem}")


def verified_data_files(folder: Path, record: dict) -> list[tuple[str, Path, dict]]:
    """(name in repo, local path, manifest entry) of every data file, after checking the whole folder
    against the build's manifest: no symbolic link or special file, nothing unknown, nothing missing."""
    manifest = record.get("files")
    if not isinstance(manifest, dict) or not manifest:
        raise UserError(
            f"{folder}: its card has no file manifest (built by an older ssl4rl-data); rebuild it before pushing"
        )
    found = {}
    for directory, subdirs, names in os.walk(folder):
        for name in subdirs + names:
            path = Path(directory) / name
            relative = path.relative_to(folder).as_posix()
            if path.is_symlink():
                raise UserError(f"{folder}: {relative} is a symbolic link; refusing to push")
            if name in names:
                if not path.is_file():
                    raise UserError(f"{folder}: {relative} is not a regular file; refusing to push")
                found[relative] = path
    unknown = sorted(set(found) - set(manifest) - {"README.md"})
    if unknown:
        raise UserError(f"{folder}: {unknown[0]} is not one of the files its build wrote; refusing to push")
    checked = []
    for name, entry in sorted(manifest.items()):
        if name not in found or not isinstance(entry, dict):
            raise UserError(f"{folder}: {name}, written by its build, is missing; refusing to push")
        if file_record(found[name]) != {"bytes": entry.get("bytes"), "sha256": entry.get("sha256")}:
            raise UserError(
                f"{folder}: {name} is not the file its build wrote (size or SHA-256 differ); refusing to push"
            )
        checked.append((name, found[name], entry))
    return checked


def _push(api: HfApi, folder: Path, record: dict, repo_id: str, tag: str, private: bool, shards) -> Published:
    api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    if private and not api.dataset_info(repo_id).private:  # an existing repo keeps its visibility
        raise UserError(
            f"{repo_id} exists and is public, and --private only makes a new repo private: nothing was pushed; "
            "make it private on the Hub first, or push without --private"
        )
    refs = api.list_repo_refs(repo_id, repo_type="dataset")
    if tag in {ref.name for ref in refs.branches}:
        raise UserError(f"{tag!r} is a branch of {repo_id}, not a tag: choose another --tag")
    tags = {ref.name: ref.target_commit for ref in refs.tags}
    if tag in tags:
        version = published_version(repo_id, tags[tag])
        if version == record["version"]:
            return Published(repo_id, tag, tags[tag], created=False)
        holding = f"version {version}" if version else "a commit that is not an ssl4rl-data version"
        raise UserError(
            f"tag {tag} on {repo_id} already names {holding}; a published tag is never moved: choose another --tag"
        )
    card = render_card(record, repo_id=repo_id, tag=tag).encode()
    head = api.dataset_info(repo_id, revision="main").sha
    operations = plan(remote_files(api, repo_id, head), shards, card)
    message = f"ssl4rl {record['task']} version {record['version']}"
    commit = commit_in_parts(api, repo_id, operations, message) or head  # head: an earlier run sent it all
    check_landed(api, repo_id, commit, shards, card)
    api.create_tag(
        repo_id,
        tag=tag,
        revision=commit,
        repo_type="dataset",
        tag_message=f"ssl4rl-data version {record['version']}",
    )
    return Published(repo_id, tag, commit, created=True)


def published_version(repo_id: str, commit: str) -> str | None:
    """The ssl4rl version whose card `commit` holds; None if it holds no card with an ssl4rl block."""
    try:
        card = hf_hub_download(repo_id, "README.md", repo_type="dataset", revision=commit)
    except EntryNotFoundError:
        return None
    try:
        block = (metadata_load(Path(card)) or {}).get("ssl4rl")
    except (ValueError, yaml.YAMLError):  # a card damaged by hand
        return None
    version = block.get("version") if isinstance(block, dict) else None  # None: someone else's card
    return version if isinstance(version, str) else None


RESUME = "; run the same command again to resume"

# httpx's and requests' base classes of a connection that failed, dropped or timed out
TRANSPORT_ERRORS = {"TransportError", "NetworkError", "ProtocolError", "TimeoutException", "ConnectionError"}


def _explain(error: Exception, endpoint: str, repo_id: str) -> Exception:
    """A one-line UserError for a refusal or an unreachable endpoint, looking through wrapped causes."""
    cause = error
    while cause is not None:
        if isinstance(cause, HfHubHTTPError):
            status = cause.response.status_code if cause.response is not None else 0
            again = RESUME if status == 429 or status >= 500 else ""  # the Hub's trouble, not the request's
            return UserError(
                f"the Hub refused the push to {repo_id} (HTTP {status or '?'}): {_first_line(cause)}{again}"
            )
        # Connection errors come from huggingface_hub's HTTP library; recognise them by kind, not by import.
        kinds = {kind.__name__ for kind in type(cause).__mro__}
        if (
            isinstance(cause, OSError)
            or kinds & TRANSPORT_ERRORS
            or any(w in type(cause).__name__ for w in ("Connect", "Timeout", "Network"))
        ):
            return UserError(f"cannot reach the Hub at {endpoint}: {_first_line(cause)}{RESUME}")
        cause = cause.__cause__ or cause.__context__
    return UserError(f"the push to {repo_id} failed: {type(error).__name__}: {_first_line(error)}")


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
