from __future__ import annotations

import logging
from pathlib import Path

from vpcmesh.authoring.init import NewMesh, init

log = logging.getLogger(__name__)


def init_mesh(root: Path, new: NewMesh | None) -> int:
    for rel in init(root, new):
        log.info("wrote %s", rel)
    return 0
