"""Which signing keys this node trusts: its trust file's, moved along the mesh's chain of
rotations (bundle/keychain.py) when the source has one, and written back when they moved,
so the next pull starts from the new set and a retired key is trusted no more."""

from __future__ import annotations

import logging
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from vpcmesh.agent.sources import Source
from vpcmesh.bundle import keychain, names
from vpcmesh.errors import VpcmeshError
from vpcmesh.fsio import replace_file

log = logging.getLogger("vpcmesh.agent")


def read(path: Path) -> tuple[Ed25519PublicKey, ...]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise VpcmeshError.at(str(path), f"cannot read: {exc.strerror}") from None
    return keychain.load_keys(data, str(path))


def trusted(source: Source, host: str, path: Path) -> tuple[Ed25519PublicKey, ...]:
    """The keys to verify this pull's manifest (or removal notice) with."""
    keys = read(path)
    try:
        data = source.read(host, names.SIGNING_KEYS, keychain.MAX_CHAIN)
    except VpcmeshError:
        return keys  # no rotation yet, or the source lacks it: the manifest's check decides
    where = source.where(host, names.SIGNING_KEYS)
    chain = keychain.parse(data, where)
    moved, taken = keychain.follow(chain, keys, where)
    if not taken:
        return keys
    try:
        replace_file(path, keychain.to_pem(moved), durable=True)
    except OSError as exc:
        raise VpcmeshError.at(str(path), f"cannot write the signing keys the mesh moved to"
                                         f" (link {taken[-1]} of {where}):"
                                         f" {exc.strerror}") from None
    log.warning("%s: trusting signing key(s) %s from now on (the mesh rotated its key: link"
                " %s of %s)", path, ", ".join(keychain.key_id(k) for k in moved),
                ", ".join(map(str, taken)), where)
    return moved
