"""One command at a time writes a repository (render, sign, pki, publish): two renders at
once could leave build/ holding certificates mesh/pki does not record. Light on imports:
a no-op render takes the lock too."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from vpcmesh.compiler.staging import remove_leftovers
from vpcmesh.errors import VpcmeshError
from vpcmesh.fsio import exclusive
from vpcmesh.model.layout import BUILD_DIR

LOCK = ".vpcmesh.lock"


@contextmanager
def writing(root: Path) -> Iterator[None]:
    """Hold the repository's lock (or fail at once, naming it); under it, remove what an
    interrupted run left beside build/."""
    if not root.is_dir():
        raise VpcmeshError.at(str(root), "no such folder")
    with exclusive(root / LOCK) as mine:
        if not mine:
            raise VpcmeshError.at(LOCK, "another vpcmesh command is writing this repository;"
                                        " let it finish, then run this again")
        remove_leftovers(root / BUILD_DIR)
        yield
