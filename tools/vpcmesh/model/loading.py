"""Read mesh/mesh.yaml and nodes/*.yaml into the model, collecting every problem at once."""

from __future__ import annotations

from dataclasses import dataclass

from vpcmesh.errors import Location, Problem, VpcmeshError
from vpcmesh.model import checks, schema
from vpcmesh.model.cache import key
from vpcmesh.model.layout import MESH_FILE, NODES_DIR
from vpcmesh.model.snapshot import Kind, Snapshot
from vpcmesh.model.types import Mesh, Node, mesh_from, node_from
from vpcmesh.model.yamlio import Document, load


@dataclass(frozen=True)
class Inventory:
    mesh: Mesh
    nodes: tuple[Node, ...]  # sorted by hostname
    warnings: tuple[Problem, ...]

    @property
    def hub(self) -> Node:
        """The hub on vpn.network: the one every spoke prefers."""
        return next(n for n in self.nodes if n.is_hub and n.tunnel_network is None)

    @property
    def hubs(self) -> tuple[Node, ...]:
        """Every hub, in the order spokes prefer them: the hub on vpn.network, then the
        others by tunnel network."""
        others = [(n.tunnel_network, n) for n in self.nodes if n.is_hub and n.tunnel_network]
        return (self.hub, *(n for _, n in sorted(others, key=lambda pair: pair[0])))


def _node_paths(snap: Snapshot, problems: list[Problem]) -> list[str]:
    if not snap.is_folder(NODES_DIR):
        problems.append(Problem(Location(NODES_DIR), "missing folder: a mesh keeps one file per"
                                                     " VM in nodes/<hostname>.yaml"))
        return []
    paths = []
    for name, kind in snap.children(NODES_DIR):
        rel = f"{NODES_DIR}/{name}"
        if name.startswith(".") or kind in (Kind.LINK, Kind.OTHER):
            continue  # links: Snapshot.refused() reports them
        if not name.endswith(".yaml") or kind is not Kind.FILE:
            problems.append(Problem(Location(rel), "not a node file; nodes/ holds only"
                                                   " <hostname>.yaml files"))
        else:
            paths.append(rel)
    return paths


def _parse(snap: Snapshot, rel: str, kind: str, problems: list[Problem]) -> Document | None:
    raw = snap.read(rel)
    name = key(kind, raw)
    data = snap.cache.get(name)
    if data is not None:  # these bytes parsed and passed the schema before
        return Document(rel, data, raw.decode())
    try:
        doc = load(rel, raw)
    except VpcmeshError as exc:
        problems.extend(exc.problems)
        return None
    found = schema.validate(doc, kind)
    problems.extend(found)
    if found:
        return None
    snap.cache.put(name, doc.data)
    return doc


def load_inventory(snap: Snapshot) -> Inventory:
    """The validated model; raises VpcmeshError listing every problem (warnings included)."""
    problems: list[Problem] = snap.refused()
    mesh: Mesh | None = None
    if not snap.is_file(MESH_FILE):
        problems.append(Problem(Location(MESH_FILE), "missing file: run 'vpcmesh init' or"
                                                     " create mesh/mesh.yaml"))
    else:
        mesh_doc = _parse(snap, MESH_FILE, "mesh", problems)
        if mesh_doc is not None:
            mesh = mesh_from(mesh_doc)
            problems += checks.check_mesh(mesh)
    nodes = []
    for rel in _node_paths(snap, problems):
        doc = _parse(snap, rel, "node", problems)
        if doc is not None:
            node = node_from(doc)
            nodes.append(node)
            problems += checks.check_node(node, mesh)
    nodes.sort(key=lambda n: n.hostname)
    if snap.is_folder(NODES_DIR):
        problems += checks.check_mesh_wide(mesh, nodes)
    if any(p.is_error for p in problems) or mesh is None:
        raise VpcmeshError(problems)
    return Inventory(mesh, tuple(nodes), tuple(p for p in problems if not p.is_error))
