"""`vpcmesh status`'s facts, typed, and their JSON (`status --json`): made on a hub by the
agent, read by `status --from` anywhere and by `vpcmesh graph --status`."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

from vpcmesh.bundle.manifest import parse_time
from vpcmesh.errors import VpcmeshError

FORMAT = 1
_TIMES = {"since", "published_since", "cert_expires", "expires", "taken_at", "hub_pulled_at"}

IN_SYNC, BEHIND, UNKNOWN = "in sync", "behind", "unknown"


@dataclass(frozen=True)
class NodeRow:
    hostname: str
    role: str
    cloud: str
    connected: bool
    since: str | None  # connected since, or down since (None: not known)
    vpn_address: str
    real_address: str
    bytes_received: int
    bytes_sent: int
    reported: str | None  # the config digest the node reported, or the hub's own
    published: str | None  # the config digest published for it
    published_since: str | None  # when the hub learned of that publication
    version: str | None  # the bundle version the node reported
    pull: str | None  # "ok" or "failed": its last pull before it connected
    cert_expires: str | None

    @property
    def sync(self) -> str:
        if not self.reported or not self.published:
            return UNKNOWN
        return IN_SYNC if self.reported == self.published else BEHIND


@dataclass(frozen=True)
class Expiry:
    what: str
    expires: str | None


@dataclass(frozen=True)
class FleetStatus:
    mesh: str
    hub: str
    taken_at: str
    nodes: tuple[NodeRow, ...]
    expiries: tuple[Expiry, ...]
    hub_pulled_at: str | None  # the hub agent's last good pull
    hub_error: str | None


def to_bytes(status: FleetStatus, problems: Sequence[str] = ()) -> bytes:
    """`problems`: what `assess` found when it was taken; a reader judges again."""
    data = {"format": FORMAT, **asdict(status), "problems": list(problems)}
    for node, row in zip(data["nodes"], status.nodes):  # asdict: same length
        node["sync"] = row.sync  # for the reader's convenience; recomputed when read
    return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode()


def _typed(cls: type[Any], raw: Any, where: str) -> Any:
    """An instance of the dataclass `cls` from a JSON object, each field checked against
    its annotation's simple type (str, int, bool, or one of them or None)."""
    what = {"NodeRow": "a node", "Expiry": "an expiry"}.get(cls.__name__, "the status")
    if not isinstance(raw, dict):
        raise VpcmeshError.at(where, f"{what} is not a JSON object; is it the output of"
                                     " `vpcmesh status --json`?")
    values = {}
    for f in fields(cls):
        value = raw.get(f.name)
        kind = str(f.type)
        wanted = (bool if kind.startswith("bool") else int if kind.startswith("int")
                  else str)
        ok = isinstance(value, wanted) and (wanted is bool or not isinstance(value, bool))
        if not ok and not (value is None and "None" in kind):
            raise VpcmeshError.at(where, f"field '{f.name}' of {what} is missing or not"
                                         f" {kind}; is it the output of `vpcmesh status"
                                         " --json`?")
        if f.name in _TIMES and isinstance(value, str):
            try:
                parse_time(value)
            except ValueError:
                raise VpcmeshError.at(where, f"field '{f.name}' is not a time like"
                                             " 2026-01-31T12:00:00Z") from None
        values[f.name] = value
    return cls(**values)


MAX_SIZE = 16 << 20  # a status of thousands of nodes is a few MiB


def load(source: str) -> FleetStatus:
    """A status from a file, or from stdin for '-'."""
    where = "<stdin>" if source == "-" else source
    try:
        if source == "-":
            data = sys.stdin.buffer.read(MAX_SIZE + 1)
        else:
            with open(source, "rb") as handle:
                data = handle.read(MAX_SIZE + 1)
    except OSError as exc:
        raise VpcmeshError.at(where, f"cannot read: {exc.strerror or exc}") from None
    if len(data) > MAX_SIZE:
        raise VpcmeshError.at(where, f"larger than {MAX_SIZE >> 20} MiB; not a vpcmesh status")
    return parse(data, where)


def parse(data: bytes, where: str) -> FleetStatus:
    try:
        raw = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise VpcmeshError.at(where, "not JSON; expected the output of `vpcmesh status"
                                     " --json`") from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise VpcmeshError.at(where, f"not a vpcmesh status (format {FORMAT}); expected the"
                                     " output of `vpcmesh status --json`")
    nodes, expiries = raw.get("nodes"), raw.get("expiries")
    if not isinstance(nodes, list) or not isinstance(expiries, list):
        raise VpcmeshError.at(where, "fields 'nodes' and 'expiries' must be lists")
    head = {k: raw.get(k) for k in ("mesh", "hub", "taken_at", "hub_pulled_at", "hub_error")}
    shell = _typed(_Head, head, where)
    return FleetStatus(shell.mesh, shell.hub, shell.taken_at,
                       tuple(_typed(NodeRow, n, where) for n in nodes),
                       tuple(_typed(Expiry, e, where) for e in expiries),
                       shell.hub_pulled_at, shell.hub_error)


@dataclass(frozen=True)
class _Head:
    mesh: str
    hub: str
    taken_at: str
    hub_pulled_at: str | None
    hub_error: str | None
