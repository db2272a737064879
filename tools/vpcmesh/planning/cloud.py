"""What each VPC needs from its cloud for the mesh to work, from the node files alone:
route entries to the mesh VM, security-group rules, the source/destination check, and the
limits worth knowing. Pure data; commands/cloud.py shows it, rendering/terraform.py writes
it for the providers, and `plan` compares two of them."""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network

from vpcmesh.model.types import Node
from vpcmesh.planning import acl
from vpcmesh.planning.addresses import Plan

# Where the cloud has a source/destination check on an instance's NIC, which drops packets a
# VM forwards for others; checked against each cloud's documentation (README: Cloud side).
SOURCE_DEST_CHECK = {
    "aliyun": "no switch to turn off: a custom route entry whose next hop is the ECS instance"
              " (Instance) is the documented way",
    "tencent": "no switch to turn off: a route entry whose next hop is the CVM (NORMAL_CVM,"
               " its private IP) is the documented way",
    "huawei": "turn OFF the Source/Destination Check of the ECS's network interface (console:"
              " the ECS's Network Interfaces), or the VPC drops what it forwards",
}
UNKNOWN_CLOUD = ("if this cloud checks source/destination addresses on a NIC (AWS, Huawei"
                 " and others do), turn it off for this VM")


@dataclass(frozen=True, order=True)
class RouteEntry:
    destination: IPv4Network
    next_hop: IPv4Address  # the mesh VM's private address
    why: str


@dataclass(frozen=True, order=True)
class IngressRule:
    protocol: str  # "udp", "tcp"
    port: int
    source: IPv4Network
    why: str


@dataclass(frozen=True)
class VpcSide:
    node: str
    cloud: str
    region: str
    instance: IPv4Address  # the mesh VM, the next hop of every route entry
    routes: tuple[RouteEntry, ...]
    rules: tuple[IngressRule, ...]  # on the mesh VM's security group
    source_dest_check: str
    notes: tuple[str, ...]


@dataclass(frozen=True)
class CloudPlan:
    mesh: str
    vpcs: tuple[VpcSide, ...]  # one per node, by hostname


ANYWHERE = IPv4Network("0.0.0.0/0")


def _routes(node: Node, plan: Plan) -> list[RouteEntry]:
    """Every other node's subnets and the tunnel network, to this VPC's mesh VM: a VM of the
    VPC reaches the other VPCs, and answers a mesh VM whose packets carry its tunnel
    address."""
    out = {RouteEntry(plan.mesh.vpn.network, node.private_address, "the tunnel network")}
    for other in plan.nodes:
        if other.hostname != node.hostname:
            out.update(RouteEntry(net, node.private_address, f"{other.hostname}'s subnet")
                       for net in other.subnets)
    return sorted(out)


def _rules(node: Node, plan: Plan) -> list[IngressRule]:
    vpn = plan.mesh.vpn
    out: set[IngressRule] = set()
    if node.is_hub:
        unknown = [s.hostname for s in plan.spokes if not s.public_address]
        out.update(IngressRule(vpn.proto, vpn.port, IPv4Network(f"{s.public_address}/32"),
                               f"OpenVPN from {s.hostname}")
                   for s in plan.spokes if s.public_address)
        if unknown:
            out.add(IngressRule(vpn.proto, vpn.port, ANYWHERE,
                                f"OpenVPN from {', '.join(unknown)}: no public_address in"
                                " their node files, so from anywhere (give it to narrow this)"))
    # Every hub's tunnel network: a node reaching this one through a further hub carries
    # its address there.
    remote = sorted({net for other in plan.nodes if other.hostname != node.hostname
                     for net in other.subnets} | {plan.network(h) for h in plan.hubs})
    for service in node.services:
        # A service's allow list (README, "Least privilege") narrows its security group too.
        sources = acl.rule_of(plan, node, service).sources
        out.update(IngressRule(service.proto, service.port, net,
                               f"{service.name} from {', '.join(service.allow)}"
                               if service.allow else f"{service.name} from the mesh")
                   for net in (remote if sources is None else sources))
    return sorted(out)


def _notes(node: Node, routes: list[RouteEntry]) -> list[str]:
    notes = [f"{len(routes)} custom route entries in this VPC's route table: within the"
             " cloud's per-table quota? (the console's quota page says)",
             f"the other VMs of this VPC send their mesh traffic to {node.private_address}: its"
             " security group must accept them (inbound from this VPC's own subnets), and"
             " theirs must accept the remote subnets and the tunnel network"]
    if node.services:
        names = ", ".join(f"{s.name}:{s.port}" for s in node.services)
        notes.append(f"the services here ({names}) must listen on {node.private_address} and"
                     " admit the remote subnets and the tunnel network in their own ACLs"
                     " (pg_hba.conf, Redis bind and protected-mode, Elasticsearch"
                     " network.host)")
    return notes


def cloud_plan(plan: Plan) -> CloudPlan:
    vpcs = []
    for node in plan.nodes:
        routes = _routes(node, plan)
        vpcs.append(VpcSide(node.hostname, node.cloud, node.region, node.private_address,
                            tuple(routes), tuple(_rules(node, plan)),
                            SOURCE_DEST_CHECK.get(node.cloud, UNKNOWN_CLOUD),
                            tuple(_notes(node, routes))))
    return CloudPlan(plan.mesh.name, tuple(vpcs))


@dataclass(frozen=True)
class CloudChange:
    node: str
    added: tuple[str, ...]
    removed: tuple[str, ...]


def _items(side: VpcSide) -> set[str]:
    return ({f"route {r.destination} -> {r.next_hop}" for r in side.routes}
            | {f"allow {r.protocol}/{r.port} from {r.source}" for r in side.rules})


def compare(base: CloudPlan | None, head: CloudPlan) -> list[CloudChange]:
    """What a pull request asks of the clouds: per VPC, entries and rules to add or remove."""
    before = {v.node: _items(v) for v in base.vpcs} if base else {}
    after = {v.node: _items(v) for v in head.vpcs}
    out = []
    for node in sorted(set(before) | set(after)):
        old, new = before.get(node, set()), after.get(node, set())
        if old != new:
            out.append(CloudChange(node, tuple(sorted(new - old)), tuple(sorted(old - new))))
    return out
