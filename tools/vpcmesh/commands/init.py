from __future__ import annotations

import logging
from pathlib import Path

from vpcmesh import git
from vpcmesh.authoring import scaffold
from vpcmesh.authoring.init import NewMesh, clear, init

log = logging.getLogger(__name__)


def init_mesh(root: Path, new: NewMesh | None, pin: scaffold.ToolPin | None = None,
              replace: bool = False) -> int:
    if replace:
        for rel in clear(root):
            log.info("removed %s", rel)
    fresh = new is not None and not git.in_repository(root)
    for rel in init(root, new, pin):
        log.info("wrote %s", rel)
    if fresh and new is not None and not scaffold.is_template(root):
        commit = git.first_commit(root, f"vpcmesh init: the mesh {new.name}")
        log.warning("created the git repository %s (branch main, commit %s); add its"
                    " remote, push, and add nodes with 'vpcmesh node add'", root, commit[:12])
    return 0
