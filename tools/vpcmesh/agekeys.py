"""age X25519 identities, made in process: a new VM needs no age-keygen to join."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from vpcmesh import bech32


def new_identity() -> tuple[str, str]:
    """(secret key line as age-keygen writes it, recipient)."""
    key = X25519PrivateKey.generate()
    secret = key.private_bytes_raw()
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return bech32.encode("AGE-SECRET-KEY-", secret).upper(), bech32.encode("age", public)


def recipient_of(identity_file_text: str) -> str:
    """The recipient of an age identity file (the form age-keygen writes)."""
    for line in identity_file_text.splitlines():
        if line.startswith("AGE-SECRET-KEY-"):
            key = X25519PrivateKey.from_private_bytes(bech32.decode(line.strip()))
            public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
            return bech32.encode("age", public)
    raise ValueError("no age identity line")
