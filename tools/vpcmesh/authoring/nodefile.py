"""Writing and removing node files (`vpcmesh node add/remove`), checked like a render."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vpcmesh.authoring import scaffold
from vpcmesh.errors import Location, Problem, VpcmeshError
from vpcmesh.fsio import replace_file
from vpcmesh.model import schema
from vpcmesh.model.cache import ParseCache
from vpcmesh.model.layout import NODES_DIR
from vpcmesh.model.loading import load_inventory
from vpcmesh.model.snapshot import Kind, read_snapshot
from vpcmesh.model.state import read_state
from vpcmesh.model.yamlio import Document
from vpcmesh.planning.addresses import make_plan
from vpcmesh.rendering.render import environment

_OPTIONS = {"hostname": "HOST", "cloud": "--cloud", "region": "--region", "role": "--role",
            "public_address": "--public-ip", "private_address": "--private-ip",
            "subnets": "--subnet", "age_recipient": "--age-recipient", "services": "--service",
            "vpn_address": "--vpn-ip", "os": "--os"}


@dataclass(frozen=True)
class NewNode:
    hostname: str
    role: str
    cloud: str
    region: str
    private_address: str
    subnets: tuple[str, ...]
    age_recipient: str
    public_address: str | None = None
    vpn_address: str | None = None
    services: tuple[tuple[str, int], ...] = ()
    os: str = "debian"

    def data(self) -> dict[str, object]:
        out: dict[str, object] = {
            "hostname": self.hostname, "cloud": self.cloud, "region": self.region,
            "role": self.role, "private_address": self.private_address,
            "subnets": list(self.subnets), "age_recipient": self.age_recipient}
        if self.public_address:
            out["public_address"] = self.public_address
        if self.vpn_address:
            out["vpn_address"] = self.vpn_address
        if self.os != "debian":
            out["os"] = self.os
        if self.services:
            out["services"] = [{"name": n, "port": p} for n, p in self.services]
        return out


def _option(message: str) -> str:
    field = message.split(":")[0].split("[")[0].split(".")[0]
    return _OPTIONS.get(field, "HOST")


def add(root: Path, node: NewNode) -> str:
    """Write nodes/HOST.yaml if the mesh stays valid with it; nothing is written otherwise."""
    rel = f"{NODES_DIR}/{node.hostname}.yaml"
    data = node.data()
    problems = [Problem(Location(_option(p.message)), p.message)
                for p in schema.validate(Document(rel, data, raw=data), "node")]
    if problems:
        raise VpcmeshError(problems)
    if (root / rel).exists():
        raise VpcmeshError.at(rel, f"already exists: '{node.hostname}' is in the mesh; edit the"
                                   " file or remove it with 'vpcmesh node remove'")
    text = environment().get_template("node.yaml.j2").render(
        node=node, schema_dir=scaffold.schema_dir(root), origin="node add")
    # The whole mesh, checked with the node in it, before anything is written.
    trial = read_snapshot(root, ParseCache(root)).with_files({rel: text.encode()})
    make_plan(load_inventory(trial), read_state(trial))
    replace_file(root / rel, text.encode())
    return rel


def remove(root: Path, hostname: str) -> str:
    rel = f"{NODES_DIR}/{hostname}.yaml"
    snap = read_snapshot(root, ParseCache(root))
    if snap.kinds.get(rel) is not Kind.FILE:
        raise VpcmeshError.at(rel, f"no such node '{hostname}'")
    inventory = load_inventory(snap)
    is_hub = any(n.is_hub and n.hostname == hostname for n in inventory.nodes)
    if is_hub and len(inventory.nodes) > 1:
        raise VpcmeshError.at(rel, f"'{hostname}' is the hub; make another node the hub first")
    (root / rel).unlink()
    return rel
