"""Carrying out a PkiPlan: new certificates, CRL and encrypted keys, all in memory first."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from vpcmesh import pki, sops
from vpcmesh.cache import NO_CACHE, ParseCache, key
from vpcmesh.errors import Problem, VpcmeshError
from vpcmesh.keystore import CERT_SHA256, Store
from vpcmesh.layout import ADMIN_SECRETS, CA_CERT, CRL_FILE, issued_cert, node_secrets
from vpcmesh.pkiplan import PkiPlan
from vpcmesh.plan import Plan

Changes = dict[str, bytes | None]  # repo-relative path -> new bytes, or None to delete
TLS_KEY_FILE = "tls.key"


@dataclass(frozen=True)
class AdminSecrets:
    ca_key: pki.PrivateKey
    tls_key: str
    signing_key: str


def signing_key(admin: AdminSecrets) -> Ed25519PrivateKey:
    key = pki.load_key(admin.signing_key)
    if not isinstance(key, Ed25519PrivateKey):
        raise VpcmeshError.at(ADMIN_SECRETS, "signing_key is not an Ed25519 key")
    return key


def admin_payload(ca_key: pki.PrivateKey, tls_key: str, signing_key: str) -> dict[str, str]:
    return {"ca_key": pki.key_pem(ca_key), "tls_key": tls_key, "signing_key": signing_key}


def node_payload(hostname: str, key: pki.PrivateKey, tls_key: str,
                 cert_sha256: str) -> dict[str, Any]:
    # File names are what the node installs next to its OpenVPN config.
    return {"files": {f"{hostname}.key": pki.key_pem(key), TLS_KEY_FILE: tls_key},
            CERT_SHA256: cert_sha256}


def admin_key_configured() -> bool:
    if any(os.environ.get(v) for v in ("SOPS_AGE_KEY_FILE", "SOPS_AGE_KEY", "SOPS_AGE_KEY_CMD")):
        return True
    config = Path(os.environ.get("XDG_CONFIG_HOME", Path.home() / ".config"))
    return (config / "sops/age/keys.txt").is_file()


def read_admin_secrets(root: Path, store: Store) -> AdminSecrets:
    data = sops.decrypt(root / ADMIN_SECRETS, ADMIN_SECRETS)
    try:
        secrets = AdminSecrets(pki.load_key(data["ca_key"]), str(data["tls_key"]),
                               str(data["signing_key"]))
    except (KeyError, ValueError, TypeError):
        raise VpcmeshError.at(ADMIN_SECRETS, "does not hold ca_key, tls_key and signing_key;"
                                             " restore it from git") from None
    if not pki.public_matches(secrets.ca_key, store.ca):
        raise VpcmeshError.at(ADMIN_SECRETS, f"its CA key does not match {CA_CERT}; restore"
                                             " both from the same commit")
    return secrets


Progress = Callable[[int, int], None]  # (done, total): the caller decides how to show it


def _parallel(jobs: dict[str, Callable[[], bytes]], meanwhile: Callable[[], None] | None = None,
              progress: Progress | None = None) -> dict[str, bytes]:
    """Run sops jobs on a pool sized to the machine, and `meanwhile` in this thread while
    they run; report every failure, not the first."""
    results: dict[str, bytes] = {}
    problems: list[Problem] = []
    with ThreadPoolExecutor(max_workers=max(1, os.cpu_count() or 1)) as pool:
        futures = {path: pool.submit(job) for path, job in sorted(jobs.items())}
        if meanwhile is not None:
            meanwhile()
        for done, (path, future) in enumerate(futures.items(), start=1):
            try:
                results[path] = future.result()
            except VpcmeshError as exc:
                problems.extend(exc.problems)
            if progress is not None:
                progress(done, len(futures))
    if problems:
        raise VpcmeshError(problems)
    return results


def apply(root: Path, plan: Plan, store: Store, actions: PkiPlan, admin: AdminSecrets,
          now: dt.datetime, cache: ParseCache = NO_CACHE,
          meanwhile: Callable[[Changes], None] | None = None,
          progress: Progress | None = None) -> Changes:
    """The new files; what it already knows of them (its own signatures, the recipients it
    encrypted to) goes into `cache`, so reading the store back verifies nothing again.
    `meanwhile` gets the new certificates and CRL while the sops calls run."""
    settings, admins = plan.mesh.pki, list(plan.mesh.admins)
    nodes = {n.hostname: n for n in plan.nodes}
    changes: Changes = {}
    readable: dict[str, tuple[list[str], dict[str, str]]] = {}
    jobs: dict[str, Callable[[], bytes]] = {}
    for host in actions.issue:
        node = nodes[host]
        issued = pki.issue(admin.ca_key, store.ca, host, node.is_hub, settings.algorithm,
                           settings.cert_validity_days, now)
        changes[issued_cert(host)] = pem = pki.cert_pem(issued.cert).encode()
        cache.put(key("signed", pem, store.ca_pem), True)
        payload = node_payload(host, issued.key, admin.tls_key, pki.fingerprint(issued.cert))
        recipients = [*admins, node.age_recipient]
        readable[node_secrets(host)] = (sorted(set(recipients)),
                                        {CERT_SHA256: payload[CERT_SHA256]})
        jobs[node_secrets(host)] = partial(sops.encrypt, payload, recipients, node_secrets(host))
    for host in actions.rewrap:
        wanted = {*admins, nodes[host].age_recipient}
        have = store.secrets[host].recipients
        rel = node_secrets(host)
        jobs[rel] = partial(sops.rotate, root / rel, rel, sorted(wanted - have),
                            sorted(have - wanted))
    if actions.admin_rewrap:
        have, wanted = store.admin_recipients, set(admins)
        jobs[ADMIN_SECRETS] = partial(sops.rotate, root / ADMIN_SECRETS, ADMIN_SECRETS,
                                      sorted(wanted - have), sorted(have - wanted))
    if actions.crl:
        revoked = {r.serial_number: r.revocation_date_utc for r in store.crl or []}
        revoked.update({store.certs[h].serial_number: now for h in actions.revoke})
        number = pki.crl_number(store.crl) + 1 if store.crl is not None else 1
        crl = pki.make_crl(admin.ca_key, store.ca, revoked, number,
                           settings.crl_validity_days, now)
        changes[CRL_FILE] = pki.crl_pem(crl).encode()
    encrypted = _parallel(jobs, (lambda: meanwhile(dict(changes))) if meanwhile else None,
                          progress)
    for rel, (recipients, fields) in readable.items():
        cache.put(key("sops", encrypted[rel]), [recipients, fields])
    changes.update(encrypted)
    for host, why in actions.revoke.items():
        if why == "node removed":
            changes[issued_cert(host)] = None
            changes[node_secrets(host)] = None
    return changes
