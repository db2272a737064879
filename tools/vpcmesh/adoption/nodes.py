"""Which old clients become nodes, with what: their certificate and key, subnets (iroutes)
and tunnel address (ccd/, ipp.txt); the hub's subnets from what the old server pushed."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network

from cryptography import x509

from vpcmesh.adoption.easyrsa import OldCert, OldPki, common_name
from vpcmesh.adoption.mapping import Mapping, NodeEntry
from vpcmesh.adoption.oldclients import OldClient
from vpcmesh.adoption.oldconf import OldServer
from vpcmesh.authoring.nodefile import NewNode
from vpcmesh.errors import Location, Problem, Severity
from vpcmesh.pki import x509 as pki

WARN = Severity.WARNING


@dataclass(frozen=True)
class Chosen:
    hub: NewNode
    nodes: tuple[NewNode, ...]  # the hub included
    certs: dict[str, x509.Certificate]  # the kept clients'
    keys: dict[str, pki.PrivateKey]
    kept: tuple[str, ...]
    algorithm: str


def _new_node(entry: NodeEntry, role: str, subnets: list[IPv4Network],
              address: IPv4Address | None) -> NewNode:
    return NewNode(entry.name, role, entry.cloud, entry.region, entry.private_address,
                   tuple(str(n) for n in subnets), entry.age_recipient, entry.public_address,
                   str(address) if address else None, entry.services, entry.os)


def _subnets(entry: NodeEntry, found: list[IPv4Network], at: Location, source: str,
             problems: list[Problem]) -> list[IPv4Network]:
    if found and entry.subnets:
        problems.append(Problem(at, f"subnets are given here and by {source}; remove them"
                                    " here (the old setup's are kept)"))
    if found:
        return found
    if not entry.subnets:
        problems.append(Problem(at, f"no subnets: {source} names none for it; give them here"
                                    " as `subnets: [CIDR, ...]`"))
    return [IPv4Network(s, strict=False) for s in entry.subnets if "/" in s]


def _old_cert_problems(name: str, old: OldCert | None, old_pki: OldPki, at: Location,
                       now: dt.datetime) -> list[Problem]:
    if name in old_pki.revoked_names and (old is None or
                                          old.cert.serial_number in old_pki.revoked):
        return [Problem(at, f"its certificate is revoked ({old_pki.revoked_names[name]}):"
                            " leave it out, or add it after the import with 'vpcmesh node"
                            " add' (a new key)")]
    if old is None:
        return [Problem(at, f"no certificate issued/{name}.crt in the PKI folder: a node keeps"
                            " its certificate by its easy-rsa name; use that name, or add the"
                            " node after the import with 'vpcmesh node add' (a new key)")]
    out = []
    if common_name(old.cert) != name:
        out.append(Problem(at, f"issued/{name}.crt names '{common_name(old.cert)}': OpenVPN"
                               " finds a client's ccd file by that name; name the node so"))
    if old.cert.serial_number in old_pki.revoked:
        out.append(Problem(at, "its certificate is revoked (index.txt or crl.pem); leave it"
                               " out, or add it after the import with 'vpcmesh node add'"))
    if old.key is None:
        out.append(Problem(at, f"private/{name}.key is missing or unreadable: vpcmesh"
                               " delivers each node's key in its bundle; leave the node out"
                               " and add it with 'vpcmesh node add' (a new key)"))
    if pki.is_server(old.cert):
        out.append(Problem(at, "its certificate is also a server certificate; the first"
                               " render replaces it with a client one (a new key)", WARN))
    if old.cert.not_valid_after_utc <= now + dt.timedelta(days=30):
        out.append(Problem(at, f"its certificate expires on"
                               f" {old.cert.not_valid_after_utc.date()}; the first render"
                               " renews it (a new key, delivered by its bundle)", WARN))
    return out


def _client(entry: NodeEntry, mapping: Mapping, old_pki: OldPki, client: OldClient | None,
            ipp: dict[str, tuple[IPv4Address, Location]], now: dt.datetime,
            problems: list[Problem]) -> NewNode | None:
    name, at = entry.name, mapping.at("nodes", entry.name)
    found = _old_cert_problems(name, old_pki.certs.get(name), old_pki, at, now)
    problems.extend(found)
    if any(p.is_error for p in found):
        return None  # nothing else about a node that cannot be kept
    if client is not None and client.disabled:
        problems.append(Problem(client.at, "says `disable`: leave this client out of the"
                                           " mapping"))
    iroutes = [net for net, _ in client.iroutes] if client else []
    subnets = _subnets(entry, iroutes, at, f"ccd/{name} (iroute)", problems)
    address = client.address[0] if client and client.address else None
    if address is None and name in ipp:
        address = ipp[name][0]
    if address is None:
        problems.append(Problem(at, "no address in ccd/ or ipp.txt: it gets a new tunnel"
                                    " address", WARN))
    return _new_node(entry, "spoke", subnets, address)


def choose(mapping: Mapping, old: OldServer, old_pki: OldPki, clients: dict[str, OldClient],
           ipp: dict[str, tuple[IPv4Address, Location]], now: dt.datetime,
           problems: list[Problem]) -> Chosen:
    claimed = {net: name for name, c in clients.items() for net, _ in c.iroutes}
    spokes = []
    for name, entry in sorted(mapping.nodes.items()):
        if name != mapping.hub:
            node = _client(entry, mapping, old_pki, clients.get(name), ipp, now, problems)
            spokes.append(node) if node is not None else None
    hub_entry = mapping.nodes[mapping.hub]
    own = [net for net, _ in old.pushed if net not in claimed]
    hub = _new_node(hub_entry, "hub", _subnets(hub_entry, own, mapping.at("nodes", mapping.hub),
                                               "a `push \"route ...\"` of no client", problems),
                    None)
    for net, at in old.routes:
        if net not in claimed:
            problems.append(Problem(at, f"route {net}: no ccd file has its iroute; not carried"
                                        " over", WARN))
    kept = tuple(n.hostname for n in spokes)
    for name, client in sorted(clients.items()):
        if name not in mapping.nodes and client.iroutes:
            problems.append(Problem(client.at, "not in the mapping: its subnets are not"
                                               " routed by the new hub", WARN))
    for name, old_cert in sorted(old_pki.certs.items()):
        if name in mapping.nodes or old_cert.cert.serial_number in old_pki.revoked:
            continue
        what = ("the old server's certificate: vpcmesh's hub gets its own from the same CA"
                if pki.is_server(old_cert.cert) else
                "not in the mapping: not imported, and the new hub refuses it (ccd-exclusive);"
                " revoke it with easyrsa when it is no longer used")
        problems.append(Problem(old_cert.at, what, WARN))
    return Chosen(hub, (hub, *spokes), {h: old_pki.certs[h].cert for h in kept},
                  {h: old_pki.certs[h].key for h in kept if old_pki.certs[h].key},  # type: ignore[misc]
                  kept, _algorithm(old_pki, kept, mapping, problems))


def _algorithm(old_pki: OldPki, kept: tuple[str, ...], mapping: Mapping,
               problems: list[Problem]) -> str:
    """The mesh's pki.algorithm: the kept certificates' own, or they would be re-keyed."""
    found = {h: pki.algorithm_of(old_pki.certs[h].cert.public_key()) for h in kept}
    algorithms = set(found.values()) or {pki.algorithm_of(old_pki.ca.public_key())}
    if len(algorithms) > 1:
        problems.append(Problem(mapping.at("nodes"), "the kept certificates use different key"
                                f" algorithms ({', '.join(sorted(algorithms))}); vpcmesh keeps"
                                " one per mesh: leave out the nodes of all but one"))
        return sorted(algorithms)[0]
    algorithm = algorithms.pop()
    if algorithm not in pki.ALGORITHMS:
        problems.append(Problem(mapping.at("nodes"), f"the certificates' keys are {algorithm};"
                                f" vpcmesh issues {', '.join(pki.ALGORITHMS)}: a mesh whose"
                                " nodes would be re-keyed is not an import"))
        return "ec-p256"
    return algorithm
