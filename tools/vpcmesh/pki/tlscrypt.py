"""tls-crypt-v2 keys, made in process as `openvpn --genkey tls-crypt-v2-server` and
`--genkey tls-crypt-v2-client` make them (OpenVPN's src/openvpn/tls_crypt.c, 2.5 and 2.6).

A hub's server key is 128 random bytes: an AES-256-CTR key (the first 32 of the first 64)
and an HMAC-SHA256 key (the first 32 of the last 64). A node's client key is Kc, 256
random bytes, followed by WKc: Kc and the metadata, wrapped with the server key, which the
client sends in its first packet. The hub unwraps it with its server key alone, so it
holds no list of client keys, and one node's key says nothing of another's. The metadata
names the key (`vpcmesh <hostname> <certificate serial>`): the hub refuses, before any TLS,
a key whose certificate the CRL lists.

The hubs' server keys are derived (HKDF-SHA256) from a secret in the admins' secrets, by
hub name and generation (each rotation's from a new secret: pki/tc2rotation.py): a hub holds
only its own, and a new spoke's keys need no hub's file decrypted."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import struct
import textwrap

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

SERVER_PEM = "OpenVPN tls-crypt-v2 server key"
CLIENT_PEM = "OpenVPN tls-crypt-v2 client key"
SERVER_KEY_LEN = 128
CLIENT_KEY_LEN = 256
METADATA_USER = b"\x00"  # TLS_CRYPT_METADATA_TYPE_USER
_TAG_LEN = 32


def pem(name: str, data: bytes) -> str:
    body = "\n".join(textwrap.wrap(base64.b64encode(data).decode(), 64))
    return f"-----BEGIN {name}-----\n{body}\n-----END {name}-----\n"


def unpem(name: str, text: str) -> bytes:
    begin, end = f"-----BEGIN {name}-----", f"-----END {name}-----"
    inner = text.strip()
    if not inner.startswith(begin) or not inner.endswith(end):
        raise ValueError(f"not an {name}")
    return base64.b64decode("".join(inner[len(begin):-len(end)].split()), validate=True)


def new_master() -> str:
    """The admins' secret every hub's server key is derived from."""
    return os.urandom(32).hex()


def server_key(master: str, hub: str, generation: int = 0) -> str:
    """Generation 0 is the mesh's first; each rotation (pki/tc2rotation.py) takes the next."""
    info = f"vpcmesh tls-crypt-v2 server key of {hub}" + (
        f", generation {generation}" if generation else "")
    raw = HKDF(hashes.SHA256(), SERVER_KEY_LEN, salt=None, info=info.encode()).derive(
        bytes.fromhex(master))
    return pem(SERVER_PEM, raw)


def _server_keys(server_pem: str) -> tuple[bytes, bytes]:
    raw = unpem(SERVER_PEM, server_pem)
    if len(raw) != SERVER_KEY_LEN:
        raise ValueError(f"a tls-crypt-v2 server key is {SERVER_KEY_LEN} bytes, not {len(raw)}")
    return raw[:32], raw[64:96]  # AES-256 key, HMAC-SHA256 key


def metadata(hostname: str, serial: int) -> bytes:
    return f"vpcmesh {hostname} {serial}".encode()


def new_client_key(server_pem: str, meta: bytes) -> str:
    """A client key for `server_pem`'s hub carrying `meta` (user metadata)."""
    cipher_key, hmac_key = _server_keys(server_pem)
    kc = os.urandom(CLIENT_KEY_LEN)
    plain = kc + METADATA_USER + meta
    net_len = struct.pack("!H", len(plain) + _TAG_LEN + 2)
    tag = hmac.new(hmac_key, net_len + plain, hashlib.sha256).digest()
    encryptor = Cipher(algorithms.AES(cipher_key), modes.CTR(tag[:16])).encryptor()
    wkc = tag + encryptor.update(plain) + encryptor.finalize() + net_len
    return pem(CLIENT_PEM, kc + wkc)


def unwrap(server_pem: str, client_pem: str) -> bytes:
    """The metadata of a client key made for this server key (its type byte first); raises
    ValueError when the key was not (as the hub would refuse it)."""
    cipher_key, hmac_key = _server_keys(server_pem)
    raw = unpem(CLIENT_PEM, client_pem)
    wkc = raw[CLIENT_KEY_LEN:]
    if len(wkc) < _TAG_LEN + 2 or struct.unpack("!H", wkc[-2:])[0] != len(wkc):
        raise ValueError("the wrapped key's length does not match")
    tag, sealed = wkc[:_TAG_LEN], wkc[_TAG_LEN:-2]
    decryptor = Cipher(algorithms.AES(cipher_key), modes.CTR(tag[:16])).decryptor()
    plain = decryptor.update(sealed) + decryptor.finalize()
    expected = hmac.new(hmac_key, wkc[-2:] + plain, hashlib.sha256).digest()
    if not hmac.compare_digest(tag, expected) or plain[:CLIENT_KEY_LEN] != raw[:CLIENT_KEY_LEN]:
        raise ValueError("not wrapped with this server key")
    return plain[CLIENT_KEY_LEN:]
