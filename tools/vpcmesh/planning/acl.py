"""Service ACLs (README, "Least privilege"): which sources may open a connection to which
service, worked out per node for its nftables rules.

A source is known by its address: a hub's OpenVPN accepts a packet from a spoke only with a
source inside that spoke's iroutes (its subnets) or its tunnel address, so a node's
addresses are its subnets and its tunnel address on every hub's network.

Each node enforces what reaches it from the tunnel: its own services, on input (the VM) and
forward (its VPC behind it). A hub also enforces every other node's services on what it
forwards from tunnel to tunnel, which it sees whenever OpenVPN's client-to-client is off
(and always with two hubs, or with DCO); with client-to-client on, the node hosting the
service still enforces it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Network, collapse_addresses

from vpcmesh.model.aclchecks import GROUP, NODE
from vpcmesh.model.types import AclDefault, Node, Service
from vpcmesh.planning import dns
from vpcmesh.planning.addresses import Plan


@dataclass(frozen=True)
class ServiceRule:
    service: str
    host: str  # the node that hosts it
    proto: str
    port: int
    destinations: tuple[IPv4Network, ...]  # its private address and tunnel addresses
    sources: tuple[IPv4Network, ...] | None  # None: every node
    allow: tuple[str, ...]  # as written, for people

    @property
    def label(self) -> str:
        return f"{self.service} on {self.host} ({self.proto}/{self.port})"


@dataclass(frozen=True)
class NodeAcl:
    deny: bool  # acl.default deny
    rules: tuple[ServiceRule, ...]  # what the node enforces: in an open mesh, allow lists only
    # deny: the hubs' resolver (mesh.yaml dns.resolver) stays reachable on port 53
    resolvers: tuple[IPv4Network, ...] = ()

    @property
    def needed(self) -> bool:
        """Whether the node gets any rules: not in an open mesh without an allow list."""
        return self.deny or bool(self.rules)


def _tunnel(plan: Plan, node: Node) -> list[IPv4Network]:
    """`node`'s address on every hub's tunnel network."""
    return [IPv4Network(plan.tunnel_address(node, hub)) for hub in plan.hubs]


def _restricted(plan: Plan, service: Service) -> bool:
    """Whether a service has rules of its own: every one when deny, else an allow list."""
    return plan.mesh.acl_default is AclDefault.DENY or bool(service.allow)


def addresses_of(plan: Plan, node: Node) -> tuple[IPv4Network, ...]:
    """Every source address `node`'s traffic can carry into the mesh."""
    return _collapse([*node.subnets, *_tunnel(plan, node)])


def _collapse(networks: Iterable[IPv4Network]) -> tuple[IPv4Network, ...]:
    return tuple(collapse_addresses(networks))


def _sources(plan: Plan, allow: tuple[str, ...]) -> tuple[IPv4Network, ...] | None:
    if not allow:
        return None
    found: list[IPv4Network] = []
    for entry in allow:
        if entry.startswith(NODE):
            found += [a for n in plan.nodes if n.hostname == entry.removeprefix(NODE)
                      for a in addresses_of(plan, n)]
        elif entry.startswith(GROUP):
            found += [a for n in plan.nodes if entry.removeprefix(GROUP) in n.groups
                      for a in addresses_of(plan, n)]
        else:
            found.append(IPv4Network(entry))
    return _collapse(found)


def rule_of(plan: Plan, node: Node, service: Service) -> ServiceRule:
    return ServiceRule(service.name, node.hostname, service.proto, service.port,
                       _collapse([IPv4Network(node.private_address), *_tunnel(plan, node)]),
                       _sources(plan, service.allow), service.allow)


def node_acl(plan: Plan, node: Node) -> NodeAcl:
    """A spoke's own services; a hub's, every node's (it forwards between spokes)."""
    deny = plan.mesh.acl_default is AclDefault.DENY
    hosts = [n for n in plan.nodes if node.is_hub or n.hostname == node.hostname]
    rules = tuple(rule_of(plan, n, s) for n in hosts for s in n.services
                  if _restricted(plan, s))
    resolvers: tuple[IPv4Network, ...] = ()
    if deny and plan.mesh.dns_resolver and node.is_hub:
        resolvers = _collapse(IPv4Network(a) for a in dns.resolver_hubs(plan))
    return NodeAcl(deny, rules, resolvers)


@dataclass(frozen=True)
class AclChange:
    op: str  # "+", "-", "~"
    what: str  # a service, or "acl.default"
    detail: str

    def __str__(self) -> str:
        return f"{self.op} {self.what}: {self.detail}"


def _enforced(plan: Plan) -> dict[str, ServiceRule]:
    """Each service with rules of its own, by label."""
    rules = (rule_of(plan, n, s) for n in plan.nodes for s in n.services
             if _restricted(plan, s))
    return {r.label: r for r in rules}


def _who(rule: ServiceRule) -> str:
    return ", ".join(rule.allow) if rule.allow else "every node"


def changes(base: Plan | None, head: Plan) -> list[AclChange]:
    """What `vpcmesh plan` says of the ACLs: the default, each service's allow list, and
    the addresses a list stands for (a node joining a group widens it)."""
    out: list[AclChange] = []
    old_default = base.mesh.acl_default if base else AclDefault.OPEN
    if old_default is not head.mesh.acl_default:
        out.append(AclChange("~", "acl.default", f"{head.mesh.acl_default}"
                                                 f" (was {old_default})"))
    before, after = _enforced(base) if base else {}, _enforced(head)
    for label in sorted(set(before) | set(after)):
        old, new = before.get(label), after.get(label)
        if new is None and old is not None:
            out.append(AclChange("-", label, f"was {_who(old)}"))
        elif old is None and new is not None:
            out.append(AclChange("+", label, _who(new)))
        elif old is not None and new is not None and old != new:
            was = _who(old)
            out.append(AclChange("~", label, _who(new) + (f" (was {was})" if was != _who(new)
                                                          else _widened(old, new))))
    return out


def _widened(old: ServiceRule, new: ServiceRule) -> str:
    gained = [str(n) for n in new.sources or () if n not in (old.sources or ())]
    lost = [str(n) for n in old.sources or () if n not in (new.sources or ())]
    said = ([f"now also {', '.join(gained)}"] if gained else []) + (
        [f"no longer {', '.join(lost)}"] if lost else [])
    return f" ({'; '.join(said)})" if said else " (its addresses moved)"
