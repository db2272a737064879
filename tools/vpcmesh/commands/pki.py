from __future__ import annotations

import json
import logging
from collections.abc import Collection
from pathlib import Path

import click

from vpcmesh.compiler.lock import writing
from vpcmesh.compiler.pipeline import Request, build, load, snapshot
from vpcmesh.errors import Location, VpcmeshError
from vpcmesh.model.layout import CA_CERT, CRL_FILE, NODES_DIR, issued_cert
from vpcmesh.pki import x509 as pki

log = logging.getLogger(__name__)


def status(root: Path, as_json: bool) -> int:
    snap = snapshot(root)
    loaded = load(snap)
    snap.cache.save()
    store, now = loaded.store, loaded.now
    window = loaded.plan.mesh.pki.renew_before_days

    def state(expires: str | None, days: int | None) -> str:
        if expires is None:
            return "to issue"
        return "expired" if days is None or days < 0 else "renew soon" if days <= window else "ok"

    rows: list[tuple[str, str, str | None, int | None, str]] = []
    ca_days = (store.ca.not_valid_after_utc - now).days
    rows.append(("ca", "ca", store.ca.not_valid_after_utc.date().isoformat(), ca_days, CA_CERT))
    if store.crl is not None and store.crl.next_update_utc is not None:
        rows.append(("crl", "crl", store.crl.next_update_utc.date().isoformat(),
                     (store.crl.next_update_utc - now).days, CRL_FILE))
    for node in loaded.plan.nodes:
        cert = store.certs.get(node.hostname)
        if cert is None:
            rows.append((node.hostname, node.role.value, None, None, issued_cert(node.hostname)))
            continue
        rows.append((node.hostname, "server" if pki.is_server(cert) else "client",
                     cert.not_valid_after_utc.date().isoformat(),
                     (cert.not_valid_after_utc - now).days, issued_cert(node.hostname)))
    if as_json:
        click.echo(json.dumps([{"name": n, "kind": k, "expires": e, "days_left": d,
                                "status": state(e, d), "path": p} for n, k, e, d, p in rows],
                              indent=2))
        return 0
    click.echo(f"{'NAME':<24} {'KIND':<7} {'EXPIRES':<11} {'DAYS':>5}  STATUS")
    for name, kind, expires, days, _ in rows:
        click.echo(f"{name:<24} {kind:<7} {expires or '-':<11} "
                   f"{'-' if days is None else days:>5}  {state(expires, days)}")
    return 0


def _report(root: Path, renew: Collection[str] = (), revoke: Collection[str] = (),
            renew_crl: bool = False) -> int:
    with writing(root):
        built = build(root, snapshot(root), Request(renew, revoke, renew_crl))
    for warning in built.warnings:
        click.echo(str(warning), err=True)
    for host, why in built.actions.revoke.items():
        click.echo(f"revoked {host} ({why})", err=True)
    for host, why in built.actions.issue.items():
        click.echo(f"issued {host} ({why})", err=True)
    if built.actions.crl:
        click.echo(f"issued a new CRL ({built.actions.crl})", err=True)
    return 0


def revoke(root: Path, hostname: str) -> int:
    """Revoke HOST's certificate; a node still in nodes/ gets a new key and certificate."""
    if not (root / issued_cert(hostname)).is_file():
        raise VpcmeshError.at(Location(issued_cert(hostname)),
                              f"no certificate to revoke for '{hostname}'")
    return _report(root, revoke={hostname})


def renew(root: Path, hostname: str | None) -> int:
    if hostname is not None and not (root / NODES_DIR / f"{hostname}.yaml").is_file():
        raise VpcmeshError.at(f"{NODES_DIR}/{hostname}.yaml",
                              f"no such node '{hostname}' to renew")
    if hostname is None:
        return _report(root, renew_crl=True)
    return _report(root, renew={hostname})
