"""Planning: decide every node's tunnel address, stably and deterministically."""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address

from vpcmesh.errors import Problem, VpcmeshError
from vpcmesh.model.layout import STATE_FILE
from vpcmesh.model.loading import Inventory
from vpcmesh.model.state import State
from vpcmesh.model.types import Mesh, Node


@dataclass(frozen=True)
class Plan:
    mesh: Mesh
    hub: Node
    nodes: tuple[Node, ...]  # sorted by hostname
    addresses: dict[str, IPv4Address]

    @property
    def spokes(self) -> tuple[Node, ...]:
        return tuple(n for n in self.nodes if not n.is_hub)


def allocate(inventory: Inventory, previous: State) -> dict[str, IPv4Address]:
    """Hub first; pinned addresses next; then every node keeps the address the state file
    gave it; only new nodes get the lowest free address, so no node ever moves another."""
    network = inventory.mesh.vpn.network
    first = network.network_address + 1
    hub = inventory.hub
    result: dict[str, IPv4Address] = {hub.hostname: first}
    owner: dict[IPv4Address, str] = {first: hub.hostname}
    pinned = {n.hostname: n.vpn_address for n in inventory.nodes
              if n.vpn_address is not None and not n.is_hub}
    by_name = {n.hostname: n for n in inventory.nodes}
    present = {n.hostname for n in inventory.nodes}
    kept_by = {a: h for h, a in previous.addresses.items() if h in present and h not in pinned}
    problems = []
    for host, address in pinned.items():
        holder = kept_by.get(address)
        if holder is not None and holder != hub.hostname:
            problems.append(Problem(by_name[host].doc.at(["vpn_address"]),
                                    f"vpn_address {address} is allocated to '{holder}'"
                                    f" in {STATE_FILE}; pick a free address"))
        result[host] = address
        owner[address] = host
    for node in inventory.nodes:
        kept = previous.addresses.get(node.hostname)
        if node.hostname in result or kept is None:
            continue
        if first < kept < network.broadcast_address and kept not in owner:
            result[node.hostname] = kept
            owner[kept] = node.hostname
    candidate = int(first) + 1
    last = int(network.broadcast_address) - 1
    for node in inventory.nodes:
        if node.hostname in result:
            continue
        while candidate <= last and IPv4Address(candidate) in owner:
            candidate += 1
        if candidate > last:
            problems.append(Problem(node.doc.at(["hostname"]),
                                    f"no tunnel address left for '{node.hostname}': vpn.network"
                                    f" {network} has room for {network.num_addresses - 3} spoke(s);"
                                    " widen it in mesh/mesh.yaml"))
            continue
        result[node.hostname] = IPv4Address(candidate)
        owner[IPv4Address(candidate)] = node.hostname
    if problems:
        raise VpcmeshError(problems)
    return dict(sorted(result.items()))


def make_plan(inventory: Inventory, previous: State) -> Plan:
    addresses = allocate(inventory, previous)
    return Plan(inventory.mesh, inventory.hub, inventory.nodes, addresses)
