"""The repository's inputs, read once: the bytes of mesh/, nodes/, secrets/ and .sops.yaml,
from the working tree or from a git commit. Everything after reading is computed from a
snapshot, so `plan` compares two snapshots and `node add` checks the mesh with one more
file, without copying anything to a temporary folder."""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from vpcmesh.errors import Location, Problem
from vpcmesh.model.cache import ParseCache
from vpcmesh.model.layout import INPUTS


class Kind(StrEnum):
    FILE = "file"
    FOLDER = "folder"
    LINK = "link"  # never followed: a link could point anywhere on the machine
    OTHER = "other"  # a device, socket or pipe: never read
    LARGE = "large"  # a regular file far larger than any vpcmesh writes: never read


MAX_INPUT = 16 << 20  # bytes: the largest input file read (a sops file is a few KiB)


@dataclass(frozen=True)
class Snapshot:
    files: Mapping[str, bytes]
    kinds: Mapping[str, Kind]  # every path seen, files included
    cache: ParseCache = field(compare=False)

    def read(self, rel: str) -> bytes:
        return self.files[rel]

    def is_file(self, rel: str) -> bool:
        return rel in self.files

    def is_folder(self, rel: str) -> bool:
        return self.kinds.get(rel) is Kind.FOLDER

    def children(self, folder: str) -> list[tuple[str, Kind]]:
        """The direct entries of `folder`: (name, kind), sorted by name."""
        prefix = folder.rstrip("/") + "/"
        return sorted((rel[len(prefix):], kind) for rel, kind in self.kinds.items()
                      if rel.startswith(prefix) and "/" not in rel[len(prefix):])

    def refused(self) -> list[Problem]:
        """Every link or special file among the inputs: never read, always reported."""
        what = {Kind.LINK: "a symbolic link", Kind.OTHER: "a device, socket or pipe",
                Kind.LARGE: f"larger than {MAX_INPUT >> 20} MiB"}
        why = {Kind.LARGE: "no file vpcmesh writes is near that size; remove it"}
        return [Problem(Location(rel), f"{what[kind]}, " + why.get(
                    kind, "not a regular file: vpcmesh reads only regular files in the"
                          " repository (a link could point anywhere on this machine)"))
                for rel, kind in sorted(self.kinds.items()) if kind in what]

    def with_files(self, changes: Mapping[str, bytes | None]) -> Snapshot:
        """This snapshot with files added, replaced, or (None) deleted: what a command is
        about to write, or has just written, without reading the repository again."""
        files, kinds = dict(self.files), dict(self.kinds)
        for rel, data in changes.items():
            if data is None:
                files.pop(rel, None)
                kinds.pop(rel, None)
                continue
            files[rel] = data
            kinds[rel] = Kind.FILE
            parent = rel.rpartition("/")[0]
            while parent:
                kinds.setdefault(parent, Kind.FOLDER)
                parent = parent.rpartition("/")[0]
        return Snapshot(files, kinds, self.cache)


def _kind(mode: int) -> Kind:
    if stat.S_ISREG(mode):
        return Kind.FILE
    if stat.S_ISDIR(mode):
        return Kind.FOLDER
    return Kind.LINK if stat.S_ISLNK(mode) else Kind.OTHER


def read_snapshot(root: Path, cache: ParseCache) -> Snapshot:
    """The inputs under `root` as they are now; links and special files are listed, never
    followed or read."""
    files: dict[str, bytes] = {}
    kinds: dict[str, Kind] = {}

    def visit(rel: str) -> None:
        try:
            found = os.lstat(root / rel)
        except FileNotFoundError:
            return
        kind = _kind(found.st_mode)
        if kind is Kind.FILE and found.st_size > MAX_INPUT:
            kind = Kind.LARGE
        kinds[rel] = kind
        if kind is Kind.FILE:
            with open(root / rel, "rb") as handle:
                files[rel] = handle.read()
        elif kind is Kind.FOLDER:
            for name in sorted(os.listdir(root / rel)):
                visit(f"{rel}/{name}")

    for top in INPUTS:
        visit(top)
    return Snapshot(files, kinds, cache)


def from_members(members: Mapping[str, tuple[str, bytes]], cache: ParseCache) -> Snapshot:
    """A snapshot of the inputs among `members` (a git commit's: path -> kind, bytes)."""
    files: dict[str, bytes] = {}
    kinds: dict[str, Kind] = {}
    for rel, (kind_name, data) in members.items():
        if rel.split("/")[0] not in INPUTS:
            continue
        kind = Kind(kind_name)
        if kind is Kind.FILE and len(data) > MAX_INPUT:
            kind = Kind.LARGE
        kinds[rel] = kind
        if kind is Kind.FILE:
            files[rel] = data
        parent = rel.rpartition("/")[0]
        while parent:
            kinds.setdefault(parent, Kind.FOLDER)
            parent = parent.rpartition("/")[0]
    return Snapshot(files, kinds, cache)
