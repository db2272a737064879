"""Files that users depend on: the one place that writes them atomically, reads trees, and
swaps folders. Shared by the compiler and the node agent."""

from __future__ import annotations

import ctypes
import fcntl
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def write_temp(path: Path, data: bytes, mode: int = 0o644, durable: bool = False) -> Path:
    """`data` in a new temporary file beside `path` (same filesystem, so a rename is atomic),
    created with `mode` before any byte is written: a private key is never readable by others,
    not even for a moment. The caller renames it into place or unlinks it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)  # explicit: the umask must not change the mode
            handle.write(data)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
    except BaseException:
        os.unlink(tmp)
        raise
    return Path(tmp)


def replace_file(path: Path, data: bytes, mode: int = 0o644, durable: bool = False) -> bool:
    """Write `path` atomically; False (and nothing touched) when it already holds `data`.
    `durable` adds an fsync, for files a VM must find whole after a power cut."""
    if path.is_file() and path.read_bytes() == data:
        return False
    tmp = write_temp(path, data, mode, durable)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return True


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


def exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths with renameat2(RENAME_EXCHANGE); False where unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    result = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    return bool(result == 0)


@contextmanager
def exclusive(path: Path) -> Iterator[bool]:
    """An advisory lock on `path` (created 0600 if missing), held until the block ends:
    True when this process has it, False when another does. The kernel drops it when the
    process dies, so a kill -9 leaves no stale lock."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)
