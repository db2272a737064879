"""What the repository holds of the PKI: public certificates, the CRL, and the readable part
of the SOPS files. Reading it needs no private key."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

from cryptography import x509

from vpcmesh.bundle import keychain
from vpcmesh.errors import Location, Problem, VpcmeshError
from vpcmesh.model.cache import ParseCache, key
from vpcmesh.model.layout import (
    ADMIN_SECRETS,
    CA_CERT,
    CRL_FILE,
    ISSUED_DIR,
    NODE_SECRETS_DIR,
    SIGNING_CHAIN,
    SIGNING_PUB,
    issued_cert,
)
from vpcmesh.model.snapshot import Kind, Snapshot
from vpcmesh.pki import x509 as pki
from vpcmesh.pki.carotation import INTRODUCED, CaRotation, read_rotation
from vpcmesh.pki.tc2rotation import Tc2State, read_tc2
from vpcmesh.secrets import sopsfile
from vpcmesh.secrets.sops import UNENCRYPTED_SUFFIX

CERT_SHA256 = "cert_sha256" + UNENCRYPTED_SUFFIX
# Which tls-crypt-v2 keys the file holds ("server" on a hub, then the hubs it has a client key
# for): readable, so a render knows without decrypting whether they are still the right ones.
TLS_CRYPT_V2 = "tls_crypt_v2" + UNENCRYPTED_SUFFIX


@dataclass(frozen=True)
class NodeSecret:
    recipients: frozenset[str]
    cert_sha256: str
    data: bytes
    tls_crypt_v2: str = ""


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
    chain: keychain.Chain | None = None  # the signing key's rotations, once there was one
    rotation: CaRotation | None = None  # a CA rotation under way (pki/carotation.py)
    # The hubs' tls-crypt-v2 server keys: generation, rotation (pki/tc2rotation.py).
    tc2: Tc2State = field(default_factory=Tc2State)

    @property
    def trusted_pem(self) -> bytes:
        """A node's ca.crt: the CA, and while it rotates, the other one too."""
        return self.rotation.both(self.ca_pem, self.rotation.other_pem) if self.rotation \
            else self.ca_pem

    @property
    def server_ca_pem(self) -> bytes:
        """A hub's ca.crt for its server: the old CA alone until it is retired. OpenVPN's
        server refuses a file of two CAs with one name (its list of CA names for clients);
        it accepts the new CA's certificates through the cross certificate sent with them."""
        if self.rotation is None:
            return self.ca_pem
        return self.ca_pem if self.rotation.step == INTRODUCED else self.rotation.other_pem

    @property
    def crls_pem(self) -> bytes:
        """A node's crl.pem: OpenVPN checks every certificate of a chain, so each CA a
        peer's chain may pass through needs its CRL there."""
        return self.rotation.both(self.crl_pem, self.rotation.other_crl_pem) \
            if self.rotation else self.crl_pem

    def revoked(self) -> list[int]:
        """Every serial a CRL of the mesh lists (a hub's tls-crypt-v2 check reads them)."""
        crls = [self.crl, self.rotation.other_crl if self.rotation else None]
        return sorted({r.serial_number for crl in crls if crl is not None for r in crl})

    @property
    def signing_id(self) -> str:
        """Which key signs the bundles: "" for the mesh's first, else the last link's."""
        if self.chain is None or not self.chain.links:
            return ""
        return keychain.key_id(self.chain.links[-1].public_keys(SIGNING_CHAIN)[0])

    def problems(self, renew: Collection[str] = (), renew_crl: bool = False) -> list[Problem]:
        found = [p for host, p in self.foreign.items() if host not in renew]
        if self.crl_problem is not None and not (renew_crl or renew):
            found.append(self.crl_problem)
        return found


def _read_cert(snap: Snapshot, rel: str, problems: list[Problem]
               ) -> tuple[x509.Certificate, bytes] | None:
    data = snap.read(rel)
    try:
        return x509.load_pem_x509_certificate(data), data
    except ValueError:
        problems.append(Problem(Location(rel), "not a PEM certificate; restore it from git"))
        return None


def _scan(snap: Snapshot, rel: str) -> tuple[frozenset[str], dict[str, str], bytes]:
    data = snap.read(rel)
    name = key("sops", data)
    hit = snap.cache.get(name)
    if hit is not None:
        return frozenset(hit[0]), dict(hit[1]), data
    recipients, readable = sopsfile.scan(data, rel)
    snap.cache.put(name, [sorted(recipients), readable])
    return recipients, readable, data


def _files(snap: Snapshot, folder: str, suffix: str, problems: list[Problem]) -> list[str]:
    """The files named *suffix in `folder`; a link there is refused, never followed."""
    out = []
    for name, kind in snap.children(folder):
        rel = f"{folder}/{name}"
        if not name.endswith(suffix):
            continue
        if kind is Kind.FILE:
            out.append(rel)  # links: Snapshot.refused() reports them
    return out


def _read_node_secrets(snap: Snapshot, problems: list[Problem]) -> dict[str, NodeSecret]:
    out = {}
    for rel in _files(snap, NODE_SECRETS_DIR, ".sops.yaml", problems):
        try:
            recipients, readable, data = _scan(snap, rel)
        except VpcmeshError as exc:
            problems.extend(exc.problems)
            continue
        host = rel.rpartition("/")[2].removesuffix(".sops.yaml")
        out[host] = NodeSecret(recipients, readable.get(CERT_SHA256, ""), data,
                               readable.get(TLS_CRYPT_V2, ""))
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


def read_store(snap: Snapshot) -> Store:
    """Everything public of the PKI; raises VpcmeshError listing every inconsistency."""
    problems: list[Problem] = []
    if not snap.is_file(CA_CERT) or not snap.is_file(ADMIN_SECRETS):
        missing = CA_CERT if not snap.is_file(CA_CERT) else ADMIN_SECRETS
        raise VpcmeshError.at(missing, "missing: this mesh has no PKI yet; run 'vpcmesh init'"
                                       " to create the CA and the mesh secrets")
    loaded = _read_cert(snap, CA_CERT, problems)
    if loaded is None:
        raise VpcmeshError(problems)
    ca, ca_pem = loaded
    certs, pems, foreign = {}, {}, {}
    for rel in _files(snap, ISSUED_DIR, ".crt", problems):
        host = rel.rpartition("/")[2].removesuffix(".crt")
        got = _read_cert(snap, issued_cert(host), problems)
        if got is None:
            continue
        if not _signed(got[0], got[1], ca, ca_pem, snap.cache):
            foreign[host] = Problem(Location(rel), f"not signed by {CA_CERT} (the CA changed?);"
                                                   f" run 'vpcmesh pki renew {host}'")
            continue
        certs[host], pems[host] = got
    crl, crl_pem, crl_problem = None, b"", None
    if snap.is_file(CRL_FILE):
        crl_pem = snap.read(CRL_FILE)
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
        admin, _, _ = _scan(snap, ADMIN_SECRETS)
    except VpcmeshError as exc:
        problems.extend(exc.problems)
        admin = frozenset()
    secrets = _read_node_secrets(snap, problems)
    if problems:
        raise VpcmeshError(problems)
    signing = snap.read(SIGNING_PUB) if snap.is_file(SIGNING_PUB) else b""
    chain = _read_chain(snap, signing)
    return Store(ca, ca_pem, crl, crl_pem, certs, pems, secrets, admin, signing, foreign,
                 crl_problem, chain, read_rotation(snap, ca), read_tc2(snap))


def _read_chain(snap: Snapshot, signing: bytes) -> keychain.Chain | None:
    """The chain, checked against mesh/signing.pub: both change together in a rotation, so
    a difference is an interrupted one (or a hand edit)."""
    if not snap.is_file(SIGNING_CHAIN):
        return None
    chain = keychain.parse(snap.read(SIGNING_CHAIN), SIGNING_CHAIN)
    if chain.links and not keychain.same(
            keychain.load_keys(signing, SIGNING_PUB),
            chain.links[-1].public_keys(SIGNING_CHAIN)):
        raise VpcmeshError.at(SIGNING_PUB, f"does not hold the keys of the last link of"
                                           f" {SIGNING_CHAIN} (an interrupted 'vpcmesh pki"
                                           " rotate signing-key'?); restore mesh/ and"
                                           " secrets/ from git and run it again")
    return chain
