"""What the repository holds of the PKI: public certificates, the CRL, and the readable part
of the SOPS files. Reading it needs no private key."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from vpcmesh import pki, sops
from vpcmesh.cache import NO_CACHE, ParseCache, key
from vpcmesh.errors import Location, Problem, VpcmeshError
from vpcmesh.layout import (
    ADMIN_SECRETS,
    CA_CERT,
    CRL_FILE,
    ISSUED_DIR,
    NODE_SECRETS_DIR,
    SIGNING_PUB,
    issued_cert,
)

CERT_SHA256 = "cert_sha256" + sops.UNENCRYPTED_SUFFIX


@dataclass(frozen=True)
class NodeSecret:
    recipients: frozenset[str]
    cert_sha256: str
    data: bytes


@dataclass(frozen=True)
class Store:
    ca: x509.Certificate
    ca_pem: bytes
    crl: x509.CertificateRevocationList | None
    crl_pem: bytes
    certs: dict[str, x509.Certificate]
    cert_pems: dict[str, bytes]
    secrets: dict[str, NodeSecret]
    admin_recipients: frozenset[str]
    signing_pub: bytes
    # Not signed by this CA: ignored (as if missing) but reported unless being renewed.
    foreign: dict[str, Problem]
    crl_problem: Problem | None

    def problems(self, renew: Collection[str] = (), renew_crl: bool = False) -> list[Problem]:
        found = [p for host, p in self.foreign.items() if host not in renew]
        if self.crl_problem is not None and not (renew_crl or renew):
            found.append(self.crl_problem)
        return found


def _read_cert(root: Path, rel: str, problems: list[Problem]) -> tuple[x509.Certificate, bytes
                                                                      ] | None:
    data = (root / rel).read_bytes()
    try:
        return x509.load_pem_x509_certificate(data), data
    except ValueError:
        problems.append(Problem(Location(rel), "not a PEM certificate; restore it from git"))
        return None


def _scan(path: Path, rel: str, cache: ParseCache) -> tuple[frozenset[str], dict[str, str], bytes]:
    data = path.read_bytes()
    name = key("sops", data)
    hit = cache.get(name)
    if hit is not None:
        return frozenset(hit[0]), dict(hit[1]), data
    recipients, readable = sops.scan(path, rel)
    cache.put(name, [sorted(recipients), readable])
    return recipients, readable, data


def _read_node_secrets(root: Path, problems: list[Problem],
                       cache: ParseCache) -> dict[str, NodeSecret]:
    out = {}
    for path in sorted((root / NODE_SECRETS_DIR).glob("*.sops.yaml")):
        rel = f"{NODE_SECRETS_DIR}/{path.name}"
        try:
            recipients, readable, data = _scan(path, rel, cache)
        except VpcmeshError as exc:
            problems.extend(exc.problems)
            continue
        host = path.name.removesuffix(".sops.yaml")
        out[host] = NodeSecret(recipients, readable.get(CERT_SHA256, ""), data)
    return out


def _signed(cert: x509.Certificate, pem: bytes, ca: x509.Certificate, ca_pem: bytes,
            cache: ParseCache) -> bool:
    name = key("signed", pem, ca_pem)
    if cache.get(name):
        return True
    ok = pki.signed_by(cert, ca)
    if ok:
        cache.put(name, True)
    return ok


def read_store(root: Path, cache: ParseCache = NO_CACHE) -> Store:
    """Everything public of the PKI; raises VpcmeshError listing every inconsistency."""
    problems: list[Problem] = []
    if not (root / CA_CERT).is_file() or not (root / ADMIN_SECRETS).is_file():
        missing = CA_CERT if not (root / CA_CERT).is_file() else ADMIN_SECRETS
        raise VpcmeshError.at(missing, "missing: this mesh has no PKI yet; run 'vpcmesh init'"
                                       " to create the CA and the mesh secrets")
    loaded = _read_cert(root, CA_CERT, problems)
    if loaded is None:
        raise VpcmeshError(problems)
    ca, ca_pem = loaded
    certs, pems, foreign = {}, {}, {}
    for path in sorted((root / ISSUED_DIR).glob("*.crt")):
        host, rel = path.stem, issued_cert(path.stem)
        got = _read_cert(root, rel, problems)
        if got is None:
            continue
        if not _signed(got[0], got[1], ca, ca_pem, cache):
            foreign[host] = Problem(Location(rel), f"not signed by {CA_CERT} (the CA changed?);"
                                                   f" run 'vpcmesh pki renew {host}'")
            continue
        certs[host], pems[host] = got
    crl, crl_pem, crl_problem = None, b"", None
    if (root / CRL_FILE).is_file():
        crl_pem = (root / CRL_FILE).read_bytes()
        try:
            crl = x509.load_pem_x509_crl(crl_pem)
        except ValueError:
            problems.append(Problem(Location(CRL_FILE), "not a PEM CRL; run 'vpcmesh pki renew'"))
        else:
            if not pki.signed_by(crl, ca):
                crl_problem = Problem(Location(CRL_FILE), f"not signed by {CA_CERT};"
                                                          " run 'vpcmesh pki renew'")
                crl = None
    try:
        admin, _, _ = _scan(root / ADMIN_SECRETS, ADMIN_SECRETS, cache)
    except VpcmeshError as exc:
        problems.extend(exc.problems)
        admin = frozenset()
    secrets = _read_node_secrets(root, problems, cache)
    if problems:
        raise VpcmeshError(problems)
    signing = (root / SIGNING_PUB).read_bytes() if (root / SIGNING_PUB).is_file() else b""
    return Store(ca, ca_pem, crl, crl_pem, certs, pems, secrets, admin, signing, foreign,
                 crl_problem)
