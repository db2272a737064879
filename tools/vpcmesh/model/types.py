"""The typed model, built once from schema-valid YAML."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from ipaddress import IPv4Address, IPv4Network
from typing import Any

from vpcmesh.model.yamlio import Document


class Role(StrEnum):
    HUB = "hub"
    SPOKE = "spoke"


class OsFamily(StrEnum):
    """What differs between the VMs' systems for what vpcmesh writes: the unprivileged group
    OpenVPN drops to (RHEL-family systems have no 'nogroup')."""

    DEBIAN = "debian"
    RHEL = "rhel"

    @property
    def nobody_group(self) -> str:
        return "nobody" if self is OsFamily.RHEL else "nogroup"


class AclDefault(StrEnum):
    """mesh.yaml acl.default: what the mesh may reach of a node besides its services."""

    OPEN = "open"  # every port, as before ACLs existed; a service's allow narrows its port
    DENY = "deny"  # only the declared services (and ping)


@dataclass(frozen=True)
class Compat:
    """What peers configured by hand before vpcmesh need (`vpcmesh import` sets these)."""

    tls_auth: bool = False
    comp_lzo: bool = False
    cipher_fallback: str | None = None
    auth: str | None = None

    @property
    def any(self) -> bool:
        return self != Compat()


@dataclass(frozen=True)
class PkiSettings:
    algorithm: str = "ec-p256"
    ca_validity_days: int = 3650
    cert_validity_days: int = 825
    crl_validity_days: int = 180
    renew_before_days: int = 30


@dataclass(frozen=True)
class Vpn:
    network: IPv4Network
    port: int = 1194
    proto: str = "udp"
    client_to_client: bool = True
    keepalive_interval: int = 10
    keepalive_timeout: int = 60
    data_ciphers: tuple[str, ...] = ("AES-256-GCM", "CHACHA20-POLY1305")
    max_clients: int = 100
    compat: Compat = field(default_factory=Compat)
    # Summary routes: with them the hub's config names no spoke, so it never restarts for one.
    address_space: tuple[IPv4Network, ...] = ()
    # Two or more hubs: silence after which a node stops routing through a hub.
    failover_timeout: int = 4
    # A tls-crypt-v2 key per node (per hub it connects to), not the shared tls-crypt key.
    tls_crypt_v2: bool = False


@dataclass(frozen=True)
class DnsPublish:
    """Where octoDNS publishes the inner records (mesh.yaml dns.publish)."""

    provider: str  # an octoDNS provider class
    zone: str  # the zone at that provider: the inner domain or a parent of it
    settings: tuple[tuple[str, str | int | bool], ...] = ()


@dataclass(frozen=True)
class Mesh:
    name: str
    domain: str
    vpn: Vpn
    pki: PkiSettings
    admins: tuple[str, ...]
    doc: Document = field(repr=False, compare=False)
    bundle_validity_days: int = 30
    dns_publish: DnsPublish | None = None
    # mesh.yaml dns.resolver: every node runs vpcmesh's resolver (unbound) for the inner zone
    dns_resolver: bool = False
    acl_default: AclDefault = AclDefault.OPEN


@dataclass(frozen=True)
class Service:
    name: str
    port: int
    proto: str = "tcp"
    # Who may reach it across the mesh: "node:HOST", "group:NAME" or a CIDR, as written;
    # empty: every node.
    allow: tuple[str, ...] = ()


@dataclass(frozen=True)
class Node:
    hostname: str
    cloud: str
    region: str
    role: Role
    public_address: str | None
    private_address: IPv4Address
    subnets: tuple[IPv4Network, ...]
    vpn_address: IPv4Address | None
    age_recipient: str
    services: tuple[Service, ...]
    os: OsFamily
    doc: Document = field(repr=False, compare=False)
    # A further hub's own tunnel network (issue: two hubs); None: vpn.network.
    tunnel_network: IPv4Network | None = None
    groups: tuple[str, ...] = ()  # for services' allow lists (group:NAME)

    @property
    def is_hub(self) -> bool:
        return self.role is Role.HUB


def _network(text: str) -> IPv4Network:
    # strict=False: host bits are reported by checks.py with a location, not raised here.
    return IPv4Network(text, strict=False)


def mesh_from(doc: Document) -> Mesh:
    data = doc.data
    vpn = data["vpn"]
    keepalive = vpn.get("keepalive", {})
    compat = vpn.get("compat", {})
    pki = data.get("pki", {})
    return Mesh(
        name=data["name"],
        domain=data["domain"],
        vpn=Vpn(
            network=_network(vpn["network"]),
            port=vpn.get("port", 1194),
            proto=vpn.get("proto", "udp"),
            client_to_client=vpn.get("client_to_client", True),
            keepalive_interval=keepalive.get("interval", 10),
            keepalive_timeout=keepalive.get("timeout", 60),
            data_ciphers=tuple(vpn.get("data_ciphers", Vpn.data_ciphers)),
            max_clients=vpn.get("max_clients", 100),
            compat=Compat(**compat),
            address_space=tuple(_network(n) for n in vpn.get("address_space", [])),
            failover_timeout=vpn.get("failover_timeout", 4),
            tls_crypt_v2=bool(vpn.get("tls_crypt_v2", False)),
        ),
        pki=PkiSettings(**pki),
        admins=tuple(data["admins"]),
        doc=doc,
        bundle_validity_days=data.get("bundles", {}).get("validity_days", 30),
        dns_publish=_dns_publish(data.get("dns", {}).get("publish"), data["domain"]),
        dns_resolver=bool(data.get("dns", {}).get("resolver", False)),
        acl_default=AclDefault(data.get("acl", {}).get("default", "open")),
    )


def _dns_publish(data: dict[str, Any] | None, domain: str) -> DnsPublish | None:
    if data is None:
        return None
    return DnsPublish(data["provider"], data.get("zone", domain),
                      tuple(sorted(data.get("settings", {}).items())))


def node_from(doc: Document) -> Node:
    data = doc.data
    vpn_address = data.get("vpn_address")
    return Node(
        hostname=data["hostname"],
        cloud=data["cloud"],
        region=data["region"],
        role=Role(data["role"]),
        public_address=data.get("public_address"),
        private_address=IPv4Address(data["private_address"]),
        subnets=tuple(_network(s) for s in data["subnets"]),
        vpn_address=IPv4Address(vpn_address) if vpn_address else None,
        age_recipient=data["age_recipient"],
        services=tuple(Service(s["name"], s["port"], s.get("proto", "tcp"),
                               tuple(s.get("allow", ()))) for s in data.get("services", [])),
        os=OsFamily(data.get("os", "debian")),
        doc=doc,
        tunnel_network=_network(data["tunnel_network"]) if "tunnel_network" in data else None,
        groups=tuple(data.get("groups", ())),
    )
