"""Signing each node's bundle: which manifests change, and with which version."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from vpcmesh import manifest
from vpcmesh.manifest import Signed, Signer
from vpcmesh.plan import Plan
from vpcmesh.render import FileMap, by_node, conf_dir


@dataclass(frozen=True)
class SignedBuild:
    files: FileMap
    bundles: dict[str, Signed]
    unsigned: tuple[str, ...]  # nodes whose new manifest still waits for the signing key


def _bodies(plan: Plan, files: FileMap) -> dict[str, dict[str, Any]]:
    hosts = {n.hostname: n for n in plan.nodes}
    return {host: {"mesh": plan.mesh.name, "hostname": host, "role": hosts[host].role.value,
                   "openvpn_dir": conf_dir(hosts[host]), "config": f"{plan.mesh.name}.conf",
                   "vpn_address": str(plan.addresses[host]),
                   "files": manifest.describe(node_files)}
            for host, node_files in by_node(files).items() if host in hosts}


@dataclass(frozen=True)
class Pending:
    """Each node's manifest body, described once, and which of them need a new signature."""

    bodies: dict[str, dict[str, Any]]
    due: list[str]


def pending(plan: Plan, files: FileMap, previous: Mapping[str, Signed],
            now: dt.datetime) -> Pending:
    validity = dt.timedelta(days=plan.mesh.bundle_validity_days)
    bodies = _bodies(plan, files)
    return Pending(bodies, [h for h, body in bodies.items()
                            if manifest.needs_signing(previous.get(h), manifest.digest(body),
                                                      now, validity)])


def sign_build(plan: Plan, files: FileMap, todo: Pending, previous: Mapping[str, Signed],
               now: dt.datetime, commit: str, signer: Signer | None) -> SignedBuild:
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
            signed = manifest.sign(body, signed, commit, now, validity, signer)
        assert signed is not None  # not due means signed before
        bundles[host] = signed
        for name, data in manifest.files_for(body, signed).items():
            out[f"{host}/{name}"] = data
    return SignedBuild(dict(sorted(out.items())), bundles, tuple(unsigned))
