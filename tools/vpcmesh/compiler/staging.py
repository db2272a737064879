"""build/: a new tree staged beside it, then swapped in whole, one bundle at a time."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from vpcmesh.fsio import exchange, read_tree


def remove_leftovers(target: Path) -> None:
    """Staging folders an interrupted run (kill -9, a power cut) left beside `target`; call
    it only while holding the repository's lock."""
    for leftover in target.parent.glob(f".{target.name}-staging-*"):
        shutil.rmtree(leftover, ignore_errors=True)


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
    elif not exchange(staged, live):
        live.rename(graveyard)
        staged.rename(live)


class Staging:
    """A new tree built beside `target`, swapped in by finish().

    put() may stage files early, while other work goes on (the sops calls of a first
    compile); finish() checks every staged file against the final content, so staging early
    saves time and cannot change the result. Every top-level folder that changes (a node's
    bundle) is staged whole, unchanged files hard-linked from the live tree, and only then
    swapped in, each with one atomic exchange: a failure before the swap leaves `target`
    untouched, and a reader never sees half a bundle.
    """

    def __init__(self, target: Path, known: Mapping[str, str] | None = None,
                 private: frozenset[str] = frozenset()) -> None:
        self.target, self.private = target, private
        # `known`, the SHA-256 of each file `target` holds, spares reading it.
        self.current = dict(known) if known is not None else _digests(read_tree(target))
        self.dir: Path | None = None
        self.staged: dict[str, str] = {}
        # Bytes already on disk, live or staged, are linked rather than written again:
        # unchanged files, and what every bundle shares. Creating a file costs ten links.
        self.written: dict[tuple[str, int], Path] = {}
        self.made: set[Path] = set()  # mkdir on an existing folder is a failed syscall
        self.digests: dict[str, str] = {}  # of the final tree, once finish() ran

    def _stage(self, rel: str, data: bytes, digest: str) -> None:
        if self.dir is None:
            self.target.parent.mkdir(parents=True, exist_ok=True)
            self.dir = Path(tempfile.mkdtemp(prefix=f".{self.target.name}-staging-",
                                             dir=self.target.parent))
        path = self.dir / "new" / rel
        if path.parent not in self.made:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.made.add(path.parent)
        if rel in self.staged:
            path.unlink()
        mode = _mode(rel, self.private)
        if self.current.get(rel) == digest:
            os.link(self.target / rel, path)
        elif (digest, mode) in self.written:
            os.link(self.written[(digest, mode)], path)
        else:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.fchmod(fd, mode)  # explicit: the umask must not change output
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            self.written[(digest, mode)] = path
        self.staged[rel] = digest

    def put(self, files: Mapping[str, bytes]) -> None:
        for rel, data in files.items():
            self._stage(rel, data, hashlib.sha256(data).hexdigest())

    def finish(self, files: Mapping[str, bytes]) -> bool:
        """Make `target` hold exactly `files`; False (and nothing touched) when it does."""
        try:
            wanted = self.digests = _digests(files)
            if self.current == wanted:
                return False
            before, after = _groups(self.current), _groups(wanted)
            changed = sorted(g for g in set(before) | set(after)
                             if {r: self.current[r] for r in before.get(g, [])}
                             != {r: wanted[r] for r in after.get(g, [])})
            for group in changed:
                for rel in after.get(group, []):
                    if self.staged.get(rel) != wanted[rel]:
                        self._stage(rel, files[rel], wanted[rel])
            self.target.mkdir(parents=True, exist_ok=True)
            if self.dir is None:  # only removals
                self.dir = Path(tempfile.mkdtemp(prefix=f".{self.target.name}-staging-",
                                                 dir=self.target.parent))
            for rel in self.staged:
                if rel not in wanted and rel.partition("/")[0] in changed:
                    (self.dir / "new" / rel).unlink()  # staged early, no longer wanted
            (self.dir / "old").mkdir()
            for group in changed:
                staged, live = self.dir / "new" / group, self.target / group
                if group in after:
                    if staged.is_dir():
                        staged.chmod(0o755)
                    _swap_in(staged, live, self.dir / "old" / group)
                elif live.exists():
                    live.rename(self.dir / "old" / group)
            return True
        finally:
            self.abort()

    def __enter__(self) -> Staging:
        return self

    def __exit__(self, *exc: object) -> None:
        self.abort()  # whatever happened before finish(): no staging folder is left behind

    def abort(self) -> None:
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None


def replace_tree(target: Path, files: Mapping[str, bytes],
                 private: frozenset[str] = frozenset(),
                 known: Mapping[str, str] | None = None) -> bool:
    """Make `target` hold exactly `files` (see Staging); False when it already does."""
    return Staging(target, known, private).finish(files)
