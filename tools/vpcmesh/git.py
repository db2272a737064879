"""The one wrapper around git (GitPython)."""

from __future__ import annotations

from pathlib import Path

import git
from git.exc import GitCommandError, InvalidGitRepositoryError, NoSuchPathError

from vpcmesh.errors import VpcmeshError


def head_commit(root: Path) -> str | None:
    """The commit checked out at `root` (a mesh may sit in a subfolder), or None."""
    try:
        return str(git.Repo(root, search_parent_directories=True).head.commit.hexsha)
    except (InvalidGitRepositoryError, NoSuchPathError, ValueError):
        return None


class Mirror:
    """A local bare copy of a remote's branch, fetched on demand; reads files of its tip."""

    def __init__(self, cache: Path, url: str, ref: str) -> None:
        self.url, self.ref = url, ref
        if (cache / "HEAD").exists():
            self.repo = git.Repo(cache)
        else:
            cache.mkdir(parents=True, exist_ok=True)
            self.repo = git.Repo.init(cache, bare=True)

    def fetch(self) -> str:
        """Fetch the ref; returns the commit it points at."""
        target = f"refs/vpcmesh/{self.ref}"
        try:
            self.repo.git.fetch("--quiet", "--no-tags", "--force", "--depth", "1", self.url,
                                f"+refs/heads/{self.ref}:{target}")
        except GitCommandError as exc:
            detail = (exc.stderr or "").strip().replace("\n", " ")
            raise VpcmeshError.at(self.url, f"cannot fetch branch '{self.ref}': {detail}"
                                  ) from None
        return str(self.repo.commit(target).hexsha)

    def read(self, commit: str, path: str) -> bytes | None:
        try:
            blob = self.repo.commit(commit).tree / path
        except KeyError:
            return None
        data: bytes = blob.data_stream.read()
        return data
