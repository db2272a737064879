"""Writes that users depend on: built in a temporary place, then swapped in whole."""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def read_tree(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` by its relative path, sorted (os.walk: rglob is slow)."""
    out: dict[str, bytes] = {}
    base = str(folder)
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        rel = os.path.relpath(dirpath, base)
        prefix = "" if rel == "." else rel.replace(os.sep, "/") + "/"
        for name in filenames:
            with open(os.path.join(dirpath, name), "rb") as handle:
                out[prefix + name] = handle.read()
    return dict(sorted(out.items()))


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths with renameat2(RENAME_EXCHANGE); False where unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    result = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    return bool(result == 0)


def _mode(rel: str, private: frozenset[str]) -> int:
    return 0o600 if rel in private else 0o644


def _same(target: Path, files: Mapping[str, bytes], known: Mapping[str, str] | None) -> bool:
    if known is None:
        return read_tree(target) == dict(files)
    return known.keys() == files.keys() and all(
        hashlib.sha256(data).hexdigest() == known[rel] for rel, data in files.items())


def replace_tree(target: Path, files: Mapping[str, bytes],
                 private: frozenset[str] = frozenset(),
                 known: Mapping[str, str] | None = None) -> bool:
    """Make `target` hold exactly `files`; False (and nothing touched) when it already does.

    `known`, the SHA-256 of each file `target` holds, spares reading it. A reader sees either
    the old tree or the new one, never a mix: the new tree is written next to the old and the
    two are exchanged in one rename.
    """
    if _same(target, files, known):
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-new-", dir=target.parent))
    try:
        for rel, data in files.items():
            path = staging / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.fchmod(fd, _mode(rel, private))  # explicit: the umask must not change output
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
        staging.chmod(0o755)
        if not target.exists():
            staging.rename(target)
        elif not _exchange(staging, target):
            old = staging.with_name(staging.name.replace("-new-", "-old-"))
            target.rename(old)
            staging.rename(target)
            staging = old
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return True


def replace_file(path: Path, data: bytes, mode: int = 0o644) -> bool:
    """Write `path` atomically; False (and nothing touched) when it already holds `data`."""
    if path.is_file() and path.read_bytes() == data:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return True
