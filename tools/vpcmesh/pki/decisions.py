"""Deciding what the PKI must change, and why, before anything is touched."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass, field
from enum import Enum

from cryptography import x509

from vpcmesh.errors import Location, Problem, Severity
from vpcmesh.model.layout import CA_CERT, CRL_FILE, ROTATION_CRL, issued_cert
from vpcmesh.pki import x509 as pki
from vpcmesh.pki.store import Store
from vpcmesh.pki.tc2rotation import Tc2State, client_token, server_token
from vpcmesh.planning.addresses import Plan


class Reason(Enum):
    """Why the PKI changes something; code branches on these, people read `Decision`."""

    NEW_NODE = "new node"
    ROLE_CHANGED = "role changed to {}"
    HUB_LINKS = "a second hub: it now also connects to the other hubs as a client"
    TLS_CRYPT_V2 = "its tls-crypt-v2 keys are missing, or for other hubs or server keys"
    ALGORITHM_CHANGED = "pki.algorithm changed to {}"
    KEY_MISSING = "its private key is missing from secrets/"
    EXPIRED = "expired on {}"
    EXPIRING = "expires on {}"
    RENEW_REQUESTED = "renewal requested"
    REVOKED_AND_REPLACED = "revoked and replaced"
    REVOKE_REQUESTED = "revoke requested"
    NODE_REMOVED = "node removed"
    RECIPIENTS_CHANGED = "its age recipients changed"
    CERTS_REVOKED = "certificates revoked"
    NO_CRL = "no CRL yet"
    CRL_DUE = "next update due {}"


@dataclass(frozen=True)
class Decision:
    reason: Reason
    detail: str = ""  # what the display text names: a role, an algorithm, a date

    def __str__(self) -> str:
        return self.reason.value.format(self.detail)


@dataclass(frozen=True)
class PkiPlan:
    issue: dict[str, Decision] = field(default_factory=dict)
    revoke: dict[str, Decision] = field(default_factory=dict)
    rewrap: dict[str, Decision] = field(default_factory=dict)  # same key, new recipients
    admin_rewrap: bool = False
    crl: Decision | None = None  # why the CRL is re-issued
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
                    window: dt.timedelta) -> tuple[Decision | None, bool]:
    """Why `host` needs a new certificate and key, and whether that may wait."""
    cert = store.certs.get(host)
    if cert is None:
        return Decision(Reason.NEW_NODE), False
    if pki.is_server(cert) != is_hub:
        return Decision(Reason.ROLE_CHANGED, "hub" if is_hub else "spoke"), False
    if is_hub and len(plan.hubs) > 1 and not pki.is_client(cert):
        return Decision(Reason.HUB_LINKS), False
    if store.crl is not None and \
            store.crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None:
        return Decision(Reason.REVOKED_AND_REPLACED), False  # an interrupted revoke
    if pki.algorithm_of(cert.public_key()) != plan.mesh.pki.algorithm:
        return Decision(Reason.ALGORITHM_CHANGED, plan.mesh.pki.algorithm), False
    secret = store.secrets.get(host)
    if secret is None or secret.cert_sha256 != pki.fingerprint(cert):
        return Decision(Reason.KEY_MISSING), False
    if plan.mesh.vpn.tls_crypt_v2 and \
            secret.tls_crypt_v2 != tls_crypt_v2_keys(plan, host, store.tc2):
        return Decision(Reason.TLS_CRYPT_V2), False
    expiry = str(cert.not_valid_after_utc.date())
    if cert.not_valid_after_utc <= now:
        return Decision(Reason.EXPIRED, expiry), False
    if cert.not_valid_after_utc - now <= window:
        return Decision(Reason.EXPIRING, expiry), True
    return None, False


def _crl_reason(store: Store, now: dt.datetime, window: dt.timedelta, revoked: bool,
                renew: bool) -> tuple[Decision | None, bool]:
    """Why the CRL is re-issued, and whether that may wait."""
    if revoked:
        return Decision(Reason.CERTS_REVOKED), False
    if store.crl is None or store.crl.next_update_utc is None:
        return Decision(Reason.NO_CRL), False
    if renew:
        return Decision(Reason.RENEW_REQUESTED), False
    next_update = store.crl.next_update_utc
    if next_update - now <= window:
        return Decision(Reason.CRL_DUE, str(next_update.date())), next_update > now
    return None, False


def tls_crypt_v2_keys(plan: Plan, host: str, tc2: Tc2State) -> str:
    """What a node's secrets hold of tls-crypt-v2: a hub's server key ("server"), then a
    client key for each hub it connects to (two while the server keys rotate), each with
    its generation after the first; what NodeSecret.tls_crypt_v2 reads back."""
    node = next(n for n in plan.nodes if n.hostname == host)
    server = [server_token(tc2.server_generation)] if node.is_hub else []
    return " ".join(server + [client_token(h.hostname, g) for _, h in plan.links(node)
                              for g in tc2.client_generations])


def decide(plan: Plan, store: Store, now: dt.datetime, renew: Collection[str] = (),
           revoke: Collection[str] = (), renew_crl: bool = False) -> PkiPlan:
    window = dt.timedelta(days=plan.mesh.pki.renew_before_days)
    admins = frozenset(plan.mesh.admins)
    issue: dict[str, Decision] = {}
    revoked: dict[str, Decision] = {}
    rewrap: dict[str, Decision] = {}
    urgent = False
    for node in plan.nodes:
        host = node.hostname
        reason, can_wait = _reissue_reason(plan, store, host, node.is_hub, now, window)
        if host in revoke and host in store.certs:
            revoked[host] = Decision(Reason.REVOKE_REQUESTED)
            reason, can_wait = Decision(Reason.REVOKED_AND_REPLACED), False
        elif host in renew:
            reason, can_wait = Decision(Reason.RENEW_REQUESTED), False
        if reason is not None:
            issue[host] = reason
            urgent = urgent or not can_wait
        elif store.secrets[host].recipients != admins | {node.age_recipient}:
            rewrap[host] = Decision(Reason.RECIPIENTS_CHANGED)
            urgent = True
    present = {n.hostname for n in plan.nodes}
    for host in sorted(set(store.certs) - present):
        revoked[host] = Decision(Reason.NODE_REMOVED)
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
                    "rotate it with 'vpcmesh pki rotate ca' (three steps, an hour apart:"
                    " README, 'Rotating keys')")
    out.append(found)
    rotation = store.rotation
    if rotation is not None and rotation.other_crl.next_update_utc is not None:
        # Nothing re-issues it: the step after this one removes it.
        out.append(_expiry("the CRL of the CA rotation", Location(ROTATION_CRL),
                           rotation.other_crl.next_update_utc, now, window,
                           "take the next step of the CA rotation ('vpcmesh pki rotate ca')"
                           " before then"))
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
