"""Planning: decide every node's tunnel address, stably and deterministically."""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network

from vpcmesh.errors import Problem, VpcmeshError
from vpcmesh.model.layout import STATE_FILE
from vpcmesh.model.loading import Inventory
from vpcmesh.model.state import State
from vpcmesh.model.types import Mesh, Node


@dataclass(frozen=True)
class Plan:
    mesh: Mesh
    hubs: tuple[Node, ...]  # in the order spokes prefer them; hubs[0] serves vpn.network
    nodes: tuple[Node, ...]  # sorted by hostname
    addresses: dict[str, IPv4Address]  # in vpn.network

    @property
    def hub(self) -> Node:
        return self.hubs[0]

    @property
    def spokes(self) -> tuple[Node, ...]:
        return tuple(n for n in self.nodes if not n.is_hub)

    def network(self, hub: Node) -> IPv4Network:
        """The tunnel network this hub's server hands out."""
        return hub.tunnel_network or self.mesh.vpn.network

    def tunnel_address(self, node: Node, hub: Node) -> IPv4Address:
        """`node`'s address on `hub`'s tunnel: the same host part as in vpn.network, so one
        allocation serves every hub. A hub has the first address of its own network; the
        first hub, as a client of another, takes that hub's host part, free there."""
        if node.hostname == hub.hostname:
            return self.network(hub).network_address + 1
        own = self.addresses[node.hostname]
        if node.hostname == self.hub.hostname:
            own = self.addresses[hub.hostname]
        offset = int(own) - int(self.mesh.vpn.network.network_address)
        return self.network(hub).network_address + offset

    def links(self, node: Node) -> tuple[tuple[int, Node], ...]:
        """The hubs this node is an OpenVPN client of, with their place in the order: every
        hub for a spoke; for a hub, the other hubs (none in a one-hub mesh)."""
        return tuple((i, h) for i, h in enumerate(self.hubs) if h.hostname != node.hostname
                     and (not node.is_hub or len(self.hubs) > 1))


def allocate(inventory: Inventory, previous: State) -> dict[str, IPv4Address]:
    """Hub first; pinned addresses next; then every node keeps the address the state file
    gave it; only new nodes get the lowest free address, so no node ever moves another."""
    network = inventory.mesh.vpn.network
    first = network.network_address + 1
    hub = inventory.hub
    result: dict[str, IPv4Address] = {hub.hostname: first}
    owner: dict[IPv4Address, str] = {first: hub.hostname}
    pinned = {n.hostname: n.vpn_address for n in inventory.nodes
              if n.vpn_address is not None and n.hostname != hub.hostname}
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
    return Plan(inventory.mesh, inventory.hubs, inventory.nodes, addresses)
