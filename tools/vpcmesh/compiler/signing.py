"""Signing each node's bundle: which manifests change, and with which version.

The version rises whenever a node's files change or its signature is renewed; the state
file keeps the signature, so a re-render of unchanged input reproduces every manifest
byte for byte without the signing key."""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from vpcmesh.bundle import names
from vpcmesh.bundle.manifest import (
    Body,
    FileEntry,
    Manifest,
    Unit,
    format_time,
    parse_time,
)
from vpcmesh.bundle.removal import Removal
from vpcmesh.model.state import Signed, SignedRemoval
from vpcmesh.model.types import Node
from vpcmesh.planning.addresses import Plan
from vpcmesh.rendering.render import FileMap, by_node, conf_dir

Signer = Callable[[bytes], bytes]


@dataclass(frozen=True)
class SignedBuild:
    files: FileMap
    bundles: dict[str, Signed]
    unsigned: tuple[str, ...]  # nodes whose new manifest still waits for the signing key


@dataclass(frozen=True)
class Pending:
    """Each node's manifest body, described once, and which of them need a new signature."""

    bodies: dict[str, Body]
    due: list[str]


def _units(plan: Plan, node: Node) -> tuple[Unit, ...]:
    """The units the agent runs besides the node's own OpenVPN (its server on a hub, its
    tunnel to the preferred hub on a spoke), each with where its health check asks: its
    tunnels to the other hubs, in the order spokes prefer them, then the resolver."""
    units = [Unit("openvpn-client",
                  f"openvpn-client@{names.link_instance(plan.mesh.name, hub.hostname, i == 0)}",
                  str(plan.tunnel_address(node, hub)), hub.hostname)
             for i, hub in plan.links(node)
             if node.is_hub or i > 0]  # a spoke's tunnel to hubs[0] is its own OpenVPN
    if plan.mesh.dns_resolver:
        units.append(Unit("resolver", names.resolver_unit(plan.mesh.name),
                          str(node.private_address)))
    return tuple(units)


def _bodies(plan: Plan, files: FileMap) -> dict[str, Body]:
    hosts = {n.hostname: n for n in plan.nodes}
    hubs = tuple(h.hostname for h in plan.hubs) if len(plan.hubs) > 1 else ()
    return {host: Body(plan.mesh.name, host, hosts[host].role.value, conf_dir(hosts[host]),
                       f"{plan.mesh.name}.conf", str(plan.tunnel_address(
                           hosts[host], hosts[host] if hosts[host].is_hub else plan.hub)),
                       {rel: FileEntry.of(data) for rel, data in sorted(node_files.items())},
                       _units(plan, hosts[host]), hubs)
            for host, node_files in by_node(files).items() if host in hosts}


def needs_signing(previous: Signed | None, body_digest: str, now: dt.datetime,
                  validity: dt.timedelta, stale: Callable[[str], bool] | None = None) -> bool:
    """Only new content, a signature within the last third of its validity, or one whose
    commit `stale` says is no longer right (made from uncommitted changes, or from a commit
    that is not in this checkout's history: a copied repository, a rewritten branch)."""
    if previous is None or previous.digest != body_digest:
        return True
    if stale is not None and stale(previous.commit):
        return True
    return parse_time(previous.expires) - now <= validity / 3


def _manifest(body: Body, signed: Signed) -> Manifest:
    return Manifest(body, signed.version, signed.commit, signed.signed_at, signed.expires,
                    body.format)


def sign(body: Body, previous: Signed | None, commit: str, now: dt.datetime,
         validity: dt.timedelta, signer: Signer, floor: int = 0) -> Signed:
    """`floor`: the last version this node had before it was removed, if it was."""
    version = max(previous.version if previous else 0, floor) + 1
    unsigned = Signed(version=version, digest=body.digest(),
                      commit=commit, signed_at=format_time(now),
                      expires=format_time(now + validity), signature="")
    signature = signer(_manifest(body, unsigned).to_bytes())
    return Signed(unsigned.version, unsigned.digest, commit, unsigned.signed_at,
                  unsigned.expires, base64.b64encode(signature).decode())


def files_for(body: Body, signed: Signed) -> dict[str, bytes]:
    return {names.MANIFEST: _manifest(body, signed).to_bytes(),
            names.SIGNATURE: (signed.signature + "\n").encode()}


def pending(plan: Plan, files: FileMap, previous: Mapping[str, Signed],
            now: dt.datetime, stale: Callable[[str], bool] | None = None,
            new_key: bool = False) -> Pending:
    """`new_key`: the signing key was rotated since these signatures: every one is due."""
    validity = dt.timedelta(days=plan.mesh.bundle_validity_days)
    bodies = _bodies(plan, files)
    return Pending(bodies, [h for h, body in bodies.items()
                            if new_key or needs_signing(previous.get(h), body.digest(), now,
                                                        validity, stale)])


def sign_build(plan: Plan, files: FileMap, todo: Pending, previous: Mapping[str, Signed],
               now: dt.datetime, commit: str, signer: Signer | None,
               retired: Mapping[str, int] | None = None) -> SignedBuild:
    validity = dt.timedelta(days=plan.mesh.bundle_validity_days)
    out = dict(files)
    bundles: dict[str, Signed] = {}
    unsigned = []
    due = set(todo.due)
    for host, body in todo.bodies.items():
        signed = previous.get(host)
        if host in due:
            if signer is None:
                unsigned.append(host)
                if signed is not None:
                    bundles[host] = signed  # keep the sequence; the old manifest is not shown
                continue
            signed = sign(body, signed, commit, now, validity, signer,
                          (retired or {}).get(host, 0))
        assert signed is not None  # not due means signed before
        bundles[host] = signed
        for name, data in files_for(body, signed).items():
            out[f"{host}/{name}"] = data
    return SignedBuild(dict(sorted(out.items())), bundles, tuple(unsigned))


def retire(previous: Mapping[str, Signed], retired: Mapping[str, int],
           present: set[str]) -> dict[str, int]:
    """The last version of every node no longer in the mesh, for when one comes back."""
    out = {h: v for h, v in retired.items() if h not in present}
    out.update({h: s.version for h, s in previous.items() if h not in present})
    return dict(sorted(out.items()))


def removals_due(retired: Mapping[str, int], previous: Mapping[str, SignedRemoval],
                 new_key: bool = False) -> list[str]:
    """Retired nodes whose removal notice is not signed yet, for the version they left at
    (or was signed with a key since rotated)."""
    return [h for h, v in sorted(retired.items())
            if new_key or h not in previous or previous[h].after_version != v]


def sign_removals(mesh: str, retired: Mapping[str, int],
                  previous: Mapping[str, SignedRemoval], signer: Signer | None,
                  new_key: bool = False
                  ) -> tuple[FileMap, dict[str, SignedRemoval], tuple[str, ...]]:
    """Each retired node's notice (bundle/removal.py) in place of its bundle: the files, what
    the state keeps of them, and the nodes whose notice waits for the signing key."""
    files: FileMap = {}
    kept: dict[str, SignedRemoval] = {}
    due = set(removals_due(retired, previous, new_key))
    unsigned = []
    for host, version in sorted(retired.items()):
        notice = Removal(mesh, host, version)
        if host in due:
            if signer is None:
                unsigned.append(host)
                continue
            signed = SignedRemoval(version, base64.b64encode(signer(notice.to_bytes())).decode())
        else:
            signed = previous[host]
        kept[host] = signed
        files[f"{host}/{names.REMOVAL}"] = notice.to_bytes()
        files[f"{host}/{names.REMOVAL_SIGNATURE}"] = (signed.signature + "\n").encode()
    return files, kept, tuple(unsigned)


def chain_files(chain: bytes, hosts: Iterable[str]) -> FileMap:
    """The signing-key chain beside every manifest and removal notice: an agent reads it
    before it verifies either (bundle/keychain.py)."""
    return {f"{host}/{names.SIGNING_KEYS}": chain for host in hosts} if chain else {}
