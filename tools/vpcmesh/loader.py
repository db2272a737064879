"""Read mesh/mesh.yaml and nodes/*.yaml into the model, collecting every problem at once."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vpcmesh import checks, schema
from vpcmesh.cache import NO_CACHE, ParseCache, key
from vpcmesh.errors import Location, Problem, VpcmeshError
from vpcmesh.layout import MESH_FILE, NODES_DIR
from vpcmesh.model import Mesh, Node, mesh_from, node_from
from vpcmesh.yamlio import Document, load


@dataclass(frozen=True)
class Inventory:
    mesh: Mesh
    nodes: tuple[Node, ...]  # sorted by hostname
    warnings: tuple[Problem, ...]

    @property
    def hub(self) -> Node:
        return next(n for n in self.nodes if n.is_hub)


def _node_paths(root: Path, problems: list[Problem]) -> list[str]:
    folder = root / NODES_DIR
    if not folder.is_dir():
        problems.append(Problem(Location(NODES_DIR), "missing folder: a mesh keeps one file per"
                                                     " VM in nodes/<hostname>.yaml"))
        return []
    paths = []
    for entry in sorted(folder.iterdir()):
        rel = f"{NODES_DIR}/{entry.name}"
        if entry.name.startswith("."):
            continue
        if entry.suffix != ".yaml" or not entry.is_file():
            problems.append(Problem(Location(rel), "not a node file; nodes/ holds only"
                                                   " <hostname>.yaml files"))
            continue
        paths.append(rel)
    return paths


def _parse(root: Path, rel: str, kind: str, problems: list[Problem],
           cache: ParseCache) -> Document | None:
    try:
        raw = (root / rel).read_bytes()
    except OSError:
        raw = b""
    name = key(kind, raw)
    data = cache.get(name)
    if data is not None:  # these bytes parsed and passed the schema before
        return Document(rel, data, raw.decode())
    try:
        doc = load(root, rel)
    except VpcmeshError as exc:
        problems.extend(exc.problems)
        return None
    found = schema.validate(doc, kind)
    problems.extend(found)
    if found:
        return None
    cache.put(name, doc.data)
    return doc


def load_inventory(root: Path, cache: ParseCache = NO_CACHE) -> Inventory:
    """The validated model; raises VpcmeshError listing every problem (warnings included)."""
    problems: list[Problem] = []
    mesh: Mesh | None = None
    if not (root / MESH_FILE).is_file():
        problems.append(Problem(Location(MESH_FILE), "missing file: run 'vpcmesh init' or"
                                                     " create mesh/mesh.yaml"))
    else:
        mesh_doc = _parse(root, MESH_FILE, "mesh", problems, cache)
        if mesh_doc is not None:
            mesh = mesh_from(mesh_doc)
            problems += checks.check_mesh(mesh)
    nodes = []
    for rel in _node_paths(root, problems):
        doc = _parse(root, rel, "node", problems, cache)
        if doc is not None:
            node = node_from(doc)
            nodes.append(node)
            problems += checks.check_node(node, mesh)
    nodes.sort(key=lambda n: n.hostname)
    if (root / NODES_DIR).is_dir():
        problems += checks.check_mesh_wide(mesh, nodes)
    if any(p.is_error for p in problems) or mesh is None:
        raise VpcmeshError(problems)
    return Inventory(mesh, tuple(nodes), tuple(p for p in problems if not p.is_error))
