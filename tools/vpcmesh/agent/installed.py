"""The installed certificate and CRL, read for their dates (status, metrics, doctor).

A file that is missing or unreadable is None: each caller says what that means to it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from vpcmesh.bundle import names

if TYPE_CHECKING:  # cryptography's x509 loads only when a date is asked for
    from cryptography import x509


def certificate(conf_dir: Path, hostname: str) -> x509.Certificate | None:
    from cryptography import x509

    try:
        return x509.load_pem_x509_certificate((conf_dir / f"{hostname}.crt").read_bytes())
    except (OSError, ValueError):
        return None


def crl(conf_dir: Path) -> x509.CertificateRevocationList | None:
    from cryptography import x509

    try:
        return x509.load_pem_x509_crl((conf_dir / names.CRL).read_bytes())
    except (OSError, ValueError):
        return None
