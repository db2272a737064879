"""mesh/state.yaml: what vpcmesh decided before and must keep (a lockfile, committed)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from ipaddress import IPv4Address
from typing import Any, TypeVar

from vpcmesh.errors import Problem, VpcmeshError
from vpcmesh.model.cache import key
from vpcmesh.model.layout import ISSUED_DIR, STATE_FILE
from vpcmesh.model.snapshot import Snapshot
from vpcmesh.model.yamlio import Document, load

HEADER = """\
# Managed by vpcmesh: commit it with your change and do not edit it by hand.
# It keeps each node's tunnel address stable as other nodes come and go.
"""
_FIX = "; restore it from git (deleting it renumbers tunnel addresses and bundle versions)"


@dataclass(frozen=True)
class Signed:
    """What the state keeps of a node's current signed manifest."""

    version: int
    digest: str
    commit: str
    signed_at: str
    expires: str
    signature: str


@dataclass(frozen=True)
class SignedRemoval:
    after_version: int
    signature: str


@dataclass(frozen=True)
class State:
    addresses: dict[str, IPv4Address] = field(default_factory=dict)
    dns_serial: int = 0
    dns_digest: str = ""
    bundles: dict[str, Signed] = field(default_factory=dict)
    # The last version of each removed node: one that comes back continues from there, so
    # its agent never takes a new bundle for a rollback.
    retired: dict[str, int] = field(default_factory=dict)
    # The signed removal notice of each retired node (bundle/removal.py), kept so that a
    # render without the key reproduces it byte for byte.
    removals: dict[str, SignedRemoval] = field(default_factory=dict)
    # Which key made the signatures above (keychain.key_id; "" for the mesh's first key):
    # after a rotation every manifest and notice is signed again with the new one.
    signing_key: str = ""


_CHECKSUM = "# checksum sha256:"


def _verify_checksum(raw: bytes) -> None:
    """The last line of a state file vpcmesh wrote covers everything above it."""
    body, _, last = raw.rstrip(b"\n").rpartition(b"\n")
    if not last.startswith(_CHECKSUM.encode()):
        return  # written before checksums: accepted, and the next write adds one
    if last.decode(errors="replace").removeprefix(_CHECKSUM) != \
            hashlib.sha256(body + b"\n").hexdigest():
        raise VpcmeshError.at(STATE_FILE, "edited by hand: its checksum does not match;"
                                          f" vpcmesh alone writes it{_FIX}")


E = TypeVar("E", Signed, SignedRemoval)


def _entries(doc: Document, data: dict[str, Any], section: str, kind: type[E],
             problems: list[Problem]) -> dict[str, E]:
    """A section of per-node records (`bundles`, `removals`), each with all of its fields."""
    out = {}
    for host, entry in (data.get(section) or {}).items():
        try:
            out[str(host)] = kind(**{k: entry[k] for k in kind.__dataclass_fields__})
        except (KeyError, TypeError):
            problems.append(Problem(doc.at([section, host]),
                                    f"{section}.{host}: incomplete entry{_FIX}"))
    return out


def read_state(snap: Snapshot) -> State:
    if not snap.is_file(STATE_FILE):
        issued = [name for name, _ in snap.children(ISSUED_DIR)]
        if issued:
            raise VpcmeshError.at(STATE_FILE, f"missing, but {ISSUED_DIR} holds"
                                              f" {len(issued)} certificate(s), so this mesh has"
                                              " rendered before: restore it from git (git"
                                              f" checkout -- {STATE_FILE}); without it, tunnel"
                                              " addresses and bundle versions start over")
        return State()
    raw = snap.read(STATE_FILE)
    _verify_checksum(raw)
    name = key("state", raw)
    cached = snap.cache.get(name)
    doc = Document(STATE_FILE, cached, raw.decode()) if cached is not None else \
        load(STATE_FILE, raw)
    data = doc.data or {}
    problems = []
    addresses: dict[str, IPv4Address] = {}
    raw_addresses = data.get("addresses", {}) if isinstance(data, dict) else None
    if not isinstance(raw_addresses, dict):
        raise VpcmeshError.at(doc.at(), f"not a vpcmesh state file{_FIX}")
    for host, text in raw_addresses.items():
        try:
            addresses[host] = IPv4Address(text)
        except ValueError:
            problems.append(Problem(doc.at(["addresses", host]),
                                    f"addresses.{host}: {text!r} is not an IPv4 address{_FIX}"))
    if problems:
        raise VpcmeshError(problems)
    dns = data.get("dns", {})
    bundles = _entries(doc, data, "bundles", Signed, problems)
    retired = {str(h): v for h, v in (data.get("retired") or {}).items()
               if isinstance(v, int) and not isinstance(v, bool)}
    removals = _entries(doc, data, "removals", SignedRemoval, problems)
    if problems:
        raise VpcmeshError(problems)
    if cached is None:
        snap.cache.put(name, data)
    return State(addresses, int(dns.get("serial", 0)), str(dns.get("digest", "")), bundles,
                 retired, removals, str(data.get("signing_key") or ""))


def _scalar(value: object) -> str:
    # JSON strings are valid YAML double-quoted scalars: no timestamp or number surprises.
    return str(value) if isinstance(value, int) else json.dumps(str(value))


def as_data(state: State) -> dict[str, object]:
    """What parsing the dumped file gives back (so a write can fill the parse cache)."""
    return {"addresses": {h: str(a) for h, a in sorted(state.addresses.items())},
            "bundles": {h: asdict(b) for h, b in sorted(state.bundles.items())},
            "dns": {"digest": state.dns_digest, "serial": state.dns_serial},
            **({"retired": dict(sorted(state.retired.items()))} if state.retired else {}),
            **({"removals": {h: asdict(r) for h, r in sorted(state.removals.items())}}
               if state.removals else {}),
            **({"signing_key": state.signing_key} if state.signing_key else {})}


def _records(section: Mapping[str, Signed | SignedRemoval]) -> list[str]:
    lines = []
    for host, record in sorted(section.items()):
        lines.append(f"  {host}:")
        lines += [f"    {k}: {_scalar(v)}" for k, v in sorted(asdict(record).items())]
    return lines


def dump_state(state: State) -> bytes:
    """Deterministic on every machine (no YAML emitter settings involved), and fast."""
    lines = [HEADER.rstrip("\n"), "addresses:"]
    lines += [f"  {h}: {_scalar(a)}" for h, a in sorted(state.addresses.items())]
    lines += ["bundles:" if state.bundles else "bundles: {}", *_records(state.bundles)]
    lines += ["dns:", f"  digest: {_scalar(state.dns_digest)}",
              f"  serial: {state.dns_serial}"]
    if state.retired:
        lines.append("retired:")
        lines += [f"  {h}: {v}" for h, v in sorted(state.retired.items())]
    if state.removals:
        lines += ["removals:", *_records(state.removals)]
    if state.signing_key:  # only after a rotation: an older mesh's state keeps its bytes
        lines.append(f"signing_key: {_scalar(state.signing_key)}")
    body = ("\n".join(lines) + "\n").encode()
    return body + f"{_CHECKSUM}{hashlib.sha256(body).hexdigest()}\n".encode()
