"""Certificates, keys and CRLs with `cryptography`: pure functions, no files, no subprocess."""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey
# rsa-2048 is easy-rsa's default: a mesh imported from it keeps its certificates
# (`vpcmesh import`); choose another for a new mesh.
ALGORITHMS = ("ec-p256", "ed25519", "rsa-2048", "rsa-3072")
# Backdated so a VM whose clock runs a little behind still accepts a fresh certificate.
CLOCK_SKEW = dt.timedelta(hours=1)


def generate_key(algorithm: str) -> PrivateKey:
    if algorithm == "ec-p256":
        return ec.generate_private_key(ec.SECP256R1())
    if algorithm == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    if algorithm.startswith("rsa-") and algorithm in ALGORITHMS:
        return rsa.generate_private_key(public_exponent=65537, key_size=int(algorithm[4:]))
    raise ValueError(f"unknown algorithm {algorithm!r}")


def algorithm_of(key: object) -> str:
    """The name `pki.algorithm` uses; one outside ALGORITHMS for a key vpcmesh never makes
    (an imported PKI's), so that it is reported rather than taken for another."""
    if isinstance(key, ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey):
        return "ec-p256" if isinstance(key.curve, ec.SECP256R1) else f"ec-{key.curve.name}"
    if isinstance(key, ed25519.Ed25519PublicKey | ed25519.Ed25519PrivateKey):
        return "ed25519"
    if isinstance(key, rsa.RSAPublicKey | rsa.RSAPrivateKey):
        return f"rsa-{key.key_size}"
    return type(key).__name__


def _hash(key: PrivateKey) -> hashes.SHA256 | None:
    return None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()


def key_pem(key: PrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def load_key(pem: str | bytes, password: bytes | None = None) -> PrivateKey:
    """Raises TypeError for an encrypted key without `password`, ValueError otherwise."""
    data = pem.encode() if isinstance(pem, str) else pem
    key = serialization.load_pem_private_key(data, password=password)
    if not isinstance(key, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
                      | rsa.RSAPrivateKey):
        raise ValueError("unsupported private key type")
    return key


def cert_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex()


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _leaf_usage(key: PrivateKey) -> x509.KeyUsage:
    # What the TLS library checks for `remote-cert-tls`: signing always; for ECDHE with EC
    # keys key agreement, for RSA key encipherment.
    return x509.KeyUsage(
        digital_signature=True, content_commitment=False,
        key_encipherment=isinstance(key, rsa.RSAPrivateKey), data_encipherment=False,
        key_agreement=isinstance(key, ec.EllipticCurvePrivateKey), key_cert_sign=False,
        crl_sign=False, encipher_only=False, decipher_only=False)


_CA_USAGE = x509.KeyUsage(
    digital_signature=True, content_commitment=False, key_encipherment=False,
    data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
    encipher_only=False, decipher_only=False)


def make_ca(common_name: str, algorithm: str, days: int, now: dt.datetime
            ) -> tuple[PrivateKey, x509.Certificate]:
    key = generate_key(algorithm)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name)).issuer_name(_name(common_name))
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW).not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_CA_USAGE, critical=True)
        .add_extension(ski, critical=False)
        .sign(key, _hash(key))
    )
    return key, cert


def rollover_ca(old: x509.Certificate, algorithm: str, days: int, now: dt.datetime
                ) -> tuple[PrivateKey, x509.Certificate]:
    """A new CA key under the old CA's name (RFC 4210's key rollover): a node sees one CA
    name throughout, and the cross certificate below is self-issued, so the old CA's
    pathlen:0 still admits it."""
    key = generate_key(algorithm)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(old.subject).issuer_name(old.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW).not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_CA_USAGE, critical=True)
        .add_extension(ski, critical=False)
        .sign(key, _hash(key))
    )
    return key, cert


def cross_certify(old_key: PrivateKey, old: x509.Certificate, new: x509.Certificate,
                  now: dt.datetime) -> x509.Certificate:
    """The new CA's key certified by the old CA ("NewWithOld"): a node that trusts only the
    old CA accepts a certificate the new one issued when the peer sends this with it. Its
    key identifiers (the new key's, the old issuer's) keep it from passing for a root."""
    return (
        x509.CertificateBuilder()
        .subject_name(new.subject).issuer_name(old.subject)
        .public_key(new.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW).not_valid_after(new.not_valid_after_utc)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_CA_USAGE, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(new.public_key()),
                       critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
            old_key.public_key()), critical=False)
        .sign(old_key, _hash(old_key))
    )


def pem_certs(data: bytes) -> list[x509.Certificate]:
    """Every certificate of a PEM file (a chain, or a list of CAs)."""
    return x509.load_pem_x509_certificates(data) if b"BEGIN CERTIFICATE" in data else []


@dataclass(frozen=True)
class Issued:
    key: PrivateKey
    cert: x509.Certificate


def issue(ca_key: PrivateKey, ca_cert: x509.Certificate, hostname: str, server: bool,
          algorithm: str, days: int, now: dt.datetime, client: bool | None = None) -> Issued:
    """`client`: also for TLS clients (default: when not a server)."""
    key = generate_key(algorithm)
    not_after = min(now + dt.timedelta(days=days), ca_cert.not_valid_after_utc)
    usage = [ExtendedKeyUsageOID.SERVER_AUTH] if server else []
    if client if client is not None else not server:
        usage.append(ExtendedKeyUsageOID.CLIENT_AUTH)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(hostname)).issuer_name(ca_cert.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW).not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_leaf_usage(key), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usage), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
            ca_key.public_key()), critical=False)
        .sign(ca_key, _hash(ca_key))
    )
    return Issued(key, cert)


def _usage(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> bool:
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return False
    return oid in eku


def is_server(cert: x509.Certificate) -> bool:
    return _usage(cert, ExtendedKeyUsageOID.SERVER_AUTH)


def is_client(cert: x509.Certificate) -> bool:
    return _usage(cert, ExtendedKeyUsageOID.CLIENT_AUTH)


def signed_by(cert: x509.Certificate | x509.CertificateRevocationList,
              ca_cert: x509.Certificate) -> bool:
    if isinstance(cert, x509.CertificateRevocationList):
        return cert.is_signature_valid(ca_cert.public_key())  # type: ignore[arg-type]
    try:
        cert.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def make_crl(ca_key: PrivateKey, ca_cert: x509.Certificate,
             revoked: dict[int, dt.datetime], number: int, days: int, now: dt.datetime
             ) -> x509.CertificateRevocationList:
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca_cert.subject)
        .last_update(now - CLOCK_SKEW)
        .next_update(now + dt.timedelta(days=days))
        .add_extension(x509.CRLNumber(number), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
            ca_key.public_key()), critical=False)
    )
    for serial, when in sorted(revoked.items()):
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(when).build())
    return builder.sign(ca_key, _hash(ca_key))


def crl_pem(crl: x509.CertificateRevocationList) -> str:
    return crl.public_bytes(serialization.Encoding.PEM).decode()


def crl_number(crl: x509.CertificateRevocationList) -> int:
    try:
        return int(crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number)
    except x509.ExtensionNotFound:
        return 0


def openvpn_static_key() -> str:
    """A 2048-bit key in OpenVPN's static key format (what `openvpn --genkey secret` writes)."""
    hexed = os.urandom(256).hex()
    lines = [hexed[i:i + 32] for i in range(0, len(hexed), 32)]
    return ("#\n# 2048 bit OpenVPN static key\n#\n-----BEGIN OpenVPN Static key V1-----\n"
            + "\n".join(lines) + "\n-----END OpenVPN Static key V1-----\n")


def signing_keypair() -> tuple[str, str]:
    """An Ed25519 key pair for signing bundles: (private PEM, public PEM)."""
    key = ed25519.Ed25519PrivateKey.generate()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return key_pem(key), public.decode()


def public_matches(key: PrivateKey, cert: x509.Certificate) -> bool:
    def raw(k: object) -> bytes:
        return k.public_bytes(serialization.Encoding.DER,  # type: ignore[attr-defined, no-any-return]
                              serialization.PublicFormat.SubjectPublicKeyInfo)
    return raw(key.public_key()) == raw(cert.public_key())
