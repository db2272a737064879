"""Semantic checks over the whole mesh: each returns problems, none raises."""

from __future__ import annotations

import re
from collections.abc import Iterable
from ipaddress import IPv4Address, IPv4Network
from pathlib import PurePosixPath

from vpcmesh.errors import Location, Problem, Severity
from vpcmesh.model.aclchecks import check_acls
from vpcmesh.model.layout import MESH_FILE, NODES_DIR
from vpcmesh.model.types import Mesh, Node
from vpcmesh.model.yamlio import Ref
from vpcmesh.secrets.agekeys import valid_recipient

# Each hub runs an OpenVPN server and every other node is a client of each hub (README,
# "Two hubs"): the node count a hub serves, and the tunnels each node keeps, grow with it.
MAX_HUBS = 4
_BAD_CHECKSUM = ("bad age recipient checksum (a mistyped character?); copy it again from"
                 " 'age-keygen -y KEYFILE'")


def host_bits(text: str, where: Ref, what: str, host_hint: bool = True) -> list[Problem]:
    network = IPv4Network(text, strict=False)
    if str(network) == text:
        return []
    hint = f" (or {text.split('/')[0]}/32 for the single host)" if host_hint else ""
    return [Problem(where.loc(), f"{what}: {text} has host bits set; use {network}{hint}")]


def check_mesh(mesh: Mesh) -> list[Problem]:
    doc, vpn = mesh.doc, mesh.vpn
    problems = host_bits(doc.data["vpn"]["network"], doc.ref("vpn", "network"), "vpn.network",
                         host_hint=False)
    for i, text in enumerate(doc.data["vpn"].get("address_space", [])):
        problems += host_bits(text, doc.ref("vpn", "address_space", i),
                              f"vpn.address_space[{i}]", host_hint=False)
    problems += _check_address_space(mesh)
    if vpn.network.prefixlen > 30:
        problems.append(Problem(doc.at(["vpn", "network"]),
                                f"vpn.network: {vpn.network} has no room for a hub and a spoke;"
                                " use /30 or larger"))
    if vpn.keepalive_timeout < 2 * vpn.keepalive_interval:
        problems.append(Problem(doc.at(["vpn", "keepalive", "timeout"]),
                                f"vpn.keepalive.timeout: {vpn.keepalive_timeout} must be at least"
                                f" twice the interval ({2 * vpn.keepalive_interval}), or tunnels"
                                " flap"))
    if vpn.tls_crypt_v2 and vpn.compat.tls_auth:
        problems.append(Problem(doc.at(["vpn", "tls_crypt_v2"]),
                                "vpn.tls_crypt_v2 and vpn.compat.tls_auth exclude each other:"
                                " peers that need tls-auth cannot use tls-crypt-v2; turn one off"))
    for i, admin in enumerate(mesh.admins):
        if not valid_recipient(admin):
            problems.append(Problem(doc.at(["admins", i]), f"admins[{i}]: {_BAD_CHECKSUM}"))
    if mesh.pki.renew_before_days >= mesh.pki.cert_validity_days:
        problems.append(Problem(doc.at(["pki", "renew_before_days"]),
                                "pki.renew_before_days must be shorter than pki.cert_validity_days,"
                                " or every render renews every certificate"))
    return problems + _check_dns_publish(mesh)


_SECRET = re.compile(r"secret|token|password|passwd|(^|_)key$")


def _check_dns_publish(mesh: Mesh) -> list[Problem]:
    """The zone must hold the inner names, and no secret may sit in git: octoDNS reads
    `env/NAME` values from the environment."""
    publish, doc = mesh.dns_publish, mesh.doc
    if publish is None:
        return []
    problems = []
    if not (mesh.domain == publish.zone or mesh.domain.endswith("." + publish.zone)):
        problems.append(Problem(doc.at(["dns", "publish", "zone"]),
                                f"dns.publish.zone: {publish.zone} does not hold {mesh.domain};"
                                " give the inner domain or a parent of it"))
    for name, value in publish.settings:
        if _SECRET.search(name.lower()) and not (isinstance(value, str)
                                                 and value.startswith("env/")):
            problems.append(Problem(doc.at(["dns", "publish", "settings", name]),
                                    f"dns.publish.settings.{name} looks like a secret: never in"
                                    f" git; write env/NAME and set NAME where octodns-sync runs"))
    return problems


def _check_address_space(mesh: Mesh) -> list[Problem]:
    space, doc = mesh.vpn.address_space, mesh.doc
    problems = []
    for i, net in enumerate(space):
        # Containing vpn.network is fine (the tunnel's own route is more specific).
        where = doc.at(["vpn", "address_space", i])
        problems += [Problem(where, f"vpn.address_space[{i}]: {net} overlaps {other}; list"
                                    " each range once")
                     for other in space[:i] if net.overlaps(other)]
    return problems


def _check_in_space(node: Node, mesh: Mesh) -> list[Problem]:
    space = mesh.vpn.address_space
    if not space:
        return []
    listed = ", ".join(str(n) for n in space)
    problems = [Problem(node.doc.at(["subnets", i]),
                        f"subnet {net} of {node.hostname} is outside vpn.address_space"
                        f" ({listed}); add a range that covers it to mesh/mesh.yaml"
                        " (changing the address space restarts the hub)")
                for i, net in enumerate(node.subnets)
                if not any(net.subnet_of(s) for s in space)]
    public = _address(node.public_address)
    if public is not None and any(public in s for s in space):
        problems.append(Problem(node.doc.at(["public_address"]),
                                f"public_address {public} is inside vpn.address_space"
                                f" ({listed}): spokes would route their tunnel into itself"))
    return problems


def _address(text: str | None) -> IPv4Address | None:
    try:
        return IPv4Address(text) if text else None
    except ValueError:
        return None


def _unroutable(net: IPv4Network) -> str | None:
    """Why a range can never be a VPC subnet routed through a tunnel, if it cannot."""
    if net.prefixlen == 0:
        return "the default route (it would send all of this node's traffic into the mesh)"
    for test, what in ((net.is_loopback, "loopback"),
                       (net.is_link_local, "link-local (169.254/16: the cloud's metadata"
                                           " service lives there)"),
                       (net.is_multicast, "multicast"), (net.is_reserved, "reserved"),
                       (net.subnet_of(IPv4Network("0.0.0.0/8")), "'this network' (0/8)")):
        if test:
            return what
    return None


def _check_routing(node: Node) -> list[Problem]:
    problems = []
    for i, net in enumerate(node.subnets):
        why = _unroutable(net)
        if why is not None:
            problems.append(Problem(node.doc.at(["subnets", i]), f"subnets[{i}]: {net} is"
                                    f" {why}; list the VPC subnets behind this node"))
    public = _address(node.public_address)
    if public is not None and (public.is_loopback or public.is_link_local or public.is_multicast
                               or public.is_reserved or public.is_unspecified
                               or public == IPv4Address("255.255.255.255")):
        problems.append(Problem(node.doc.at(["public_address"]), f"public_address {public} is"
                                " not a unicast address spokes can reach; use the address"
                                " (or DNS name) of the hub's public interface"))
    return problems


def check_node(node: Node, mesh: Mesh | None) -> list[Problem]:
    doc = node.doc
    problems: list[Problem] = []
    stem = PurePosixPath(doc.path).stem
    if node.hostname != stem:
        problems.append(Problem(doc.at(["hostname"]),
                                f"hostname '{node.hostname}' does not match the file name;"
                                f" rename the file to nodes/{node.hostname}.yaml or set"
                                f" hostname: {stem}"))
    for i, text in enumerate(doc.data["subnets"]):
        problems += host_bits(text, doc.ref("subnets", i), f"subnets[{i}]")
    if not valid_recipient(node.age_recipient):
        problems.append(Problem(doc.at(["age_recipient"]), f"age_recipient: {_BAD_CHECKSUM}"))
    problems += _check_routing(node)
    if not node.is_hub and node.tunnel_network is not None:
        problems.append(Problem(doc.at(["tunnel_network"]), "tunnel_network: only a hub has"
                                " one (its OpenVPN server hands it out); remove it"))
    if node.is_hub and node.public_address is None:
        problems.append(Problem(doc.at(), "a hub needs public_address: the address its spokes"
                                          " connect to"))
    if not any(node.private_address in net for net in node.subnets):
        problems.append(Problem(doc.at(["private_address"]),
                                f"private_address {node.private_address} is in none of this"
                                " node's subnets; add its VPC subnet (or its /32) so the mesh"
                                " can reach it",
                                Severity.WARNING))
    if mesh is not None:
        problems += _check_vpn_address(node, mesh)
        problems += _check_in_space(node, mesh)
        if node.private_address in mesh.vpn.network:
            problems.append(Problem(doc.at(["private_address"]),
                                    f"private_address {node.private_address} is inside"
                                    f" vpn.network {mesh.vpn.network}"))
    return problems


def _check_vpn_address(node: Node, mesh: Mesh) -> list[Problem]:
    address, network = node.vpn_address, mesh.vpn.network
    if address is None:
        return []
    where = node.doc.ref("vpn_address")
    first = network.network_address + 1
    if address not in network:
        return [Problem(where.loc(), f"vpn_address {address} is outside vpn.network {network}")]
    if address in (network.network_address, network.broadcast_address):
        return [Problem(where.loc(), f"vpn_address {address} is the network or broadcast address of"
                             f" {network}")]
    if node.is_hub and node.tunnel_network is None and address != first:
        return [Problem(where.loc(), f"vpn_address: the hub always has the first address {first};"
                             " remove vpn_address or set it to that")]
    if (not node.is_hub or node.tunnel_network is not None) and address == first:
        return [Problem(where.loc(), f"vpn_address {address} is reserved for the hub")]
    return []


def _check_hub_addresses(mesh: Mesh | None, nodes: list[Node]) -> list[Problem]:
    """No subnet may hold a hub's public address: the other spokes would route their way
    to the hub into the tunnel itself, and fall off the mesh."""
    problems = []
    hubs = [(n, _address(n.public_address)) for n in nodes if n.is_hub]
    for node in nodes:
        for i, net in enumerate(node.subnets):
            for hub, public in hubs:
                if public is not None and public in net:
                    problems.append(Problem(node.doc.at(["subnets", i]),
                                            f"subnet {net} of {node.hostname} holds"
                                            f" {hub.hostname}'s public_address {public}: spokes"
                                            " would route their tunnel into itself"))
        public = _address(node.public_address)
        if mesh is not None and node.is_hub and public is not None and \
                public in mesh.vpn.network:
            problems.append(Problem(node.doc.at(["public_address"]),
                                    f"public_address {public} is inside vpn.network"
                                    f" {mesh.vpn.network}"))
    return problems


def check_mesh_wide(mesh: Mesh | None, nodes: list[Node]) -> list[Problem]:
    problems = _check_hubs(mesh, nodes)
    problems += _check_hub_addresses(mesh, nodes)
    problems += _check_unique(nodes)
    problems += _check_overlaps(mesh, nodes)
    problems += check_acls(mesh, nodes)
    spokes = sum(1 for n in nodes if not n.is_hub)
    hubs = len(nodes) - spokes
    if mesh is not None and spokes + max(0, hubs - 1) > mesh.vpn.max_clients:
        # With two hubs or more, every hub also serves the other hubs' tunnels.
        what = f"{spokes} spokes" if hubs < 2 else f"{len(nodes) - 1} clients per hub"
        problems.append(Problem(mesh.doc.at(["vpn", "max_clients"]),
                                f"vpn.max_clients is {mesh.vpn.max_clients} but the mesh has"
                                f" {what}; raise it"))
    return problems


def _check_hubs(mesh: Mesh | None, nodes: list[Node]) -> list[Problem]:
    hubs = [n for n in nodes if n.is_hub]
    if not nodes:
        return [Problem(Location(NODES_DIR), "no nodes yet: add the hub as"
                                             " nodes/<hostname>.yaml with role: hub")]
    if not hubs:
        where = mesh.doc.at() if mesh else Location(NODES_DIR)
        return [Problem(where, "no node has role: hub; exactly one node must run the OpenVPN"
                               " server")]
    if len(hubs) > MAX_HUBS:
        return [Problem(h.doc.at(["role"]), f"hub '{h.hostname}' is one of {len(hubs)}: a mesh"
                                            f" has at most {MAX_HUBS} hubs; make this one a"
                                            " spoke") for h in hubs[MAX_HUBS:]]
    return _check_hub_networks(mesh, hubs)


def _check_hub_networks(mesh: Mesh | None, hubs: list[Node]) -> list[Problem]:
    """One hub serves vpn.network (the one spokes prefer); each other hub names its own
    tunnel network, as large, so that a node keeps the same host part on every hub."""
    problems: list[Problem] = []
    primary = [h for h in hubs if h.tunnel_network is None]
    if len(primary) > 1:
        spare = "10.9.0.0/24" if mesh is None else str(_next_network(mesh.vpn.network))
        problems += [Problem(h.doc.at(["role"]), f"a second hub needs its own tunnel_network"
                                                 f" (e.g. tunnel_network: {spare}); only"
                                                 f" {primary[0].hostname} may use vpn.network")
                     for h in primary[1:]]
    if not primary:
        problems.append(Problem(hubs[0].doc.at(["tunnel_network"]),
                                "every hub has a tunnel_network; remove it from the hub spokes"
                                " should prefer, which then serves vpn.network"))
    for hub in hubs:
        net = hub.tunnel_network
        if net is None:
            continue
        problems += host_bits(hub.doc.data["tunnel_network"], hub.doc.ref("tunnel_network"),
                              "tunnel_network", host_hint=False)
        if mesh is not None and net.prefixlen != mesh.vpn.network.prefixlen:
            problems.append(Problem(hub.doc.at(["tunnel_network"]),
                                    f"tunnel_network {net} must be the size of vpn.network"
                                    f" (/{mesh.vpn.network.prefixlen}): every node keeps the"
                                    " same host part on every hub"))
    by_cloud: dict[str, Node] = {}
    for hub in hubs:
        other = by_cloud.setdefault(hub.cloud, hub)
        if other is not hub:
            problems.append(Problem(hub.doc.at(["cloud"]),
                                    f"hubs {other.hostname} and {hub.hostname} are both on"
                                    f" {hub.cloud}: an outage of that cloud takes both; put"
                                    " the second hub on another cloud", Severity.WARNING))
    return problems


def _next_network(network: IPv4Network) -> IPv4Network:
    return IPv4Network((int(network.network_address) + network.num_addresses,
                        network.prefixlen))


def _check_unique(nodes: list[Node]) -> list[Problem]:
    problems: list[Problem] = []
    seen: dict[str, Ref] = {}
    # A file named after its hostname owns the name; the misnamed copy is the duplicate.
    for node in sorted(nodes, key=lambda n: PurePosixPath(n.doc.path).stem != n.hostname):
        if node.hostname in seen:
            problems.append(Problem(node.doc.at(["hostname"]), f"hostname '{node.hostname}' is"
                                    f" already used by {seen[node.hostname]}"))
        seen.setdefault(node.hostname, node.doc.ref("hostname"))
    static: dict[IPv4Address, Ref] = {}
    for node in nodes:
        if node.vpn_address is None:
            continue
        if node.vpn_address in static:
            problems.append(Problem(node.doc.at(["vpn_address"]), f"vpn_address"
                                    f" {node.vpn_address} is already used by"
                                    f" {static[node.vpn_address]}"))
        static.setdefault(node.vpn_address, node.doc.ref("vpn_address"))
    # Service and node names share one DNS zone, so one name space.
    names: dict[str, Ref] = {n.hostname: n.doc.ref("hostname") for n in nodes}
    for node in nodes:
        for i, service in enumerate(node.services):
            if service.name in names:
                problems.append(Problem(node.doc.at(["services", i, "name"]),
                                        f"service name '{service.name}' is already used by"
                                        f" {names[service.name]}; DNS names must be unique"))
            names.setdefault(service.name, node.doc.ref("services", i, "name"))
    return problems


def _overlap_candidates(mesh: Mesh | None, nodes: Iterable[Node]
                        ) -> list[tuple[IPv4Network, str, Ref]]:
    items = []
    if mesh is not None:
        items.append((mesh.vpn.network, f"vpn.network {mesh.vpn.network}",
                      mesh.doc.ref("vpn", "network")))
    for node in nodes:
        if node.tunnel_network is not None:
            items.append((node.tunnel_network, f"tunnel_network {node.tunnel_network} of"
                          f" {node.hostname}", node.doc.ref("tunnel_network")))
        for i, net in enumerate(node.subnets):
            items.append((net, f"subnet {net} of {node.hostname}", node.doc.ref("subnets", i)))
    return items


def _check_overlaps(mesh: Mesh | None, nodes: list[Node]) -> list[Problem]:
    # Sort by start then widest first; a sweep then finds every overlap in O(n log n).
    items = sorted(_overlap_candidates(mesh, nodes),
                   key=lambda t: (t[0].network_address, t[0].prefixlen))
    problems = []
    widest: tuple[IPv4Network, str, Ref] | None = None
    reported: set[Ref] = set()
    for item in items:
        net, _, ref = item
        if widest is not None and net.network_address <= widest[0].broadcast_address:
            # Point at the node file, not at mesh.yaml, when the tunnel network is involved.
            here, there = (widest, item) if ref.doc.path == MESH_FILE else (item, widest)
            if here[2] not in reported:
                problems.append(Problem(here[2].loc(), f"{here[1]} overlaps {there[1]}"
                                                       f" ({there[2]}); routes must not overlap"))
                reported.add(here[2])
            if net.broadcast_address > widest[0].broadcast_address:
                widest = item
        else:
            widest = item
    return problems
