"""Results that depend only on a file's bytes and on vpcmesh's code, kept between runs in
.vpcmesh-cache.json (git-ignored): parsed and schema-checked node files, the parsed state,
certificate signature checks, sops metadata. Like mypy's cache, a cold run just does the
work; a stale entry cannot be used, because the key is the SHA-256 of the bytes."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from vpcmesh.stamp import code_digest

CACHE = ".vpcmesh-cache.json"


def key(kind: str, *parts: bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(hashlib.sha256(part).digest())
    return f"{kind}:{digest.hexdigest()}"


class ParseCache:
    def __init__(self, root: Path | None) -> None:
        self.path = root / CACHE if root is not None else None
        self.entries: dict[str, Any] = {}
        self.used: set[str] = set()
        self.added = False
        if self.path is not None and self.path.is_file():
            try:
                data = json.loads(self.path.read_bytes())
            except (OSError, ValueError):
                data = None
            if isinstance(data, dict) and data.get("code") == code_digest():
                self.entries = data.get("entries") or {}

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
        if self.path is None or (not self.added and self.used == set(self.entries)):
            return
        data = {"code": code_digest(), "entries": {k: self.entries[k] for k in self.used}}
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            tmp.write_text(json.dumps(data, separators=(",", ":")))
            os.replace(tmp, self.path)
        except OSError:
            tmp.unlink(missing_ok=True)


NO_CACHE = ParseCache(None)
