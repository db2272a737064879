"""The signing-key chain: what an agent follows, and what it refuses or passes by."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from vpcmesh.bundle import keychain
from vpcmesh.errors import VpcmeshError

MADE = "2026-12-01T00:00:00Z"


def _keys(n: int) -> list[Ed25519PrivateKey]:
    return [Ed25519PrivateKey.generate() for _ in range(n)]


def _chain(keys: list[Ed25519PrivateKey]) -> keychain.Chain:
    """keys[0] is the mesh's first key; each later one rotated in by the one before."""
    chain = keychain.Chain("example", ())
    for before, after in zip(keys, keys[1:]):
        chain = chain.extend([after.public_key()], MADE, before.sign)
    return chain


def test_an_agent_follows_every_link_from_the_set_it_trusts() -> None:
    keys = _keys(4)
    chain = keychain.parse(_chain(keys).to_bytes(), "chain")
    moved, taken = keychain.follow(chain, (keys[0].public_key(),), "chain")
    assert keychain.same(moved, [keys[3].public_key()]) and taken == (2, 3, 4)
    # bootstrapped after the second rotation: the links before its key are passed by
    moved, taken = keychain.follow(chain, (keys[2].public_key(),), "chain")
    assert keychain.same(moved, [keys[3].public_key()]) and taken == (4,)
    assert keychain.follow(chain, (keys[3].public_key(),), "chain")[1] == ()


def test_a_link_no_trusted_key_signed_moves_nothing() -> None:
    keys, thief = _keys(2), Ed25519PrivateKey.generate()
    forged = _chain(keys).extend([thief.public_key()], MADE, thief.sign)
    moved, taken = keychain.follow(forged, (keys[0].public_key(),), "chain")
    assert keychain.same(moved, [keys[1].public_key()]) and taken == (2,)
    # nor a link re-pointed at another key after it was signed
    link = _chain(keys).links[0]
    tampered = keychain.Chain("example", (keychain.Link(
        2, (keychain.raw(thief.public_key()),), link.made, link.signature),))
    assert keychain.follow(tampered, (keys[0].public_key(),), "chain")[1] == ()


def test_a_link_signed_for_another_mesh_moves_nothing() -> None:
    keys = _keys(2)
    other = keychain.Chain("other", ()).extend([keys[1].public_key()], MADE, keys[0].sign)
    renamed = keychain.Chain("example", other.links)
    assert keychain.follow(renamed, (keys[0].public_key(),), "chain")[1] == ()


def _refused(data: bytes) -> str:
    with pytest.raises(VpcmeshError) as caught:
        keychain.parse(data, "build/x/signing-keys.json")
    return str(caught.value)


def test_hostile_chains_are_refused_with_a_reason() -> None:
    good = json.loads(_chain(_keys(3)).to_bytes())
    assert "not a vpcmesh signing-key chain" in _refused(b"\xff\xfe")
    assert "not a vpcmesh signing-key chain" in _refused(b'{"kind": "vpcmesh-removal"}')
    assert "format 2" in _refused(json.dumps({**good, "format": 2}).encode())
    assert "larger than" in _refused(b" " * (keychain.MAX_CHAIN + 1))
    gap = {**good, "links": good["links"][1:]}  # versions must run 2, 3, ...
    assert "link 2 of the signing-key chain is malformed" in _refused(json.dumps(gap).encode())
    bad_key = {**good, "links": [{**good["links"][0], "keys": ["AAAA"]}]}
    assert "not 32 bytes of base64" in _refused(json.dumps(bad_key).encode())
    no_time = {**good, "links": [{**good["links"][0], "made": "yesterday"}]}
    assert "malformed" in _refused(json.dumps(no_time).encode())
    assert "without a mesh name" in _refused(json.dumps({**good, "mesh": "../x"}).encode())


def test_a_trust_file_holds_one_key_or_a_set() -> None:
    keys = [k.public_key() for k in _keys(2)]
    assert keychain.same(keychain.load_keys(keychain.to_pem(keys), "t"), keys)
    with pytest.raises(VpcmeshError, match="holds no PEM public key"):
        keychain.load_keys(b"ssh-ed25519 AAAA", "t")
