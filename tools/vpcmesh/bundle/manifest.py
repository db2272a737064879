"""The contract between the compiler and the node agent: manifest.json, typed.

manifest.json lists every file of a node's bundle with its SHA-256 and size, and says
where and how the node runs it; its exact bytes are signed with Ed25519
(manifest.json.sig). The agent verifies the signature before it parses anything, then
`parse` checks the format and every field: a manifest it cannot understand is refused,
never half-read."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from vpcmesh.bundle import names
from vpcmesh.errors import VpcmeshError

FORMAT = 1  # raised on any change an older agent would misread
# A bundle with service ACLs: an agent from before them would install it and leave the
# ACLs unenforced, so it must refuse the bundle instead (and say to upgrade).
FORMAT_ACL = 2
NEWEST = FORMAT_ACL
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
# A manifest signed from uncommitted changes names its commit so: publish refuses it, and the
# next sign on a clean checkout signs it again.
DIRTY = "-dirty"
MAX_FILE = 1 << 20  # a bundle file larger than this is refused before it is read
MAX_FILES = 4096  # a hub with 4,000 spokes; a bundle listing more is refused
MAX_TOTAL = 64 << 20  # bytes of a whole bundle: what an agent may be made to hold
NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")  # a mesh or node name
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_ADDRESS = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")
_CONFIG = re.compile(r"^[a-z0-9][a-z0-9-]*\.conf$")
_PATH_PART = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@-]*$")
_UNIT = re.compile(r"^[a-z0-9][a-z0-9-]*@[a-z0-9][a-z0-9-]*$")
# The units besides OpenVPN an agent knows how to run; a manifest naming another is refused
# (an older agent must not half-apply a bundle it does not understand).
UNIT_KINDS = ("resolver", "openvpn-client")
MAX_UNITS = 16


@dataclass(frozen=True)
class FileEntry:
    sha256: str
    size: int

    @classmethod
    def of(cls, data: bytes) -> FileEntry:
        return cls(hashlib.sha256(data).hexdigest(), len(data))


@dataclass(frozen=True)
class Unit:
    """A service besides OpenVPN that the agent runs from the bundle's files."""

    kind: str  # "resolver": unbound, from the bundle's resolver/ files; "openvpn-client":
    # this node's tunnel to one more hub (a mesh with two or more hubs)
    name: str  # its systemd unit, such as vpcmesh-resolver@hangzhou
    listen: str  # the address its health check asks (or expects on this node)
    peer: str = ""  # openvpn-client: the hub it connects to

    def as_json(self) -> dict[str, Any]:
        out = {"kind": self.kind, "name": self.name, "listen": self.listen}
        if self.peer:
            out["peer"] = self.peer
        return out


@dataclass(frozen=True)
class Body:
    """What the compiler decides of a bundle; its digest says whether it needs signing."""

    mesh: str
    hostname: str
    role: str  # "hub" or "spoke"
    openvpn_dir: str  # "server" or "client": Debian's openvpn-server@ / openvpn-client@
    config: str  # <mesh>.conf
    vpn_address: str
    files: Mapping[str, FileEntry]
    units: tuple[Unit, ...] = ()
    hubs: tuple[str, ...] = ()  # two or more hubs: all of them, the preferred one first

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "mesh": self.mesh, "hostname": self.hostname, "role": self.role,
            "openvpn_dir": self.openvpn_dir, "config": self.config,
            "vpn_address": self.vpn_address,
            "files": {rel: {"sha256": e.sha256, "size": e.size}
                      for rel, e in sorted(self.files.items())}}
        # Only when there are any: a bundle without them keeps its bytes (and signature),
        # and an agent from before units ignores the field rather than misreading it.
        if self.units:
            out["units"] = [u.as_json() for u in self.units]
        if self.hubs:
            out["hubs"] = list(self.hubs)
        return out

    def digest(self) -> str:
        return hashlib.sha256(canonical(self.as_json())).hexdigest()

    @property
    def format(self) -> int:
        """The oldest format that says all of it: agents older than a feature refuse it."""
        return FORMAT_ACL if names.ACL in self.files else FORMAT


@dataclass(frozen=True)
class Manifest:
    body: Body
    version: int
    commit: str
    signed_at: str
    expires: str
    format: int = FORMAT

    @property
    def unit(self) -> str:
        return f"openvpn-{self.body.openvpn_dir}@{self.body.mesh}"

    @property
    def expires_at(self) -> dt.datetime:
        return parse_time(self.expires)

    def as_json(self) -> dict[str, Any]:
        return {**self.body.as_json(), "format": self.format, "version": self.version,
                "commit": self.commit, "signed_at": self.signed_at, "expires": self.expires}

    def to_bytes(self) -> bytes:
        return canonical(self.as_json())


def canonical(payload: Mapping[str, Any]) -> bytes:
    # Sorted keys, no whitespace: one form only, and json's C encoder (indent would force
    # the pure-Python one, a quarter of a no-op render at 1,000 nodes). jq reads it fine.
    return (json.dumps(payload, sort_keys=True, separators=(",", ":")) + "\n").encode()


def format_time(when: dt.datetime) -> str:
    return when.astimezone(dt.timezone.utc).strftime(TIME_FORMAT)


def parse_time(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, TIME_FORMAT).replace(tzinfo=dt.timezone.utc)


def safe_relpath(rel: str) -> bool:
    """A path inside the bundle: relative, no '..', no empty or hidden parts."""
    parts = rel.split("/")
    return bool(rel) and all(_PATH_PART.fullmatch(p) for p in parts)


class _Fields:
    """Reads one JSON object field by field; the first bad one names itself."""

    def __init__(self, data: Any, where: str) -> None:
        if not isinstance(data, dict):
            raise VpcmeshError.at(where, "not a vpcmesh manifest (not a JSON object)")
        self.data, self.where = data, where

    def _bad(self, key: str, why: str) -> VpcmeshError:
        return VpcmeshError.at(self.where, f"manifest field '{key}' {why}; refusing the bundle")

    def text(self, key: str, pattern: re.Pattern[str] | None = None) -> str:
        value = self.data.get(key)
        if not isinstance(value, str) or (pattern is not None and not pattern.fullmatch(value)):
            raise self._bad(key, "is missing or malformed")
        return value

    def number(self, key: str) -> int:
        value = self.data.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise self._bad(key, "is missing or not a whole number")
        return value

    def time(self, key: str) -> str:
        value = self.text(key)
        try:
            parse_time(value)
        except ValueError:
            raise self._bad(key, f"is not a time like {TIME_FORMAT}") from None
        return value

    def files(self) -> dict[str, FileEntry]:
        raw = self.data.get("files")
        if not isinstance(raw, dict) or not raw:
            raise self._bad("files", "is missing or empty")
        if len(raw) > MAX_FILES:
            raise self._bad("files", f"lists {len(raw)} files, more than {MAX_FILES}")
        out = {}
        for rel, meta in raw.items():
            if not safe_relpath(rel):
                raise self._bad("files", f"names {rel!r}, a path outside the bundle")
            entry = _Fields(meta, self.where)
            size = entry.number("size")
            if size > MAX_FILE:
                raise self._bad("files", f"lists {rel} at {size} bytes, over {MAX_FILE}")
            out[rel] = FileEntry(entry.text("sha256", _SHA256), size)
        total = sum(e.size for e in out.values())
        if total > MAX_TOTAL:
            raise self._bad("files", f"add up to {total} bytes, more than {MAX_TOTAL}")
        return out

    def units(self) -> tuple[Unit, ...]:
        raw = self.data.get("units", [])
        if not isinstance(raw, list) or len(raw) > MAX_UNITS:
            raise self._bad("units", f"is not a list of at most {MAX_UNITS} units")
        out = []
        for item in raw:
            entry = _Fields(item, self.where)
            kind = entry.text("kind")
            if kind not in UNIT_KINDS:
                raise self._bad("units", f"names a unit of kind '{kind}', which this agent"
                                         " does not run; upgrade vpcmesh on this node")
            peer = entry.text("peer", NAME) if kind == "openvpn-client" else ""
            out.append(Unit(kind, entry.text("name", _UNIT), entry.text("listen", _ADDRESS),
                            peer))
        if len({u.name for u in out}) != len(out):
            raise self._bad("units", "names a unit twice")
        return tuple(out)

    def hubs(self) -> tuple[str, ...]:
        raw = self.data.get("hubs", [])
        if not isinstance(raw, list) or len(raw) > MAX_UNITS or not all(
                isinstance(h, str) and NAME.fullmatch(h) for h in raw) or len(set(raw)) != len(raw):
            raise self._bad("hubs", "is not a list of distinct hostnames")
        return tuple(raw)


def parse(data: bytes, where: str) -> Manifest:
    """The manifest's bytes as a typed Manifest, or a located error saying what is wrong."""
    try:
        decoded = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise VpcmeshError.at(where, "the manifest is not JSON; refusing the bundle") from None
    fields = _Fields(decoded, where)
    found = fields.number("format")
    if not FORMAT <= found <= NEWEST:
        raise VpcmeshError.at(where, f"manifest format {found}, but this agent reads formats"
                                     f" {FORMAT} to {NEWEST}; upgrade vpcmesh on this node")
    role = fields.text("role")
    openvpn_dir = fields.text("openvpn_dir")
    if (role, openvpn_dir) not in (("hub", "server"), ("spoke", "client")):
        raise fields._bad("role", f"is '{role}', which does not go with openvpn_dir"
                          f" '{openvpn_dir}'")
    body = Body(fields.text("mesh", NAME), fields.text("hostname", NAME), role, openvpn_dir,
                fields.text("config", _CONFIG), fields.text("vpn_address", _ADDRESS),
                fields.files(), fields.units(), fields.hubs())
    if body.format != found:
        raise fields._bad("format", f"is {found}, but the files listed need format"
                                    f" {body.format}")
    return Manifest(body, fields.number("version"), fields.text("commit"),
                    fields.time("signed_at"), fields.time("expires"), found)


def check_signature(data: bytes, signature: bytes, keys: Sequence[Ed25519PublicKey],
                    key_name: str, where: str, what: str = "manifest signature",
                    refusing: str = "the bundle") -> None:
    """Good when one key of the set made it (the set holds two while a rotation is under
    way, or a standby key)."""
    try:
        decoded = base64.b64decode(signature.strip(), validate=True)
    except (binascii.Error, ValueError):
        decoded = b""
    for key in keys:
        try:
            key.verify(decoded, data)
            return
        except (InvalidSignature, ValueError):
            continue
    raise VpcmeshError.at(where, f"{what} does not verify with {key_name}; refusing"
                                 f" {refusing}")


def verify(manifest: bytes, signature: bytes, keys: Sequence[Ed25519PublicKey],
           key_name: str, where: str) -> Manifest:
    """Check the signature over the manifest's exact bytes, and only then parse them."""
    check_signature(manifest, signature, keys, key_name, where)
    return parse(manifest, where)
