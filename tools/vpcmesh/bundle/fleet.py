"""fleet.json: the mesh as the compiler published it, in a hub's bundle.

Every node, with its role, cloud, subnets and services, the digest of the OpenVPN files
published for it and its certificate's expiry: `vpcmesh status` on the hub sets what each
spoke reports against it. Spokes do not get it: then every change anywhere (a renewal, a
new node) would change every bundle, where today it changes only the nodes it involves
(only a new CRL reaches every node, and restarts none).

The config digest covers a bundle's public OpenVPN files (config, CA, certificate, CRL; a
hub's ccd files): what the node runs, not the manifest's version, so re-signing is not
drift. The SOPS file is left out: its bytes change when recipients change, its contents
(the private key) only together with the certificate.

A spoke reports its digest when it connects, so a change it applies without a restart (a
new CRL, a CA list) leaves the hub with the report from before. The `settled` digest leaves
those files out: while it stays the same, the hub takes the spoke's older report for the
new publication (agent/report.py) instead of calling the spoke behind until it reconnects."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from vpcmesh.bundle import effects, names
from vpcmesh.bundle.manifest import FileEntry, canonical, parse_time
from vpcmesh.errors import VpcmeshError

FORMAT = 1
_DIGEST = re.compile(r"^[0-9a-f]{64}$")


def config_digest(files: Mapping[str, FileEntry], settled_for: str | None = None) -> str:
    """Of a bundle's OpenVPN files as the manifest lists them (path and SHA-256); with
    `settled_for` (a role), only of those whose change restarts the node."""
    lines = "".join(f"{rel} {entry.sha256}\n" for rel, entry in sorted(files.items())
                    if rel.startswith((names.OPENVPN_PREFIX, names.LINK_PREFIX)) and not (
                        settled_for and effects.applies_in_place(rel, settled_for)))
    return hashlib.sha256(lines.encode()).hexdigest()


@dataclass(frozen=True)
class FleetService:
    name: str
    port: int


@dataclass(frozen=True)
class FleetNode:
    hostname: str
    role: str
    cloud: str
    region: str
    vpn_address: str
    public_address: str | None
    subnets: tuple[str, ...]
    services: tuple[FleetService, ...] = ()
    config: str | None = None  # the published config digest
    settled: str | None = None  # the same, but for files a change of which restarts nothing
    cert_expires: str | None = None  # None before it is issued


@dataclass(frozen=True)
class Fleet:
    mesh: str
    domain: str
    address_space: tuple[str, ...]
    nodes: tuple[FleetNode, ...]  # sorted by hostname
    crl_next_update: str | None = None

    def node(self, hostname: str) -> FleetNode | None:
        return next((n for n in self.nodes if n.hostname == hostname), None)

    def as_json(self) -> dict[str, Any]:
        return {"format": FORMAT, "mesh": self.mesh, "domain": self.domain,
                "address_space": list(self.address_space),
                "crl_next_update": self.crl_next_update,
                "nodes": [{"hostname": n.hostname, "role": n.role, "cloud": n.cloud,
                           "region": n.region, "vpn_address": n.vpn_address,
                           "public_address": n.public_address, "subnets": list(n.subnets),
                           "services": [{"name": s.name, "port": s.port} for s in n.services],
                           "config": n.config, "cert_expires": n.cert_expires,
                           **({"settled": n.settled} if n.settled else {})}
                          for n in self.nodes]}

    def to_bytes(self) -> bytes:
        return canonical(self.as_json())


def _fail(where: str, why: str) -> VpcmeshError:
    return VpcmeshError.at(where, f"{why}; this node's fleet.json is not one vpcmesh wrote"
                                  " (pull the bundle again)")


def _text(data: Mapping[str, Any], key: str, where: str, optional: bool = False) -> Any:
    value = data.get(key)
    if (value is None and optional) or isinstance(value, str):
        return value
    raise _fail(where, f"field '{key}' is missing or not text")


def _time(data: Mapping[str, Any], key: str, where: str) -> str | None:
    value = _text(data, key, where, optional=True)
    if value is not None:
        try:
            parse_time(value)
        except ValueError:
            raise _fail(where, f"field '{key}' is not a time") from None
    return value  # type: ignore[no-any-return]


def _node(raw: Any, where: str) -> FleetNode:
    if not isinstance(raw, dict):
        raise _fail(where, "a node is not an object")
    subnets, services = raw.get("subnets"), raw.get("services")
    if not isinstance(subnets, list) or not all(isinstance(s, str) for s in subnets):
        raise _fail(where, "field 'subnets' is not a list of text")
    if not isinstance(services, list) or not all(
            isinstance(s, dict) and isinstance(s.get("name"), str)
            and isinstance(s.get("port"), int) for s in services):
        raise _fail(where, "field 'services' is not a list of {name, port}")
    config, settled = (_text(raw, k, where, optional=True) for k in ("config", "settled"))
    if any(d is not None and not _DIGEST.fullmatch(d) for d in (config, settled)):
        raise _fail(where, "field 'config' or 'settled' is not a SHA-256")
    return FleetNode(_text(raw, "hostname", where), _text(raw, "role", where),
                     _text(raw, "cloud", where), _text(raw, "region", where),
                     _text(raw, "vpn_address", where),
                     _text(raw, "public_address", where, optional=True), tuple(subnets),
                     tuple(FleetService(s["name"], s["port"]) for s in services),
                     config, settled, _time(raw, "cert_expires", where))


def parse(data: bytes, where: str) -> Fleet:
    try:
        raw = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise _fail(where, "not JSON") from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise _fail(where, f"not fleet format {FORMAT}")
    nodes, space = raw.get("nodes"), raw.get("address_space")
    if not isinstance(nodes, list) or not isinstance(space, list):
        raise _fail(where, "fields 'nodes' and 'address_space' must be lists")
    return Fleet(_text(raw, "mesh", where), _text(raw, "domain", where),
                 tuple(str(s) for s in space), tuple(_node(n, where) for n in nodes),
                 _time(raw, "crl_next_update", where))
