"""Rotating the CA with no flag day: three steps, each published and pulled before the next.

1. introduce: a new CA key under the same name (x509.rollover_ca), and a certificate of it by
   the old CA (x509.cross_certify). Every node's ca.crt lists both CAs and its crl.pem both
   CRLs; the old CA still issues. OpenVPN reads crl.pem at every handshake, so the new CRL is
   in force at once: nothing restarts.
2. move: the new CA issues every node a new certificate, sent with the cross certificate.
   A peer that still trusts only the old CA checks it through the cross certificate (and
   the new CA's CRL it already has); one that restarted since trusts the new CA directly.
   Each node restarts once, as for a renewal (hubs one at a time with two hubs). The old
   CA's key leaves the repository.
3. retire: ca.crt and crl.pem hold the new CA alone. With OpenVPN's CRL checks on every
   certificate of a chain, a certificate of the old CA has no CRL left and is refused at
   once, without a restart; ca.crt is read at the next start.

Each step waits for the one before to reach every node (`MIN_WAIT`, or --no-wait)."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

from cryptography import x509

from vpcmesh.errors import VpcmeshError
from vpcmesh.model.layout import (
    CA_CERT,
    ROTATION_CA,
    ROTATION_CRL,
    ROTATION_CROSS,
    ROTATION_STEP,
)
from vpcmesh.model.snapshot import Snapshot
from vpcmesh.pki import x509 as pki

INTRODUCED, MOVING = "introduced", "moving"
# Agents pull every 2 minutes, and retry a failed version within 30: an hour lets every
# running VM take a step before the next one needs it.
MIN_WAIT = dt.timedelta(hours=1)


@dataclass(frozen=True)
class CaRotation:
    step: str  # INTRODUCED: the new CA trusted, the old one issuing; MOVING: the other way
    since: dt.datetime
    other: x509.Certificate  # the CA that does not issue: the new one, then the old one
    other_pem: bytes
    other_crl: x509.CertificateRevocationList
    other_crl_pem: bytes
    cross_pem: bytes  # the new CA's key, certified by the old CA

    def both(self, issuing: bytes, other: bytes) -> bytes:
        """The old CA's first, then the new one's, whichever issues."""
        return issuing + other if self.step == INTRODUCED else other + issuing


def step_bytes(step: str, since: dt.datetime) -> bytes:
    return (json.dumps({"step": step, "since": since.strftime("%Y-%m-%dT%H:%M:%SZ")},
                       sort_keys=True) + "\n").encode()


def _step(snap: Snapshot) -> tuple[str, dt.datetime]:
    try:
        data = json.loads(snap.read(ROTATION_STEP))
        step, since = data["step"], dt.datetime.strptime(data["since"], "%Y-%m-%dT%H:%M:%SZ")
        if step not in (INTRODUCED, MOVING):
            raise ValueError
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise VpcmeshError.at(ROTATION_STEP, "not a vpcmesh CA rotation step; restore"
                                             " mesh/pki/ from git") from None
    return step, since.replace(tzinfo=dt.timezone.utc)


def read_rotation(snap: Snapshot, ca: x509.Certificate) -> CaRotation | None:
    """The rotation under way, checked whole: its files are written together, so a part
    missing or not matching is a hand edit or a bad merge."""
    parts = (ROTATION_STEP, ROTATION_CA, ROTATION_CRL, ROTATION_CROSS)
    present = [rel for rel in parts if snap.is_file(rel)]
    if not present:
        return None
    if len(present) != len(parts):
        missing = next(rel for rel in parts if rel not in present)
        raise VpcmeshError.at(missing, "missing while a CA rotation is under way; restore"
                                       " mesh/pki/ from git")
    step, since = _step(snap)
    other_pem, crl_pem, cross_pem = (snap.read(r) for r in parts[1:])
    try:
        other = x509.load_pem_x509_certificate(other_pem)
        crl = x509.load_pem_x509_crl(crl_pem)
        cross = x509.load_pem_x509_certificate(cross_pem)
    except ValueError:
        raise VpcmeshError.at(ROTATION_CA, "the rotation's certificates or CRL do not parse;"
                                           " restore mesh/pki/ from git") from None
    old, new = (ca, other) if step == INTRODUCED else (other, ca)
    if not (pki.signed_by(crl, other) and pki.signed_by(cross, old)
            and cross.public_key() == new.public_key() and old.subject == new.subject):
        raise VpcmeshError.at(ROTATION_CROSS, f"does not join {CA_CERT} and {ROTATION_CA}"
                                              " (old CA, new key, one name); restore"
                                              " mesh/pki/ from git")
    return CaRotation(step, since, other, other_pem, crl, crl_pem, cross_pem)
