"""Rendering: the plan becomes the bytes of every file under build/, in memory."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, replace
from functools import cache
from ipaddress import IPv4Network
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

from vpcmesh.bundle import names
from vpcmesh.model.layout import DNS_DIR
from vpcmesh.model.state import State
from vpcmesh.model.types import Node
from vpcmesh.pki.store import Store
from vpcmesh.pki.tc2rotation import SWITCHED, Tc2State
from vpcmesh.planning import dns
from vpcmesh.planning.acl import node_acl
from vpcmesh.planning.addresses import Plan
from vpcmesh.rendering import fleet

FileMap = dict[str, bytes]


def _netmask(network: IPv4Network) -> str:
    return f"{network.network_address} {network.netmask}"


def _sorted_networks(networks: Iterable[IPv4Network]) -> list[IPv4Network]:
    return sorted(networks, key=lambda n: (n.network_address, n.prefixlen))


@cache
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("vpcmesh.rendering", "templates"),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["netmask"] = _netmask
    env.filters["nft_set"] = _nft_set
    env.globals["names"] = names  # file names the agent and the templates agree on
    return env


def _nft_set(networks: Iterable[IPv4Network]) -> str:
    """An nftables anonymous set: `{ 10.8.0.3, 172.17.0.0/24 }`."""
    items = (str(n.network_address) if n.prefixlen == 32 else str(n) for n in networks)
    return "{ " + ", ".join(items) + " }"


def _render(template: str, **context: Any) -> bytes:
    return environment().get_template(template).render(**context).encode()


def _serial(store: Store, host: str) -> str:
    # Decimal, as OpenVPN logs it ("serial=..."); a certificate still to be issued has none.
    cert = store.certs.get(host)
    return str(cert.serial_number) if cert is not None else "(to be issued)"


def conf_dir(node: Node) -> str:
    """Debian's openvpn-server@ / openvpn-client@ working directory under /etc/openvpn."""
    return "server" if node.is_hub else "client"


def _openvpn_files(plan: Plan, node: Node, store: Store, dns_up: bytes | None) -> FileMap:
    """The node's public OpenVPN files: what its config digest (bundle/fleet.py) covers.
    The private key and the TLS key go only inside the node's SOPS file, which only the
    node (and the admins) can decrypt."""
    mesh = plan.mesh
    common = {"mesh": mesh, "vpn": mesh.vpn, "node": node, "hub": plan.hub}
    files: FileMap = {
        "openvpn/ca.crt": store.server_ca_pem if node.is_hub else store.trusted_pem,
        f"openvpn/{node.hostname}.crt": store.cert_pems[node.hostname],
    }
    # Every node checks its peers against the CRL: a hub its spokes, a spoke its hubs (a
    # stolen hub certificate, once revoked, is refused); OpenVPN re-reads it at each handshake.
    files[f"{names.OPENVPN_PREFIX}{names.CRL}"] = store.crls_pem
    if node.is_hub:
        files[f"{names.OPENVPN_PREFIX}{names.PEER_SCRIPT}"] = _render("peer.sh.j2", mesh=mesh)
        if mesh.vpn.tls_crypt_v2:
            files[f"{names.OPENVPN_PREFIX}{names.TC2_VERIFY}"] = _render("tc2-verify.sh.j2",
                                                                        mesh=mesh)
            files[f"{names.OPENVPN_PREFIX}{names.TC2_REVOKED}"] = "".join(
                f"{serial}\n" for serial in store.revoked()).encode()
        files[f"openvpn/{mesh.name}.conf"] = _render("server.conf.j2", **_server(plan, node),
                                                     **common)
        fallback, netmask = _fallback(plan, node), plan.network(node).netmask
        for client in plan.nodes:
            if client.hostname == node.hostname:
                continue
            files[f"{names.OPENVPN_PREFIX}{names.CCD_DIR}/{client.hostname}"] = _render(
                "ccd.j2", node=client, vpn=mesh.vpn, address=plan.tunnel_address(client, node),
                netmask=netmask, serial=_serial(store, client.hostname),
                fallback=fallback is client)
    elif dns_up is not None:
        files[f"{names.OPENVPN_PREFIX}{names.DNS_UP}"] = dns_up
    multi = len(plan.hubs) > 1
    if node.is_hub and multi:  # its tunnels to the other hubs, in /etc/openvpn/client
        files[f"{names.LINK_PREFIX}ca.crt"] = store.trusted_pem
        files[f"{names.LINK_PREFIX}{node.hostname}.crt"] = store.cert_pems[node.hostname]
        files[f"{names.LINK_PREFIX}{names.CRL}"] = store.crls_pem
    for i, hub in plan.links(node):
        folder = names.LINK_PREFIX if node.is_hub else names.OPENVPN_PREFIX
        instance = names.link_instance(mesh.name, hub.hostname, i == 0)
        files[f"{folder}{instance}.conf"] = _render(
            "client.conf.j2", link=_Link(i, hub, multi, node.is_hub,
                                         _tc2_keys(mesh.vpn.tls_crypt_v2, store.tc2, hub, node)),
            **{**common, "hub": hub})
    return files


def _tc2_keys(on: bool, tc2: Tc2State, hub: Node, node: Node) -> tuple[str, ...]:
    """A client's tls-crypt-v2 keys for `hub`, in the order it tries them: the current one,
    and while the server keys rotate the next one too (pki/tc2rotation.py). Once the hubs
    switch, a hub's own tunnels (restarted then anyway) try the next key first."""
    if not on:
        return ()
    keys = (names.tc2_client_key(hub.hostname),) + (
        (names.tc2_next_client_key(hub.hostname),) if tc2.step else ())
    return keys[::-1] if tc2.step == SWITCHED and node.is_hub else keys


@dataclass(frozen=True)
class _Link:
    """One of a node's tunnels, to `hub` (index: its place in the order spokes prefer)."""

    index: int
    hub: Node
    multi: bool  # two or more hubs: named devices, route metrics, fast failover
    between_hubs: bool  # a hub's tunnel to another hub: it takes no pushed routes
    tc2_keys: tuple[str, ...] = ()  # vpn.tls_crypt_v2: its keys, one <connection> each if two

    @property
    def device(self) -> str:
        # "tun*" like the one-hub mesh's tun0, for the firewall rules and the operator's
        return f"tun-vpcm{self.index}" if self.multi else "tun"

    @property
    def metric(self) -> int:
        return 100 + 100 * self.index


def _fallback(plan: Plan, hub: Node) -> Node | None:
    """The hub this hub hands a packet to when the node it is for has no tunnel here: the
    next hub in the order (so with two, each other)."""
    if len(plan.hubs) < 2:
        return None
    order = [h.hostname for h in plan.hubs]
    return plan.hubs[(order.index(hub.hostname) + 1) % len(order)]


def _server(plan: Plan, hub: Node) -> dict[str, Any]:
    """What server.conf.j2 needs beyond the mesh: this hub's network, device, routes."""
    multi = len(plan.hubs) > 1
    index = [h.hostname for h in plan.hubs].index(hub.hostname)
    # One hub routes the spokes' subnets to its tunnel; with more, every subnet but its own.
    routed = (n for n in plan.nodes if n.hostname != hub.hostname) if multi else plan.spokes
    return {"network": plan.network(hub),
            "hub_networks": [plan.network(h) for h in plan.hubs if h.hostname != hub.hostname],
            "device": _Link(index, hub, multi, False).device,
            "multi": multi,
            "spoke_routes": _sorted_networks(net for n in routed for net in n.subnets),
            "all_subnets": _sorted_networks(net for n in plan.nodes for net in n.subnets)}


def _resolver_conf(plan: Plan, node: Node, mesh_wide: dict[str, Any]) -> bytes:
    """mesh.yaml dns.resolver: the node's unbound.conf (its unit file is shared)."""
    return _render("unbound.conf.j2", node=node, listen=dns.resolver_listen(plan, node),
                   **mesh_wide)


def by_node(files: FileMap) -> dict[str, FileMap]:
    """build/'s files by top-level folder (a node's bundle, or dns), paths inside it."""
    out: dict[str, FileMap] = {}
    for rel, data in files.items():
        head, _, rest = rel.partition("/")
        out.setdefault(head, {})[rest] = data
    return out


def render_build(plan: Plan, previous: State, store: Store,
                 only: Collection[str] | None = None) -> tuple[FileMap, State]:
    """Every file of build/ (paths relative to it) and the state to keep for next time;
    with `only`, just those nodes' bundles (and dns/)."""
    recs = dns.records(plan)
    digest = dns.digest(recs)
    serial = dns.next_serial(previous.dns_serial, previous.dns_digest, digest)
    # The same bytes in every bundle: rendered once.
    shared = {names.HOSTS: _render("hosts.j2", mesh=plan.mesh, records=recs),
              names.SYSCTL: _render("sysctl.conf.j2", mesh=plan.mesh),
              names.SYSTEMD_DROPIN: _render("systemd-dropin.conf.j2", mesh=plan.mesh)}
    resolver: dict[str, Any] = {}  # what every node's unbound.conf shares, worked out once
    dns_up = None
    if plan.mesh.dns_resolver:
        shared[names.RESOLVER_SERVICE] = _render("resolver.service.j2")
        hubs = dns.resolver_hubs(plan)
        resolver = {"mesh": plan.mesh, "records": recs, "serial": serial,
                    "ttl": dns.RESOLVER_TTL, "allowed": dns.resolver_clients(plan), "hubs": hubs}
        dns_up = _render("dns-up.sh.j2", mesh=plan.mesh, hubs=hubs)
    wanted = [n for n in plan.nodes if only is None or n.hostname in only]
    # A hub's fleet.json holds every node's config digest: with the hub, all are rendered.
    openvpn = {n.hostname: _openvpn_files(plan, n, store, dns_up)
               for n in (plan.nodes if any(n.is_hub for n in wanted) else wanted)}
    files: FileMap = {}
    for node in wanted:
        node_files = {**openvpn[node.hostname], names.SECRETS:
                      store.secrets[node.hostname].data, **shared,
                      names.FIREWALL: _render("firewall.nft.j2", node=node, mesh=plan.mesh)}
        acl = node_acl(plan, node)
        if acl.needed:
            node_files[names.ACL] = _render(
                "acl.nft.j2", node=node, table=names.acl_table(plan.mesh.name), acl=acl)
        if resolver:
            node_files[f"{names.RESOLVER_PREFIX}{names.RESOLVER_CONFIG}"] = _resolver_conf(
                plan, node, resolver)
        if node.is_hub:
            node_files[names.FLEET] = fleet.published(plan, store, openvpn).to_bytes()
        for rel, data in node_files.items():
            files[f"{node.hostname}/{rel}"] = data
    files[f"{DNS_DIR}/{plan.mesh.domain}.zone"] = _render(
        "zone.j2", mesh=plan.mesh, hub=plan.hub, records=recs, serial=serial)
    files[f"{DNS_DIR}/records.json"] = dns.records_json(plan, recs, serial)
    publish = plan.mesh.dns_publish
    if publish is not None:  # for octodns-sync: the records as a zone of its YamlProvider
        files[f"{DNS_DIR}/octodns/config.yaml"] = _render("octodns-config.yaml.j2",
                                                          publish=publish)
        files[f"{DNS_DIR}/octodns/zones/{publish.zone}.yaml"] = dns.octodns_zone(
            plan, recs, publish.zone)
    state = replace(previous, addresses=plan.addresses, dns_serial=serial, dns_digest=digest)
    return dict(sorted(files.items())), state
