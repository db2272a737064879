"""age X25519 identities and recipients, with pyrage (the Rust `age` crate): a new VM needs
no age-keygen to join, and a mistyped recipient is caught by its Bech32 checksum before sops
fails on it."""

from __future__ import annotations

from pyrage import IdentityError, RecipientError, x25519


def new_identity() -> tuple[str, str]:
    """(secret key line as age-keygen writes it, recipient)."""
    identity = x25519.Identity.generate()
    return str(identity), str(identity.to_public())


def recipient_of(identity_file_text: str) -> str:
    """The recipient of an age identity file (the form age-keygen writes)."""
    for line in identity_file_text.splitlines():
        if line.startswith("AGE-SECRET-KEY-"):
            try:
                return str(x25519.Identity.from_str(line.strip()).to_public())
            except IdentityError:
                break
    raise ValueError("no valid age identity line")


def valid_recipient(text: str) -> bool:
    try:
        x25519.Recipient.from_str(text)
    except RecipientError:
        return False
    return True
