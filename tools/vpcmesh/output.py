"""Writes that users depend on: built in a temporary place, then swapped in whole."""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping
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


def _digests(files: Mapping[str, bytes]) -> dict[str, str]:
    return {rel: hashlib.sha256(data).hexdigest() for rel, data in files.items()}


def _groups(names: Iterable[str]) -> dict[str, list[str]]:
    """Files by top-level folder: each node's bundle is one folder, swapped in whole."""
    out: dict[str, list[str]] = {}
    for rel in names:
        out.setdefault(rel.partition("/")[0], []).append(rel)
    return out


def _swap_in(staged: Path, live: Path, graveyard: Path) -> None:
    if not live.exists():
        staged.rename(live)
    elif not _exchange(staged, live):
        live.rename(graveyard)
        staged.rename(live)


def replace_tree(target: Path, files: Mapping[str, bytes],
                 private: frozenset[str] = frozenset(),
                 known: Mapping[str, str] | None = None) -> bool:
    """Make `target` hold exactly `files`; False (and nothing touched) when it already does.

    `known`, the SHA-256 of each file `target` holds, spares reading it. Every top-level
    folder that changes (a node's bundle) is staged whole first, unchanged files hard-linked
    from the live tree and changed ones written, and only then swapped in, each with one
    atomic exchange: a failure while computing or staging leaves `target` untouched, and a
    reader never sees half a bundle.
    """
    current = dict(known) if known is not None else _digests(read_tree(target))
    wanted = _digests(files)
    if current == wanted:
        return False
    before, after = _groups(current), _groups(wanted)
    changed = sorted(g for g in set(before) | set(after)
                     if {r: current[r] for r in before.get(g, [])}
                     != {r: wanted[r] for r in after.get(g, [])})
    target.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-staging-", dir=target.parent))
    # Bytes already on disk, live or staged, are linked rather than written again: unchanged
    # files, and what every bundle shares (ca.crt, hosts...). Creating a file costs ten links.
    written: dict[tuple[str, int], Path] = {}
    made: set[Path] = set()  # mkdir on an existing folder costs a failed syscall each time
    try:
        for group in changed:
            for rel in after.get(group, []):
                path = staging / "new" / rel
                if path.parent not in made:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    made.add(path.parent)
                mode = _mode(rel, private)
                if current.get(rel) == wanted[rel]:
                    os.link(target / rel, path)
                elif (wanted[rel], mode) in written:
                    os.link(written[(wanted[rel], mode)], path)
                else:
                    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                    os.fchmod(fd, mode)  # explicit: the umask must not change output
                    with os.fdopen(fd, "wb") as handle:
                        handle.write(files[rel])
                    written[(wanted[rel], mode)] = path
        (staging / "old").mkdir()
        for group in changed:
            staged, live = staging / "new" / group, target / group
            if group in after:
                if staged.is_dir():
                    staged.chmod(0o755)
                _swap_in(staged, live, staging / "old" / group)
            elif live.exists():
                live.rename(staging / "old" / group)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return True


def replace_file(path: Path, data: bytes, mode: int = 0o644) -> bool:
    """Write `path` atomically; False (and nothing touched) when it already holds `data`."""
    if path.is_file() and path.read_bytes() == data:
        return False
    if not path.parent.is_dir():
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
