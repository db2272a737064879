"""Deciding what the PKI must change, and why, before anything is touched."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass, field

from cryptography import x509

from vpcmesh import pki
from vpcmesh.errors import Location, Problem, Severity
from vpcmesh.keystore import Store
from vpcmesh.layout import CA_CERT, CRL_FILE, issued_cert
from vpcmesh.plan import Plan


@dataclass(frozen=True)
class PkiPlan:
    issue: dict[str, str] = field(default_factory=dict)    # hostname -> why
    revoke: dict[str, str] = field(default_factory=dict)   # hostname -> why
    rewrap: dict[str, str] = field(default_factory=dict)   # hostname -> why (same key)
    admin_rewrap: bool = False
    crl: str | None = None                                  # why the CRL is re-issued
    # Only due for renewal (nothing new, nothing expired): may wait for the admin key.
    optional: bool = False
    problems: tuple[Problem, ...] = ()

    @property
    def needs_ca_key(self) -> bool:
        return bool(self.issue or self.revoke or self.crl)

    @property
    def needs_admin_key(self) -> bool:
        return self.needs_ca_key or bool(self.rewrap) or self.admin_rewrap

    @property
    def empty(self) -> bool:
        return not self.needs_admin_key


def _expiry(what: str, loc: Location, not_after: dt.datetime, now: dt.datetime,
            window: dt.timedelta, fix: str) -> Problem | None:
    day = not_after.date().isoformat()
    if not_after <= now:
        return Problem(loc, f"{what} expired on {day}; {fix}")
    if not_after - now <= window:
        return Problem(loc, f"{what} expires on {day}; {fix}", Severity.WARNING)
    return None


def _reissue_reason(plan: Plan, store: Store, host: str, is_hub: bool, now: dt.datetime,
                    window: dt.timedelta) -> tuple[str | None, bool]:
    """Why `host` needs a new certificate and key, and whether that may wait."""
    cert = store.certs.get(host)
    if cert is None:
        return "new node", False
    if pki.is_server(cert) != is_hub:
        return f"role changed to {'hub' if is_hub else 'spoke'}", False
    if pki.algorithm_of(cert.public_key()) != plan.mesh.pki.algorithm:
        return f"pki.algorithm changed to {plan.mesh.pki.algorithm}", False
    secret = store.secrets.get(host)
    if secret is None or secret.cert_sha256 != pki.fingerprint(cert):
        return "its private key is missing from secrets/", False
    if cert.not_valid_after_utc <= now:
        return f"expired on {cert.not_valid_after_utc.date()}", False
    if cert.not_valid_after_utc - now <= window:
        return f"expires on {cert.not_valid_after_utc.date()}", True
    return None, False


def _crl_reason(store: Store, now: dt.datetime, window: dt.timedelta, revoked: bool,
                renew: bool) -> tuple[str | None, bool]:
    """Why the CRL is re-issued, and whether that may wait."""
    if revoked:
        return "certificates revoked", False
    if store.crl is None or store.crl.next_update_utc is None:
        return "no CRL yet", False
    if renew:
        return "renewal requested", False
    next_update = store.crl.next_update_utc
    if next_update - now <= window:
        return f"next update due {next_update.date()}", next_update > now
    return None, False


def decide(plan: Plan, store: Store, now: dt.datetime, renew: Collection[str] = (),
           revoke: Collection[str] = (), renew_crl: bool = False) -> PkiPlan:
    window = dt.timedelta(days=plan.mesh.pki.renew_before_days)
    admins = frozenset(plan.mesh.admins)
    issue: dict[str, str] = {}
    revoked: dict[str, str] = {}
    rewrap: dict[str, str] = {}
    urgent = False
    for node in plan.nodes:
        host = node.hostname
        reason, can_wait = _reissue_reason(plan, store, host, node.is_hub, now, window)
        if host in revoke and host in store.certs:
            revoked[host] = "revoke requested"
            reason, can_wait = "revoked and replaced", False
        elif host in renew:
            reason, can_wait = "renewal requested", False
        if reason is not None:
            issue[host] = reason
            urgent = urgent or not can_wait
        elif store.secrets[host].recipients != admins | {node.age_recipient}:
            rewrap[host] = "its age recipients changed"
            urgent = True
    present = {n.hostname for n in plan.nodes}
    for host in sorted(set(store.certs) - present):
        revoked[host] = "node removed"
    crl, crl_can_wait = _crl_reason(store, now, window, bool(revoked), renew_crl or bool(renew))
    admin_rewrap = store.admin_recipients != admins
    urgent = urgent or bool(revoked) or admin_rewrap or (crl is not None and not crl_can_wait)
    return PkiPlan(issue, revoked, rewrap, admin_rewrap, crl, not urgent,
                   tuple(expiry_problems(store, now, window, plan)))


def expiry_problems(store: Store, now: dt.datetime, window: dt.timedelta,
                    plan: Plan) -> list[Problem]:
    """Warnings inside the renewal window, errors once expired: an expired CRL makes
    OpenVPN refuse every client, an expired CA every certificate."""
    out = []
    found = _expiry("the CA", Location(CA_CERT), store.ca.not_valid_after_utc, now, window,
                    "create a new mesh CA with 'vpcmesh init' in a new repository and move"
                    " the nodes over")
    out.append(found)
    crl: x509.CertificateRevocationList | None = store.crl
    if crl is not None and crl.next_update_utc is not None:
        out.append(_expiry("the CRL", Location(CRL_FILE), crl.next_update_utc, now, window,
                           "run 'vpcmesh pki renew' (or render with the admin key)"))
    for node in plan.nodes:
        cert = store.certs.get(node.hostname)
        if cert is not None:
            out.append(_expiry(f"the certificate of {node.hostname}",
                               Location(issued_cert(node.hostname)), cert.not_valid_after_utc,
                               now, window, f"run 'vpcmesh pki renew {node.hostname}' (or"
                                            " render with the admin key)"))
    return [p for p in out if p is not None]
