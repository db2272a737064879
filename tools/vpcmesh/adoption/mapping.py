"""The mapping file of `vpcmesh import`: what the old setup cannot tell (the mesh's name and
admins, the hub, each node's cloud, addresses and age recipient)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vpcmesh.adoption.easyrsa import read_bytes
from vpcmesh.errors import Location, Problem, VpcmeshError
from vpcmesh.model import schema
from vpcmesh.model.yamlio import Document, load


@dataclass(frozen=True)
class NodeEntry:
    name: str
    cloud: str
    region: str
    private_address: str
    age_recipient: str
    public_address: str | None
    subnets: tuple[str, ...]
    os: str
    services: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class Mapping:
    name: str
    domain: str
    admins: tuple[str, ...]
    hub: str
    nodes: dict[str, NodeEntry]
    doc: Document

    def at(self, *path: str | int) -> Location:
        return self.doc.at(list(path))


def _entry(name: str, data: dict[str, Any]) -> NodeEntry:
    return NodeEntry(name, data["cloud"], data["region"], data["private_address"],
                     data["age_recipient"], data.get("public_address"),
                     tuple(data.get("subnets", ())), data.get("os", "debian"),
                     tuple((s.get("name"), s.get("port")) for s in data.get("services", ())))


def _todo(doc: Document, value: Any, path: list[str | int]) -> Iterator[Location]:
    """Where a draft (--draft-mapping) still says TODO, keys included."""
    if value == "TODO":
        yield doc.at(path)
    elif isinstance(value, dict):
        for key, item in value.items():
            if key == "TODO":
                yield doc.key_at(path, key)
            yield from _todo(doc, item, [*path, key])
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _todo(doc, item, [*path, index])


def read_mapping(path: Path) -> Mapping:
    doc = load(str(path), read_bytes(path))
    problems = schema.validate(doc, "import")
    if problems:
        raise VpcmeshError(problems)
    data = doc.data
    todo = list(_todo(doc, data, []))
    if todo:
        raise VpcmeshError([Problem(at, "TODO: fill this in") for at in todo])
    if data["hub"] not in data["nodes"]:
        raise VpcmeshError.at(doc.at(["hub"]), f"'{data['hub']}' is not one of the nodes below;"
                                               " add it there with its addresses")
    nodes = {name: _entry(name, entry) for name, entry in data["nodes"].items()}
    mesh = data["mesh"]
    return Mapping(mesh["name"], mesh["domain"], tuple(mesh["admins"]), data["hub"], nodes, doc)
