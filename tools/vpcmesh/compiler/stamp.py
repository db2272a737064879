"""The build stamp: when nothing that shapes build/ has changed, render does no work.

After a clean render, .vpcmesh-stamp.json records a digest of every input (mesh/, nodes/,
secrets/, .sops.yaml and vpcmesh's own code and templates), a digest of build/'s file
stats (so a touched build/ is noticed), every output file's SHA-256, and the first moment
time alone would change the output (a renewal window opening, a manifest due for
re-signing). Kept light on imports: it runs before anything else on a no-op render."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path

from vpcmesh.fsio import replace_file
from vpcmesh.model.cache import code_digest
from vpcmesh.model.snapshot import Snapshot

STAMP = ".vpcmesh-stamp.json"


def inputs_digest(snapshot: Snapshot) -> str:
    digest = hashlib.sha256(code_digest().encode())
    for rel, kind in sorted(snapshot.kinds.items()):
        data = snapshot.files.get(rel, b"")
        digest.update(f"{rel}\0{kind}\0".encode() + data + b"\0")
    return digest.hexdigest()


def _stats(folder: str, prefix: str, out: list[str]) -> None:
    with os.scandir(folder) as entries:
        for entry in sorted(entries, key=lambda e: e.name):
            if entry.is_dir(follow_symlinks=False):
                _stats(entry.path, f"{prefix}{entry.name}/", out)
            else:
                st = entry.stat(follow_symlinks=False)
                out.append(f"{prefix}{entry.name}\0{st.st_size}\0{st.st_mtime_ns}\0"
                           f"{st.st_ino}\0")


def tree_digest(build: Path) -> str:
    """Every file's path, size, mtime and inode: any touch of build/ changes it."""
    lines: list[str] = []
    if build.is_dir():
        _stats(str(build), "", lines)
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def _read(root: Path) -> dict[str, object] | None:
    try:
        data = json.loads((root / STAMP).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def fresh(root: Path, snapshot: Snapshot, build: Path, now: dt.datetime) -> bool:
    stamp = _read(root)
    if stamp is None or now.isoformat() >= str(stamp.get("until", "")):
        return False
    return (stamp.get("inputs") == inputs_digest(snapshot)
            and stamp.get("tree") == tree_digest(build))


def known_files(root: Path, build: Path) -> dict[str, str] | None:
    """build/'s content as SHA-256 per file, when build/ is untouched since the stamp."""
    stamp = _read(root)
    if stamp is None or stamp.get("tree") != tree_digest(build):
        return None
    files = stamp.get("files")
    return files if isinstance(files, dict) else None


def write(root: Path, written: Snapshot, build: Path, digests: Mapping[str, str],
          until: dt.datetime) -> None:
    """`written`: the inputs as the render left them; `digests`: the SHA-256 of every file
    build/ now holds (Staging computed them)."""
    data = {"inputs": inputs_digest(written), "tree": tree_digest(build),
            "until": until.isoformat(), "files": dict(sorted(digests.items()))}
    replace_file(root / STAMP, json.dumps(data, separators=(",", ":")).encode())


def clear(root: Path) -> None:
    (root / STAMP).unlink(missing_ok=True)
