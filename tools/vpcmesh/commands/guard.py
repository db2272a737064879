from __future__ import annotations

from pathlib import Path

from vpcmesh import git
from vpcmesh.authoring.guard import check
from vpcmesh.errors import VpcmeshError


def guard(root: Path, files: tuple[str, ...]) -> int:
    problems = check(root, list(files) or git.tracked_files(root))
    if problems:
        raise VpcmeshError(problems)
    return 0
