"""Bech32 checksums (BIP 173), as age uses for its recipients: catches a mistyped character
in a node file before sops fails on it."""

from __future__ import annotations

CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_GENERATOR = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)


def _polymod(values: list[int]) -> int:
    checksum = 1
    for value in values:
        top = checksum >> 25
        checksum = (checksum & 0x1FFFFFF) << 5 ^ value
        for i, gen in enumerate(_GENERATOR):
            if (top >> i) & 1:
                checksum ^= gen
    return checksum


def valid(text: str) -> bool:
    hrp, sep, data = text.lower().rpartition("1")
    if not sep or not hrp or len(data) < 6 or any(c not in CHARSET for c in data):
        return False
    expanded = [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]
    return _polymod(expanded + [CHARSET.index(c) for c in data]) == 1


def _convert(data: bytes) -> list[int]:
    """8-bit bytes to 5-bit groups, padded (BIP 173 convertbits)."""
    acc, bits, out = 0, 0, []
    for byte in data:
        acc = (acc << 8) | byte
        bits += 8
        while bits >= 5:
            bits -= 5
            out.append((acc >> bits) & 31)
    if bits:
        out.append((acc << (5 - bits)) & 31)
    return out


def encode(hrp: str, data: bytes) -> str:
    hrp = hrp.lower()
    values = _convert(data)
    expanded = [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]
    polymod = _polymod([*expanded, *values, 0, 0, 0, 0, 0, 0]) ^ 1
    checksum = [(polymod >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(CHARSET[v] for v in values + checksum)


def decode(text: str) -> bytes:
    """The data bytes of a valid Bech32 string; ValueError otherwise."""
    if not valid(text):
        raise ValueError("not a valid Bech32 string")
    _, _, data = text.lower().rpartition("1")
    acc, bits, out = 0, 0, bytearray()
    for char in data[:-6]:
        acc = (acc << 5) | CHARSET.index(char)
        bits += 5
        if bits >= 8:
            bits -= 8
            out.append((acc >> bits) & 0xFF)
    return bytes(out)
