from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Collection
from pathlib import Path
from typing import Any

import click

from vpcmesh.bundle.manifest import parse_time
from vpcmesh.compiler.lock import writing
from vpcmesh.compiler.pipeline import Request, build, load, snapshot
from vpcmesh.errors import Location, VpcmeshError
from vpcmesh.model.layout import (
    CA_CERT,
    CRL_FILE,
    NODES_DIR,
    ROTATION_CA,
    ROTATION_STEP,
    SIGNING_PUB,
    TC2_STATE,
    issued_cert,
)
from vpcmesh.pki import x509 as pki
from vpcmesh.pki.carotation import INTRODUCED, MOVING
from vpcmesh.pki.store import Store

log = logging.getLogger(__name__)


def status(root: Path, as_json: bool) -> int:
    """Every certificate and the CRL: when it was made (its age), when it expires, and when
    render renews it (pki.renew_before_days before it expires: the next rotation due)."""
    snap = snapshot(root)
    loaded = load(snap)
    snap.cache.save()
    store, now = loaded.store, loaded.now
    window = dt.timedelta(days=loaded.plan.mesh.pki.renew_before_days)

    def row(name: str, kind: str, made: dt.datetime | None, expires: dt.datetime | None,
            path: str) -> dict[str, Any]:
        if made is None or expires is None:
            return {"name": name, "kind": kind, "issued": None, "age_days": None,
                    "expires": None, "days_left": None, "rotate_by": None,
                    "status": "to issue", "path": path}
        left = (expires - now).days
        state = ("expired" if expires <= now else "renew soon" if expires - now <= window
                 else "ok")
        return {"name": name, "kind": kind, "issued": made.date().isoformat(),
                "age_days": (now - made).days, "expires": expires.date().isoformat(),
                "days_left": left, "rotate_by": (expires - window).date().isoformat(),
                "status": state, "path": path}

    rows = [row("ca", "ca", store.ca.not_valid_before_utc, store.ca.not_valid_after_utc,
                CA_CERT)]
    if store.rotation is not None:  # the CA that does not issue, and the step it is at
        other = store.rotation.other
        rows.append(row(f"ca ({'new' if store.rotation.step == INTRODUCED else 'old'})",
                        "ca", other.not_valid_before_utc, other.not_valid_after_utc,
                        ROTATION_CA) | {"status": f"rotating: {store.rotation.step}"})
    if store.crl is not None and store.crl.next_update_utc is not None:
        rows.append(row("crl", "crl", store.crl.last_update_utc, store.crl.next_update_utc,
                        CRL_FILE))
    for node in loaded.plan.nodes:
        cert = store.certs.get(node.hostname)
        kind = node.role.value if cert is None else (
            "server" if pki.is_server(cert) else "client")
        rows.append(row(node.hostname, kind, cert.not_valid_before_utc if cert else None,
                        cert.not_valid_after_utc if cert else None, issued_cert(node.hostname)))
    rows.append(_signing_row(store, now))
    if loaded.plan.mesh.vpn.tls_crypt_v2:
        rows.append(_tc2_row(store, now))
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return 0
    click.echo(f"{'NAME':<24} {'KIND':<7} {'AGE':>5} {'EXPIRES':<11} {'DAYS':>5} "
               f"{'ROTATE BY':<11} STATUS")
    for r in rows:
        click.echo(f"{r['name']:<24} {r['kind']:<7} {_dash(r['age_days']):>5}"
                   f" {_dash(r['expires']):<11} {_dash(r['days_left']):>5}"
                   f" {_dash(r['rotate_by']):<11} {r['status']}")
    return 0


def _signing_row(store: Store, now: dt.datetime) -> dict[str, Any]:
    """The bundle-signing key never expires: its age, from the rotation that made it."""
    made = None
    if store.chain is not None and store.chain.links:
        made = parse_time(store.chain.links[-1].made)
    return {"name": "signing-key", "kind": "ed25519", "issued": made and made.date().isoformat(),
            "age_days": made and (now - made).days, "expires": None, "days_left": None,
            "rotate_by": None, "status": "ok", "path": SIGNING_PUB}


def _tc2_row(store: Store, now: dt.datetime) -> dict[str, Any]:
    """The hubs' tls-crypt-v2 server keys never expire either: their generation, and the
    age of the last rotation step (none for the mesh's first keys)."""
    state, made = store.tc2, store.tc2.since
    return {"name": f"tls-crypt-v2 (gen {state.server_generation})", "kind": "server",
            "issued": made and made.date().isoformat(), "age_days": made and (now - made).days,
            "expires": None, "days_left": None, "rotate_by": None,
            "status": f"rotating: {state.step}" if state.step else "ok", "path": TC2_STATE}


def _dash(value: object) -> str:
    return "-" if value is None else str(value)


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
    if (root / ROTATION_STEP).is_file() and MOVING in (root / ROTATION_STEP).read_text():
        # The node's certificate from the old CA, which it may still hold, stays good until
        # the old CA's CRL goes (and its key, which could list it, is gone already).
        raise VpcmeshError.at(ROTATION_STEP, f"the CA rotation is moving the nodes to the new"
                              f" CA, so revoking {hostname} now would leave its old CA's"
                              " certificate good: first retire the old CA ('vpcmesh pki"
                              " rotate ca', with --no-wait in haste: a node that has not"
                              " moved is cut off), then revoke")
    return _report(root, revoke={hostname})


def renew(root: Path, hostname: str | None) -> int:
    if hostname is not None and not (root / NODES_DIR / f"{hostname}.yaml").is_file():
        raise VpcmeshError.at(f"{NODES_DIR}/{hostname}.yaml",
                              f"no such node '{hostname}' to renew")
    if hostname is None:
        return _report(root, renew_crl=True)
    return _report(root, renew={hostname})
