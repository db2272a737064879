"""A removed node's notice: `removed.json` in place of its bundle, signed with the mesh's
key like a manifest. It names the mesh, the node and the last version the node had; an
agent acts on it only when its installed version is not above that, so a node added again
later (whose versions continue above it) never takes an old notice for a new removal.

Its `kind` keeps the two signed documents apart: a notice renamed to manifest.json, or a
manifest renamed to removed.json, parses as neither."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from vpcmesh.bundle.manifest import NAME, canonical, check_signature
from vpcmesh.errors import VpcmeshError

KIND = "vpcmesh-removal"
FORMAT = 1
MAX_NOTICE = 4096


@dataclass(frozen=True)
class Removal:
    mesh: str
    hostname: str
    after_version: int  # the node's last version; a bundle above it is a node added again

    def to_bytes(self) -> bytes:
        return canonical({"kind": KIND, "format": FORMAT, "mesh": self.mesh,
                          "hostname": self.hostname, "after_version": self.after_version})


def parse(data: bytes, where: str) -> Removal:
    try:
        decoded = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        decoded = None
    if not isinstance(decoded, dict) or decoded.get("kind") != KIND:
        raise VpcmeshError.at(where, "not a vpcmesh removal notice; ignoring it")
    if decoded.get("format") != FORMAT:
        raise VpcmeshError.at(where, f"removal notice format {decoded.get('format')!r}, but"
                                     f" this agent reads {FORMAT}; upgrade vpcmesh on this node")
    mesh, host, after = decoded.get("mesh"), decoded.get("hostname"), decoded.get("after_version")
    if not (isinstance(mesh, str) and NAME.fullmatch(mesh) and isinstance(host, str)
            and NAME.fullmatch(host) and isinstance(after, int) and not isinstance(after, bool)
            and after >= 0):
        raise VpcmeshError.at(where, "a removal notice with a missing or malformed field;"
                                     " ignoring it")
    return Removal(mesh, host, after)


def verify(data: bytes, signature: bytes, keys: Sequence[Ed25519PublicKey], key_name: str,
           where: str) -> Removal:
    """The signature over the notice's exact bytes first, then its fields."""
    check_signature(data, signature, keys, key_name, where, "removal notice signature",
                    "it")
    return parse(data, where)
