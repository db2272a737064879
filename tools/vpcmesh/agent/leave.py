"""A removed node leaves on its own: when its bundle is gone from the source and a removal
notice signed with the mesh's key stands in its place (bundle/removal.py), its agent
uninstalls itself (agent/uninstall.py) instead of failing every two minutes forever.

Only a signed notice does it. A bundle that is merely missing proves nothing: whoever
controls the bundle host could otherwise make VMs leave. A notice for an older life of the
node (one removed, then added again, whose versions continue above the notice) is ignored."""

from __future__ import annotations

import logging
from pathlib import Path

from vpcmesh.agent import trust
from vpcmesh.agent.sources import Source
from vpcmesh.agent.state import AgentState
from vpcmesh.bundle import names, removal
from vpcmesh.errors import VpcmeshError

log = logging.getLogger("vpcmesh.agent")


def notice(source: Source, host: str, trust_file: Path, state: AgentState
           ) -> removal.Removal | None:
    """The verified notice that this node was removed, or None when the source has none or
    it does not apply to what is installed; a notice that does not verify is an error."""
    try:
        data = source.read(host, names.REMOVAL, removal.MAX_NOTICE)
        signature = source.read(host, names.REMOVAL_SIGNATURE, 4096)
    except VpcmeshError:
        return None  # no notice: the node may simply not be published yet
    where = source.where(host, names.REMOVAL)
    found = removal.verify(data, signature, trust.trusted(source, host, trust_file),
                           str(trust_file), where)
    if found.hostname != host or (state.mesh and found.mesh != state.mesh):
        raise VpcmeshError.at(where, f"a removal notice for {found.hostname} of mesh"
                                     f" {found.mesh}, not for this node; ignoring it")
    if state.version > found.after_version:
        log.info("%s: a removal notice for version %d and before; version %d is installed",
                 where, found.after_version, state.version)
        return None
    return found

