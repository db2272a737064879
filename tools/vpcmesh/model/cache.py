"""Results that depend only on a file's bytes and on vpcmesh's code, kept between runs in
.vpcmesh-cache.json (git-ignored): parsed and schema-checked node files, the parsed state,
certificate signature checks, sops metadata. Like mypy's cache, a cold run just does the
work; a stale entry cannot be used, because the key is the SHA-256 of the bytes."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from functools import cache
from pathlib import Path
from typing import Any

from vpcmesh.fsio import replace_file

CACHE = ".vpcmesh-cache.json"


def _walk(folder: Path) -> list[str]:
    out = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        base = os.path.relpath(dirpath, folder).replace(os.sep, "/")
        out += [f"{base}/{name}" for name in sorted(filenames)]
    return out


@cache  # the package's files do not change while it runs
def code_digest() -> str:
    """vpcmesh's own code, templates and schemas: a new version invalidates every cache."""
    digest = hashlib.sha256()
    package = Path(__file__).parent.parent
    for rel in _walk(package):
        if rel.endswith((".py", ".j2", ".json")):
            digest.update(rel.encode() + b"\0" + (package / rel).read_bytes() + b"\0")
    return digest.hexdigest()


def key(kind: str, *parts: bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(hashlib.sha256(part).digest())
    return f"{kind}:{digest.hexdigest()}"


class ParseCache:
    def __init__(self, root: Path | None) -> None:
        # None: a cache for this run only (what a git snapshot or a test uses), never saved.
        self.path = root / CACHE if root is not None else None
        self._entries: dict[str, Any] | None = None
        self.used: set[str] = set()
        self.added = False

    @property
    def entries(self) -> dict[str, Any]:
        # Read on first use: a no-op render carries a cache it never opens.
        if self._entries is None:
            self._entries = {}
            if self.path is not None and self.path.is_file():
                try:
                    data = json.loads(self.path.read_bytes())
                except (OSError, ValueError):
                    data = None
                if isinstance(data, dict) and data.get("code") == code_digest():
                    self._entries = data.get("entries") or {}
        return self._entries

    def get(self, name: str) -> Any:
        value = self.entries.get(name)
        if value is not None:
            self.used.add(name)
        return value

    def put(self, name: str, value: Any) -> None:
        self.entries[name] = value
        self.used.add(name)
        self.added = True

    def save(self) -> None:
        """Keep what this run used (so removed files do not pile up); best effort."""
        if self.path is None or self._entries is None or (
                not self.added and self.used == set(self._entries)):
            return
        data = {"code": code_digest(), "entries": {k: self.entries[k] for k in self.used}}
        with contextlib.suppress(OSError):  # a read-only checkout just runs cold next time
            replace_file(self.path, json.dumps(data, separators=(",", ":")).encode())
