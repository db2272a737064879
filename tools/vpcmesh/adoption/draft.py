"""A first mapping for `vpcmesh import` (--draft-mapping): every client the PKI can keep,
with what the old setup already says of it, and TODO where only its owner knows."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from vpcmesh.adoption.easyrsa import read_pki
from vpcmesh.adoption.oldclients import read_ccd, read_ipp
from vpcmesh.adoption.oldconf import read_server
from vpcmesh.errors import Problem
from vpcmesh.pki import x509 as pki
from vpcmesh.rendering.render import environment


@dataclass(frozen=True)
class DraftClient:
    name: str
    subnets: tuple[str, ...]
    note: str


def draft(pki_dir: Path, server_conf: Path, ccd: Path | None, ipp: Path | None,
          passphrase: bytes | None, now: dt.datetime) -> tuple[str, list[Problem]]:
    """The mapping's text, and what reading the old setup found on the way."""
    old_pki = read_pki(pki_dir, passphrase, now)
    old = read_server(server_conf, None, ccd, ipp)
    problems = [*old.problems, *old_pki.findings]
    clients = read_ccd(old.ccd, problems)
    addresses = read_ipp(old.ipp, old.net30, problems)
    out = []
    for name, cert in sorted(old_pki.certs.items()):
        if pki.is_server(cert.cert) or cert.cert.serial_number in old_pki.revoked:
            continue
        client = clients.get(name)
        subnets = tuple(str(net) for net, _ in client.iroutes) if client else ()
        address = client.address[0] if client and client.address else \
            addresses[name][0] if name in addresses else None
        note = ", ".join(filter(None, [f"subnets {' '.join(subnets)}" if subnets else "",
                                       f"tunnel address {address}" if address else "",
                                       "" if cert.key else "NO KEY in private/: cannot be kept"]))
        out.append(DraftClient(name, subnets, note or "issued/" + name + ".crt"))
    text = environment().get_template("import-mapping.yaml.j2").render(
        clients=out, server_conf=server_conf.name, pki=pki_dir.name)
    return text, problems
