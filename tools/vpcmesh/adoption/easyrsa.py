"""Reading an easy-rsa 3 PKI folder: the CA, the certificates it issued with their keys, and
what it revoked (index.txt and crl.pem). Nothing here writes: the CA key is held in memory
only, to be encrypted to the admins by the caller."""

from __future__ import annotations

import datetime as dt
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import NameOID

from vpcmesh.errors import Location, Problem, Severity, VpcmeshError
from vpcmesh.pki import x509 as pki

MAX_FILE = 1 << 20
NOT_PKI = "missing: is this an easy-rsa 3 PKI folder (the one with ca.crt, issued/, private/)?"


@dataclass(frozen=True)
class OldCert:
    name: str  # its easy-rsa name: issued/<name>.crt
    cert: x509.Certificate
    key: pki.PrivateKey | None  # None: private/<name>.key is missing or unreadable
    at: Location


@dataclass(frozen=True)
class OldPki:
    ca: x509.Certificate
    ca_key: pki.PrivateKey
    certs: dict[str, OldCert]
    revoked: dict[int, dt.datetime]  # serial -> revocation date, from index.txt and crl.pem
    revoked_names: dict[str, Location]  # who those were issued to, where index.txt says so
    crl_number: int
    findings: tuple[Problem, ...]  # warnings: what is not carried over, and why


def read_bytes(path: Path, missing: str = "missing") -> bytes:
    """A regular file of at most 1 MiB (a device or a FIFO would never end)."""
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise VpcmeshError.at(str(path), "not a regular file")
        if info.st_size > MAX_FILE:
            raise VpcmeshError.at(str(path), "larger than 1 MiB: not an OpenVPN or PKI file")
        return path.read_bytes()
    except FileNotFoundError:
        raise VpcmeshError.at(str(path), missing) from None
    except OSError as exc:
        raise VpcmeshError.at(str(path), f"cannot read it: {exc.strerror}") from None


def _key(path: Path, passphrase: bytes | None) -> pki.PrivateKey:
    try:
        return pki.load_key(read_bytes(path, NOT_PKI), passphrase)
    except TypeError:
        raise VpcmeshError.at(str(path), "encrypted with a passphrase: give it with"
                                         " --ca-passphrase-file FILE") from None
    except ValueError:
        raise VpcmeshError.at(str(path), "not a PEM private key of a kind OpenVPN uses, or"
                                         " the passphrase is wrong") from None


def _cert(path: Path) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(read_bytes(path, NOT_PKI))
    except ValueError:
        raise VpcmeshError.at(str(path), "not a PEM certificate") from None


def common_name(cert: x509.Certificate) -> str:
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else ""


def _index(path: Path) -> tuple[dict[int, dt.datetime], dict[str, Location]]:
    """index.txt: `R<TAB>expiry<TAB>revoked[,reason]<TAB>serial<TAB>file<TAB>/CN=...`; the
    revoked serials, and the names they were issued to (easy-rsa moves their files)."""
    if not path.exists():
        return {}, {}
    revoked, names = {}, {}
    for n, line in enumerate(read_bytes(path).decode(errors="replace").splitlines(), 1):
        fields = line.split("\t")
        if not fields or fields[0] != "R":
            continue
        at = Location(str(path), n, 1)
        try:
            when = dt.datetime.strptime(fields[2].split(",")[0], "%y%m%d%H%M%SZ")
            revoked[int(fields[3], 16)] = when.replace(tzinfo=dt.timezone.utc)
        except (IndexError, ValueError):
            raise VpcmeshError.at(at, "not an index.txt line of openssl ca: R, expiry,"
                                      " revocation date, serial") from None
        subject = fields[-1]
        if "/CN=" in subject:
            names[subject.split("/CN=")[1].split("/")[0]] = at
    return revoked, names


def read_pki(folder: Path, ca_passphrase: bytes | None, now: dt.datetime) -> OldPki:
    ca = _cert(folder / "ca.crt")
    ca_key = _key(folder / "private/ca.key", ca_passphrase)
    problems: list[Problem] = []
    if not pki.public_matches(ca_key, ca):
        problems.append(Problem(Location(str(folder / "private/ca.key")),
                                "does not belong to ca.crt; give the PKI folder the CA"
                                " was made in"))
    if ca.not_valid_after_utc <= now:
        problems.append(Problem(Location(str(folder / "ca.crt")), "expired on"
                                f" {ca.not_valid_after_utc.date()}: no certificate it signed"
                                " is accepted; a new mesh (vpcmesh init) is the way"))
    findings: list[Problem] = []
    certs: dict[str, OldCert] = {}
    issued = folder / "issued"
    for path in sorted(issued.glob("*.crt")) if issued.is_dir() else []:
        name, at = path.name.removesuffix(".crt"), Location(str(path))
        try:
            cert = _cert(path)
        except VpcmeshError as exc:
            problems.extend(exc.problems)
            continue
        if not pki.signed_by(cert, ca):
            findings.append(Problem(at, "not signed by ca.crt: left out", Severity.WARNING))
            continue
        key = None
        key_path = folder / "private" / f"{name}.key"
        if key_path.exists():
            try:
                key = _key(key_path, None)
            except VpcmeshError as exc:
                findings.extend(Problem(p.location, p.message, Severity.WARNING)
                                for p in exc.problems)
            else:
                if not pki.public_matches(key, cert):
                    findings.append(Problem(Location(str(key_path)), "does not belong to"
                                            f" {path.name}: not used", Severity.WARNING))
                    key = None
        certs[name] = OldCert(name, cert, key, at)
    revoked, revoked_names = _index(folder / "index.txt")
    number = 0
    crl_path = folder / "crl.pem"
    if crl_path.exists():
        try:
            crl = x509.load_pem_x509_crl(read_bytes(crl_path))
        except ValueError:
            crl = None
            problems.append(Problem(Location(str(crl_path)), "not a PEM CRL"))
        if crl is not None and not pki.signed_by(crl, ca):
            problems.append(Problem(Location(str(crl_path)), "not signed by ca.crt"))
        elif crl is not None:
            number = pki.crl_number(crl)
            for entry in crl:
                revoked.setdefault(entry.serial_number, entry.revocation_date_utc)
    if problems:
        raise VpcmeshError(problems)
    return OldPki(ca, ca_key, certs, revoked, revoked_names, number, tuple(findings))
