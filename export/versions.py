"""Version numbers and atomic publish: the only code that creates numbered directories.

A version is built in ``<model_dir>/.staging-<rand>/`` (non-numeric, so TF Serving's poller and ours ignore
it), flushed to disk, then published under an exclusive ``flock`` on ``<model_dir>/.lock``: the number is
allocated as one more than every number in the ledger or on disk, ``metadata.json`` is written with it, the
staging directory is ``os.rename``d to ``<N>`` and the ledger ``.registry.json`` is replaced atomically.
A rename on one filesystem is atomic, so a poller sees either no ``<N>`` or a complete one.

Published trees are made readable by any user (directories 0755, files 0644) before the rename: a TF
Serving container usually runs as another, non-root user. A failed first export of a name removes
``<model_dir>`` again (``remove_if_unused``), ``.lock`` included; ``model_lock`` re-checks after each
``flock`` that the lock file it holds is still the one on disk, so deleting it never lets two holders in.

Each staging directory is ``flock``ed by its exporter for its whole life. The kernel drops that lock when the
process dies (even on kill -9), so the next export can tell a dead exporter's debris from a live sibling's
work and removes only the former.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .errors import VersionError
from .metadata import version_dirs

LEDGER_FILE = ".registry.json"
LOCK_FILE = ".lock"
STAGING_PREFIX = ".staging-"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def validate_name(name: str) -> str:
    """A model name is one safe path component (TF Serving uses it in URLs and base paths)."""
    if not _NAME.match(name or "") or name in (".", ".."):
        raise VersionError(f"invalid model name {name!r}: use letters, digits, '.', '_' or '-' (max 128)")
    return name


def fsync_dir(path: Path) -> None:
    """fsync a directory so that renames and new entries in it survive a crash."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(root: Path) -> None:
    """fsync every file and directory under ``root`` (bottom-up), then ``root`` itself."""
    for dirpath, _dirs, files in os.walk(root, topdown=False):
        for fname in files:
            fd = os.open(Path(dirpath) / fname, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(Path(dirpath))


def read_ledger(model_dir: Path) -> dict:
    """The ledger ``{"name", "versions_used"}``; an empty one when the model has never been published."""
    path = Path(model_dir) / LEDGER_FILE
    if not path.is_file():
        return {"name": Path(model_dir).name, "versions_used": []}
    with path.open(encoding="utf-8") as f:
        data = json.load(f)
    used = data.get("versions_used")
    if not isinstance(used, list) or not all(isinstance(v, int) for v in used):
        raise VersionError(f"{path}: corrupt ledger (versions_used must be a list of integers)")
    return data


DIR_MODE, FILE_MODE = 0o755, 0o644


def make_readable(root: Path) -> None:
    """chmod a tree to 0755 directories / 0644 files (``mkdtemp`` and ``mkstemp`` create 0700 / 0600)."""
    root = Path(root)
    for dirpath, dirs, files in os.walk(root):
        for d in dirs:
            os.chmod(Path(dirpath) / d, DIR_MODE, follow_symlinks=False)
        for f in files:
            path = Path(dirpath) / f
            if not path.is_symlink():
                os.chmod(path, FILE_MODE)
    os.chmod(root, DIR_MODE)


def write_ledger(model_dir: Path, ledger: dict) -> None:
    """Replace the ledger atomically: temp file in the same directory, fsync, rename."""
    model_dir = Path(model_dir)
    fd, tmp = tempfile.mkstemp(prefix=".registry-", suffix=".tmp", dir=model_dir)
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(ledger, f, indent=2)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, model_dir / LEDGER_FILE)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def used_versions(model_dir: Path) -> set[int]:
    """Every number that is taken: published on disk now or ever recorded in the ledger."""
    return set(read_ledger(model_dir)["versions_used"]) | {n for n, _ in version_dirs(model_dir)}


def check_available(model_dir: Path, version: int) -> None:
    """Refuse a requested ``VERSION`` that exists or was used (checked early, and again under the lock)."""
    if version < 1:
        raise VersionError(f"version must be a positive integer, got {version}")
    if (Path(model_dir) / str(version)).exists() or any(n == version for n, _ in version_dirs(model_dir)):
        raise VersionError(f"version {version} of {Path(model_dir).name!r} already exists in {model_dir}")
    if version in read_ledger(model_dir)["versions_used"]:
        raise VersionError(
            f"version {version} of {Path(model_dir).name!r} was published before and numbers are never reused "
            f"(see {Path(model_dir) / LEDGER_FILE})"
        )


def _lock_fd(model_dir: Path, create: bool) -> int:
    """An fd holding ``flock`` on the lock file that is on disk now (retried if it was replaced/removed)."""
    path = Path(model_dir) / LOCK_FILE
    while True:
        if create:
            Path(model_dir).mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, FILE_MODE)
        except FileNotFoundError:  # the directory was removed by a failed first export: create it again
            if not create:
                raise
            continue
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)  # we locked a file that remove_if_unused unlinked meanwhile: lock the current one


@contextlib.contextmanager
def model_lock(model_dir: Path, *, create: bool = True) -> Iterator[None]:
    """Exclusive ``flock`` on ``<model_dir>/.lock`` for allocation + rename (blocks until free)."""
    fd = _lock_fd(model_dir, create)
    try:
        yield
    finally:
        os.close(fd)  # closing drops the lock


def remove_if_unused(model_dir: Path) -> bool:
    """Remove ``model_dir`` when it holds nothing but our bookkeeping and no number was ever used.

    Called after a failed first export so a typo'd or broken model leaves no ``models/<name>/``. Never
    removes a directory with a version, a used number in the ledger, a sibling's staging directory or any
    file of someone else's; the ``.lock`` is unlinked while held, which ``_lock_fd`` detects.
    """
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        return False
    try:
        with model_lock(model_dir, create=False):
            clean_stale_staging(model_dir)
            names = {p.name for p in model_dir.iterdir()}
            if not names <= {LOCK_FILE, LEDGER_FILE} or read_ledger(model_dir)["versions_used"]:
                return False
            (model_dir / LEDGER_FILE).unlink(missing_ok=True)
            (model_dir / LOCK_FILE).unlink()
            model_dir.rmdir()
    except (OSError, VersionError):
        return False  # a sibling created something meanwhile, or the ledger is not ours to judge
    return True


@dataclass
class Staging:
    """An in-progress version directory, locked by this process until ``close``."""

    path: Path
    _fd: int

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def discard(self) -> None:
        """Remove the staging directory (failure, parity refusal, Ctrl-C) and drop its lock."""
        shutil.rmtree(self.path, ignore_errors=True)
        self.close()


def clean_stale_staging(model_dir: Path) -> list[Path]:
    """Remove ``.staging-*`` directories whose exporter died (their flock is free); returns what was removed.

    Call it under ``model_lock``: staging directories are created and locked under that lock too.
    """
    removed = []
    for path in Path(model_dir).glob(STAGING_PREFIX + "*"):
        try:
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        except OSError:  # vanished (published or removed by its owner) or not a directory
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise
            os.close(fd)
            continue  # a live exporter holds it
        try:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
        finally:
            os.close(fd)
    return removed


def create_staging(model_dir: Path) -> Staging:
    """A fresh locked ``.staging-<rand>`` directory in ``model_dir`` (created, with parents, if needed)."""
    model_dir = Path(model_dir)
    with model_lock(model_dir):  # a sibling's cleaner must not see our directory before we lock it
        clean_stale_staging(model_dir)
        path = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=model_dir))
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return Staging(path, fd)


def publish(staging: Staging, version: int | None, finalize: Callable[[Path, int], None]) -> tuple[int, Path]:
    """Atomically turn ``staging`` into ``<model_dir>/<N>``; returns ``(N, path)``.

    ``finalize(staging_path, N)`` runs under the lock once N is known (it writes ``metadata.json``); the
    staging tree is fsynced before the rename and the parent directory after it.
    """
    model_dir = staging.path.parent
    with model_lock(model_dir):
        if version is None:
            version = max(used_versions(model_dir), default=0) + 1
        else:
            check_available(model_dir, version)
        finalize(staging.path, version)
        make_readable(staging.path)
        fsync_tree(staging.path)
        target = model_dir / str(version)
        os.rename(staging.path, target)
        ledger = read_ledger(model_dir)
        ledger["name"] = model_dir.name
        ledger["versions_used"] = sorted(set(ledger["versions_used"]) | {version})
        write_ledger(model_dir, ledger)
        fsync_dir(model_dir)
    staging.close()
    return version, target
