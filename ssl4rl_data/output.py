"""Where a build writes: one build per `--out` at a time, a staging folder beside it, one atomic rename.

- A lock file `.OUT.lock` beside `--out` is held (flock) for the whole build and names its holder's
  pid: a second build of the same `--out` is refused at once instead of interleaving with the first.
  The kernel drops the lock when the holder dies, however it dies.
- `--out` may not be, contain, or lie inside a source path (`--overwrite` would delete the source).
- `--overwrite` replaces only an empty folder or a dataset folder this tool wrote (its card's front
  matter has an `ssl4rl:` block, and it holds nothing but README.md and data/ with files in it): a
  mistyped `--out` never deletes someone's files.
- The finished folder is renamed into place with RENAME_NOREPLACE where the kernel has it, so an
  `--out` that appeared during the build is never replaced without `--overwrite`: the staged data is
  kept and the error says where.
- Staging folders of this `--out` left by builds of other inputs are removed when a build starts.
- Worker processes die with the build (PR_SET_PDEATHSIG), so none writes after its parent is gone.
"""

import contextlib
import ctypes
import errno
import fcntl
import os
import secrets
import shutil
import signal
from pathlib import Path

from .errors import UserError

PR_SET_PDEATHSIG = 1
RENAME_NOREPLACE = 1
AT_FDCWD = -100
_LIBC = None


def _libc():
    global _LIBC
    if _LIBC is None:
        try:
            _LIBC = ctypes.CDLL(None, use_errno=True)
        except OSError:
            _LIBC = False
    return _LIBC


def staging_path(out: Path, version: str) -> Path:
    return out.parent / f".{out.name}.partial-{version}"


def check_out(out: Path, source_paths: list[Path], overwrite: bool) -> None:
    """Refuse an `--out` that exists (without --overwrite), is not a folder, or overlaps a source path."""
    if out.name in ("", ".", ".."):  # the lock and staging folder are named after it, beside it in its parent
        raise UserError(f"--out {out} does not end in a folder's name; name the folder, e.g. --out ../NAME")
    if out.exists() or out.is_symlink():
        if not out.is_dir() or out.is_symlink():
            raise UserError(f"--out {out} exists and is not a folder; choose another --out")
        if not overwrite:
            raise UserError(f"{out} already exists; pass --overwrite to replace it")
        check_replaceable(out)
    target = Path(os.path.realpath(out))
    for path in source_paths:
        source = Path(os.path.realpath(path))
        if target == source or source in target.parents or target in source.parents:
            relation = "is" if target == source else "lies inside" if source in target.parents else "contains"
            raise UserError(f"--out {out} {relation} the source path {path}; choose an --out outside every source")


CARD_BYTES = 2**20  # the provenance block sits in the card's front matter, well within its first MiB


def is_dataset_folder(folder: Path) -> bool:
    """Whether `folder` holds a dataset written by this tool: a README.md whose YAML front matter has a
    top-level `ssl4rl:` block (read as text: deciding what may be deleted must not need the Hub client)."""
    try:
        with open(Path(folder) / "README.md", encoding="utf-8", errors="replace") as handle:
            lines = handle.read(CARD_BYTES).splitlines()
    except OSError:
        return False
    if not lines or lines[0].strip() != "---":
        return False
    for line in lines[1:]:
        if line.strip() == "---":
            return False
        if line.rstrip() == "ssl4rl:":
            return True
    return False


AUDIT_LEFTOVER = ".README.md.audit-"  # a card being rewritten by an audit that was killed (audit/__init__.py)


def foreign_entry(folder: Path) -> str | None:
    """The first thing in a dataset folder that its build did not write (only README.md and data/ with files in
    it are: anything else, such as a git clone's .git or someone's notes, is not the tool's to delete)."""
    for entry in sorted(folder.iterdir()):
        if entry.name == "data" and entry.is_dir() and not entry.is_symlink():
            inside = next((p for p in sorted(entry.iterdir()) if p.is_symlink() or not p.is_file()), None)
            if inside is not None:
                return f"data/{inside.name}"
        elif entry.name != "README.md" and not entry.name.startswith(AUDIT_LEFTOVER):
            return entry.name
    return None


def check_replaceable(out: Path) -> None:
    """Refuse to replace a folder that is neither empty nor a dataset folder this tool wrote."""
    if not any(out.iterdir()):
        return
    if not is_dataset_folder(out):
        raise UserError(
            f"--out {out} holds files that are not a dataset written by ssl4rl-data, and --overwrite only replaces "
            "such a dataset (or an empty folder); remove it yourself or choose another --out"
        )
    foreign = foreign_entry(out)
    if foreign is not None:
        raise UserError(
            f"--out {out} is a dataset but also holds {foreign}, which its build did not write, and --overwrite "
            "deletes only what ssl4rl-data wrote; move it out or choose another --out"
        )


@contextlib.contextmanager
def out_lock(out: Path):
    """Hold `.OUT.lock` for the duration; UserError naming the holder's pid if another build holds it."""
    path = out.parent / f".{out.name}.lock"
    blocking = next((p for p in [out.parent, *out.parent.parents] if p.exists() or p.is_symlink()), None)
    if blocking is not None and not blocking.is_dir():
        raise UserError(f"cannot write --out {out}: {blocking} is not a directory")
    out.parent.mkdir(parents=True, exist_ok=True)
    while True:
        handle = open(path, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise UserError(f"{out} is being built by another process (pid {holder}); wait for it to finish") from None
        try:
            same = os.fstat(handle.fileno()).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        handle.close()  # the previous holder removed the file between our open and our lock: take the new one
    try:
        handle.truncate(0)
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
        handle.close()


def remove_stale_partials(out: Path, keep: Path) -> list[Path]:
    """Remove staging folders of `out` other than `keep` (left by interrupted builds of other inputs).
    Only called under the lock, so no running build owns them."""
    removed = []
    for stale in sorted(out.parent.glob(f".{out.name}.partial-*")):
        if stale != keep and stale.is_dir() and not stale.is_symlink():
            shutil.rmtree(stale, ignore_errors=True)
            removed.append(stale)
    return removed


def write_atomic(path: Path, text: str) -> None:
    """Write `path` whole or not at all: a temporary file renamed over it (never an empty record)."""
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")  # pids repeat across machines
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def _rename_noreplace(source: Path, target: Path) -> None:
    """rename(2) that fails with FileExistsError if `target` exists (atomically, where the kernel can)."""
    libc = _libc()
    renameat2 = getattr(libc, "renameat2", None) if libc else None
    if renameat2 is not None:
        if renameat2(AT_FDCWD, os.fsencode(source), AT_FDCWD, os.fsencode(target), RENAME_NOREPLACE) == 0:
            return
        code = ctypes.get_errno()
        if code == errno.EEXIST:
            raise FileExistsError(code, os.strerror(code), str(target))
        if code not in (errno.ENOSYS, errno.EINVAL):
            raise OSError(code, os.strerror(code), str(target))
    if os.path.lexists(target):  # no renameat2: the lock still keeps other builds of this --out away
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(target))
    os.rename(source, target)


def move_into_place(staging: Path, out: Path, overwrite: bool) -> None:
    """Move the finished folder into place; an existing `out` is replaced only with `overwrite`, and only
    after the new one is whole."""
    try:
        _rename_noreplace(staging, out)
        return
    except FileExistsError:
        if not overwrite:
            raise UserError(
                f"{out} appeared while this build ran; the finished data is kept in {staging} "
                "(run again with --overwrite to replace it)"
            ) from None
    if not out.is_dir() or out.is_symlink():
        raise UserError(f"--out {out} is no longer a folder; the finished data is kept in {staging}")
    try:
        check_replaceable(out)
    except UserError as refused:
        raise UserError(f"{refused}; the finished data is kept in {staging}") from None
    trash = out.parent / f".{out.name}.replaced-{os.getpid()}"
    os.replace(out, trash)
    os.replace(staging, out)
    shutil.rmtree(trash, ignore_errors=True)


def die_with_parent(parent: int) -> None:
    """In a worker process started by process `parent`: be killed when it dies (Linux), so no worker goes
    on writing into a staging folder whose build is gone."""
    libc = _libc()
    if libc and hasattr(libc, "prctl"):
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # it died before the signal was armed
        os._exit(1)
