"""Atomic directory and file writes, and content hashes."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_dir(target: Path) -> Iterator[Path]:
    """Yield a temporary sibling directory; rename it to `target` only on success.

    An existing `target` is replaced. On error the temporary directory is removed and
    `target` is left as it was.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes 0700; outputs are meant to be shared
    try:
        yield tmp
        if target.exists():
            trash = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.replace(target, trash)
            os.replace(tmp, target)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextmanager
def output_lock(target: Path) -> Iterator[None]:
    """Hold `.<name>.lock` beside an output while writing it: a second writer is refused, and the
    temporary directories a killed writer left (`.<name>.tmp-*`, `.<name>.old-*`) are removed,
    which is safe because no live writer can own them while the lock is held."""
    import fcntl

    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{target.name}.lock", "w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RuntimeError(f"another fewstep process is writing {target}") from None
        for stale in target.parent.glob(f".{target.name}.tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)
        for stale in target.parent.glob(f".{target.name}.old-*"):
            shutil.rmtree(stale, ignore_errors=True)
        yield


def written_by_fewstep(path: Path) -> bool:
    """A directory fewstep made: a bundle or stage manifest with a fewstep version, or a student."""
    path = Path(path)
    if (path / "fewstep_student.json").is_file():
        return True
    try:
        return "fewstep_version" in json.loads((path / "manifest.json").read_text())
    except (OSError, ValueError, TypeError):
        return False


def check_replaceable(target: Path, overwrite: bool = False) -> None:
    """Refuse to replace an existing output that fewstep did not write (unless `overwrite`): a
    user's directory given as `-o` by mistake is never deleted. Empty directories are fine."""
    target = Path(target)
    if not target.exists() or overwrite:
        return
    if target.is_dir() and not any(target.iterdir()):
        return
    if target.is_dir() and written_by_fewstep(target):
        return
    kind = "directory" if target.is_dir() else "file"
    raise FileExistsError(
        f"{target} is an existing {kind} that fewstep did not write; refusing to replace it "
        "(choose another output, or pass --overwrite to replace it)"
    )


def atomic_write_text(path: Path, text: str) -> None:
    """Write a text file via a temporary file and rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class DiskSpaceError(OSError):
    """Not enough free disk space for an output: a user error (free space, or write elsewhere)."""


DISK_MARGIN = 1.05  # an output's estimated size times this must be free, plus DISK_SLACK bytes
DISK_SLACK = 64 << 20


def human_size(n: int) -> str:
    """Bytes as GiB (two decimals) from 0.1 GiB up, MiB below."""
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 / 10 else f"{n / 2**20:.0f} MiB"


def require_free_space(folder: Path, needed: int, what: str) -> None:
    """Refuse before writing `what` (about `needed` bytes) into `folder` when its file system has
    less free space than that (with a margin): a multi-GB model export then fails up front with
    the numbers, not halfway with the writer's own error (OpenVINO: "basic_ios::clear")."""
    folder = Path(folder)
    probe = folder
    while not probe.exists() and probe != probe.parent:  # the nearest existing ancestor
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if free < needed * DISK_MARGIN + DISK_SLACK:
        raise DiskSpaceError(
            f"not enough disk space to write {what} in {folder}: it needs about {human_size(needed)} "
            f"and {human_size(free)} are free there; free some space, or choose an output on a larger disk "
            "(a build writes its intermediate files beside its output)"
        )


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def hash_tree(root: Path, hidden: bool = False, exclude: frozenset[str] = frozenset()) -> dict[str, str]:
    """sha256 of every regular file under `root`, keyed by relative POSIX path; dot-files and
    dot-directories only with `hidden`, paths in `exclude` never."""
    root = Path(root)
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root)
        if not p.is_file() or rel.as_posix() in exclude:
            continue
        if hidden or not any(part.startswith(".") for part in rel.parts):
            out[rel.as_posix()] = sha256_file(p)
    return out


def tree_digest(root: Path) -> str:
    """One sha256 over a directory's file hashes (order-independent of the walk)."""
    h = hashlib.sha256()
    for rel, digest in hash_tree(root).items():
        h.update(f"{rel}\0{digest}\n".encode())
    return h.hexdigest()
