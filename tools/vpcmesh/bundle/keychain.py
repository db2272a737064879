"""The bundle-signing key set, and how it changes without stranding a VM: signing-keys.json.

An agent trusts a set of Ed25519 keys: its trust file holds one or more PEM public keys
(mesh/signing.pub when it was bootstrapped). Rotating the signing key appends a link to the
mesh's chain: the new set, signed by a key of the set before it. Every bundle folder carries
the whole chain beside its manifest, and before it verifies a manifest an agent follows the
chain from the set it trusts, one link at a time, each link checked with the keys the one
before gave it (as TUF clients walk root versions). A VM that slept through any number of
rotations follows them all on its next pull; a link nobody trusted signs moves nothing, so
whoever serves the bundles cannot hand a VM a key of their own."""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_public_key,
)

from vpcmesh.bundle.manifest import NAME, TIME_FORMAT, canonical, check_signature, parse_time
from vpcmesh.errors import VpcmeshError

KIND = "vpcmesh-signing-keys"
FORMAT = 1
MAX_CHAIN = 256 << 10  # bytes; a rotation a day for years stays far below it
MAX_LINKS = 1000
MAX_KEYS = 8  # per set: the signing key, and room for a standby
_PEM = re.compile(rb"-----BEGIN PUBLIC KEY-----\r?\n.*?-----END PUBLIC KEY-----", re.S)


def raw(key: Ed25519PublicKey) -> str:
    """A key as it appears in the chain: its 32 bytes in base64."""
    return base64.b64encode(key.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()


def key_id(key: Ed25519PublicKey) -> str:
    """A short name for logs and `pki status`: the first 16 hex digits of the raw key."""
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw).hex()[:16]


def to_pem(keys: Sequence[Ed25519PublicKey]) -> bytes:
    return b"".join(k.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
                    for k in keys)


def load_keys(pem: bytes, where: str) -> tuple[Ed25519PublicKey, ...]:
    """A trust file: one or more PEM public keys, each Ed25519."""
    blocks = _PEM.findall(pem)
    if not blocks or len(blocks) > MAX_KEYS:
        raise VpcmeshError.at(where, f"holds no PEM public key (or more than {MAX_KEYS});"
                                     " use the mesh's mesh/signing.pub")
    out = []
    for block in blocks:
        try:
            key = load_pem_public_key(block)
        except ValueError as exc:
            raise VpcmeshError.at(where, f"not an Ed25519 public key: {exc}") from None
        if not isinstance(key, Ed25519PublicKey):
            raise VpcmeshError.at(where, "not an Ed25519 public key; use the mesh's"
                                         " mesh/signing.pub")
        out.append(key)
    return tuple(out)


def _from_raw(text: object, where: str) -> Ed25519PublicKey:
    try:
        data = base64.b64decode(str(text), validate=True)
        if not isinstance(text, str) or len(data) != 32:
            raise ValueError
        return Ed25519PublicKey.from_public_bytes(data)
    except (ValueError, binascii.Error):
        raise VpcmeshError.at(where, "a signing-key link names a key that is not 32 bytes of"
                                     " base64; refusing the chain") from None


@dataclass(frozen=True)
class Link:
    version: int  # the set it makes: 1 is the mesh's first key, each rotation adds one
    keys: tuple[str, ...]  # raw(key) of each key of the new set
    made: str
    signature: str  # base64, by a key of the set before

    def payload(self, mesh: str) -> bytes:
        """What the signature covers; `kind` keeps it apart from a manifest or a notice."""
        return canonical({"kind": KIND, "format": FORMAT, "mesh": mesh,
                          "version": self.version, "keys": list(self.keys), "made": self.made})

    def public_keys(self, where: str) -> tuple[Ed25519PublicKey, ...]:
        return tuple(_from_raw(k, where) for k in self.keys)


@dataclass(frozen=True)
class Chain:
    mesh: str
    links: tuple[Link, ...]

    def to_bytes(self) -> bytes:
        return canonical({"kind": KIND, "format": FORMAT, "mesh": self.mesh,
                          "links": [{"version": k.version, "keys": list(k.keys),
                                     "made": k.made, "signature": k.signature}
                                    for k in self.links]})

    @property
    def version(self) -> int:
        return self.links[-1].version if self.links else 1

    def extend(self, keys: Sequence[Ed25519PublicKey], made: str,
               sign: Callable[[bytes], bytes]) -> Chain:
        """The chain with one more link; `sign` is the outgoing key's."""
        link = Link(self.version + 1, tuple(raw(k) for k in keys), made, "")
        signature = base64.b64encode(sign(link.payload(self.mesh))).decode()
        return Chain(self.mesh, (*self.links, Link(link.version, link.keys, made, signature)))


def parse(data: bytes, where: str) -> Chain:
    if len(data) > MAX_CHAIN:
        raise VpcmeshError.at(where, f"larger than the {MAX_CHAIN} bytes a signing-key chain"
                                     " may have; refusing it")
    try:
        decoded = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        decoded = None
    if not isinstance(decoded, dict) or decoded.get("kind") != KIND:
        raise VpcmeshError.at(where, "not a vpcmesh signing-key chain; refusing it")
    if decoded.get("format") != FORMAT:
        raise VpcmeshError.at(where, f"signing-key chain format {decoded.get('format')!r}, but"
                                     f" this version reads {FORMAT}; upgrade vpcmesh")
    mesh, raw_links = decoded.get("mesh"), decoded.get("links")
    if not isinstance(mesh, str) or not NAME.fullmatch(mesh) or not isinstance(raw_links, list) \
            or len(raw_links) > MAX_LINKS:
        raise VpcmeshError.at(where, "a signing-key chain without a mesh name or a list of"
                                     " links; refusing it")
    links = []
    for number, item in enumerate(raw_links, start=2):
        ok = isinstance(item, dict) and item.get("version") == number and isinstance(
            item.get("keys"), list) and 0 < len(item["keys"]) <= MAX_KEYS and all(
            isinstance(k, str) for k in item["keys"]) and isinstance(item.get("made"), str) \
            and isinstance(item.get("signature"), str)
        if ok:
            try:
                parse_time(item["made"])
            except ValueError:
                ok = False
        if not ok:
            raise VpcmeshError.at(where, f"link {number} of the signing-key chain is malformed"
                                         f" (version, keys, made as {TIME_FORMAT}, signature);"
                                         " refusing it")
        link = Link(number, tuple(item["keys"]), item["made"], item["signature"])
        link.public_keys(where)
        links.append(link)
    return Chain(mesh, tuple(links))


def same(a: Sequence[Ed25519PublicKey], b: Sequence[Ed25519PublicKey]) -> bool:
    return sorted(raw(k) for k in a) == sorted(raw(k) for k in b)


def follow(chain: Chain, trusted: tuple[Ed25519PublicKey, ...], where: str
           ) -> tuple[tuple[Ed25519PublicKey, ...], tuple[int, ...]]:
    """The set `trusted` leads to, and the links taken: each link in order whose signature
    verifies with a key of the set so far replaces it. Links before the trusted set (a VM
    bootstrapped after them) and links nobody trusted signs are passed by."""
    keys, taken = trusted, []
    for link in chain.links:
        new = link.public_keys(where)
        if same(new, keys):
            continue
        try:
            check_signature(link.payload(chain.mesh), link.signature.encode(), keys,
                            "the keys trusted so far", where, f"link {link.version}", "it")
        except VpcmeshError:
            continue
        keys = new
        taken.append(link.version)
    return keys, tuple(taken)
