"""What a node tells its hub, over the tunnel it already has: no server, no port.

A spoke's client.conf includes REPORT, which only the agent writes: `setenv UV_VPCMESH_*`
lines that push-peer-info sends to the hub whenever the spoke connects. The hub's
client-connect script (rendering/templates/peer.sh.j2) files them under PEERS_DIR, where
`vpcmesh status` reads them. Writing the report never restarts OpenVPN: the hub learns a
new pull result at the next connection, and a new config always comes with a restart.

On a hub the agent also notes when each node's published config changed (fleet-since.json),
so that `status` can say for how long a spoke has been behind, and which earlier digests
still stand for what a spoke runs (fleet-alike.json): those of publications that differ only
in files it applies without a restart (bundle/fleet.py, `settled`)."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import pwd
import re
from dataclasses import dataclass
from pathlib import Path

from vpcmesh.agent.state import STATE_DIR
from vpcmesh.bundle import fleet, names
from vpcmesh.bundle.manifest import format_time
from vpcmesh.errors import VpcmeshError
from vpcmesh.fsio import replace_file

SINCE = "fleet-since.json"
ALIKE = "fleet-alike.json"
MAX_ALIKE = 16  # earlier digests kept per node: a CRL a day for two weeks without a restart
MAX_RECORD = 4096
_TOKEN = re.compile(r"^[A-Za-z0-9_.:-]{0,64}$")


def report_text(config: str, version: int, pull_ok: bool) -> bytes:
    return ("# Written by the vpcmesh agent at every pull: do not edit. push-peer-info sends"
            " these\n# to the hub when this node connects (vpcmesh status shows them).\n"
            f"setenv UV_VPCMESH_CONFIG {config}\n"
            f"setenv UV_VPCMESH_VERSION {version}\n"
            f"setenv UV_VPCMESH_PULL {'ok' if pull_ok else 'failed'}\n").encode()


def write_report(conf_dir: Path, config: str, version: int, pull_ok: bool) -> None:
    """Before every start of a spoke's OpenVPN (its config includes this file), and after
    every pull. Unchanged content is not rewritten."""
    path = conf_dir / names.REPORT
    data = report_text(config, version, pull_ok)
    with contextlib.suppress(FileNotFoundError):
        if path.read_bytes() == data:
            return
    replace_file(path, data, mode=0o644, durable=True)


def ensure_peers_dir(conf_dir: Path) -> None:
    """The hub's OpenVPN runs its client-connect script as nobody: the folder it writes to
    belongs to nobody, and holds nothing secret."""
    path = conf_dir / names.PEERS_DIR
    path.mkdir(mode=0o755, exist_ok=True)
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        raise VpcmeshError.at(str(path), "this system has no user 'nobody', which the hub's"
                                         " OpenVPN runs as; create it") from None
    stat = path.stat()
    if (stat.st_uid, stat.st_gid) != (nobody.pw_uid, nobody.pw_gid):
        os.chown(path, nobody.pw_uid, nobody.pw_gid)


@dataclass(frozen=True)
class PeerRecord:
    """What the hub's script filed for one spoke at its last connection or disconnection."""

    event: str  # "connect" or "disconnect"
    time: int  # unix time of that event
    address: str
    config: str
    version: str
    pull: str


def read_peer(conf_dir: Path, hostname: str) -> PeerRecord | None:
    """The record, or None when there is none or it is not one the script wrote (the spoke
    chose the values: each must be a short plain token)."""
    path = conf_dir / names.PEERS_DIR / hostname
    try:
        # The folder belongs to nobody: a link there must not make root read another file.
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as handle:
            raw = handle.read(MAX_RECORD + 1)
    except OSError:
        return None
    if len(raw) > MAX_RECORD:
        return None
    fields = dict(line.partition("=")[::2] for line in raw.decode("ascii", "replace")
                  .splitlines())
    if not all(_TOKEN.fullmatch(v) for v in fields.values()):
        return None
    event, when = fields.get("event", ""), fields.get("time", "")
    if event not in ("connect", "disconnect") or not when.isdigit():
        return None
    return PeerRecord(event, int(when), fields.get("address", ""), fields.get("config", ""),
                      fields.get("version", ""), fields.get("pull", ""))


def _since_path(root: Path) -> Path:
    return root / STATE_DIR / SINCE


def read_since(root: Path) -> dict[str, str]:
    try:
        data = json.loads(_since_path(root).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): str(v) for k, v in data.items() if isinstance(v, str)}


def read_alike(root: Path) -> dict[str, tuple[str, ...]]:
    try:
        data = json.loads((root / STATE_DIR / ALIKE).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): tuple(str(d) for d in v) for k, v in data.items() if isinstance(v, list)}


def track_fleet(root: Path, before: bytes | None, after: bytes, now: dt.datetime) -> None:
    """On a hub, after installing a fleet.json: each node whose published config changed
    (or that is new) is expected to catch up from now; the others keep their time. A node
    whose change it applies without a restart (the same `settled` digest) keeps its time
    too, and its last digest joins those that stand for the new one."""
    old, new = _nodes(before), _nodes(after)
    since, alike = read_since(root), read_alike(root)
    stamp = format_time(now)
    kept: dict[str, str] = {}
    same: dict[str, list[str]] = {}
    for host, node in new.items():
        prior = old.get(host)
        if prior is not None and prior.config == node.config:
            kept[host], same[host] = since.get(host, stamp), list(alike.get(host, ()))
        elif prior is not None and prior.config and prior.settled \
                and prior.settled == node.settled:
            kept[host] = since.get(host, stamp)
            same[host] = [*alike.get(host, ()), prior.config][-MAX_ALIKE:]
        else:
            kept[host], same[host] = stamp, []
    for name, value in ((SINCE, kept), (ALIKE, same)):
        data = (json.dumps(value, indent=1, sort_keys=True) + "\n").encode()
        replace_file(root / STATE_DIR / name, data, mode=0o644, durable=True)


def _nodes(data: bytes | None) -> dict[str, fleet.FleetNode]:
    if data is None:
        return {}
    try:
        parsed = fleet.parse(data, names.FLEET)
    except VpcmeshError:
        return {}
    return {n.hostname: n for n in parsed.nodes}
