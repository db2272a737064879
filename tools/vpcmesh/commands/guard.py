from __future__ import annotations

from pathlib import Path

from vpcmesh.errors import VpcmeshError
from vpcmesh.guard import check, tracked_files


def guard(root: Path, files: tuple[str, ...]) -> int:
    problems = check(root, list(files) or tracked_files(root))
    if problems:
        raise VpcmeshError(problems)
    return 0
