"""Signing each node's bundle: which manifests change, and with which version."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from vpcmesh import manifest
from vpcmesh.manifest import Signed, Signer
from vpcmesh.plan import Plan
from vpcmesh.render import FileMap, conf_dir


@dataclass(frozen=True)
class SignedBuild:
    files: FileMap
    bundles: dict[str, Signed]
    unsigned: tuple[str, ...]  # nodes whose new manifest still waits for the signing key


def _body(plan: Plan, host: str, files: Mapping[str, bytes]) -> dict[str, Any]:
    node = next(n for n in plan.nodes if n.hostname == host)
    return {"mesh": plan.mesh.name, "hostname": host, "role": node.role.value,
            "openvpn_dir": conf_dir(node), "config": f"{plan.mesh.name}.conf",
            "vpn_address": str(plan.addresses[host]), "files": manifest.describe(files)}


def split(files: FileMap, hosts: list[str]) -> dict[str, FileMap]:
    per: dict[str, FileMap] = {h: {} for h in hosts}
    for rel, data in files.items():
        head, _, rest = rel.partition("/")
        if head in per:
            per[head][rest] = data
    return per


def due(plan: Plan, files: FileMap, previous: Mapping[str, Signed],
        now: dt.datetime) -> list[str]:
    validity = dt.timedelta(days=plan.mesh.bundle_validity_days)
    hosts = [n.hostname for n in plan.nodes]
    return [h for h, fs in split(files, hosts).items()
            if manifest.needs_signing(previous.get(h), manifest.digest(_body(plan, h, fs)), now,
                                      validity)]


def sign_build(plan: Plan, files: FileMap, previous: Mapping[str, Signed], now: dt.datetime,
               commit: str, signer: Signer | None) -> SignedBuild:
    validity = dt.timedelta(days=plan.mesh.bundle_validity_days)
    out = dict(files)
    bundles: dict[str, Signed] = {}
    unsigned = []
    for host, node_files in split(files, [n.hostname for n in plan.nodes]).items():
        body = _body(plan, host, node_files)
        signed = previous.get(host)
        if manifest.needs_signing(signed, manifest.digest(body), now, validity):
            if signer is None:
                unsigned.append(host)
                if signed is not None:
                    bundles[host] = signed  # keep the sequence; the old manifest is not shown
                continue
            signed = manifest.sign(body, signed, commit, now, validity, signer)
        assert signed is not None
        bundles[host] = signed
        for name, data in manifest.files_for(body, signed).items():
            out[f"{host}/{name}"] = data
    return SignedBuild(dict(sorted(out.items())), bundles, tuple(unsigned))
