"""What the agent keeps on the node: the installed version, and a lock for timer runs."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from vpcmesh.fsio import exclusive, replace_file

log = logging.getLogger("vpcmesh.agent")
STATE_DIR = "var/lib/vpcmesh"
HEALTHY = "healthy"
WAITING = "waiting for the tunnel"  # OpenVPN runs, but has not connected yet


@dataclass(frozen=True)
class AgentState:
    hostname: str = ""
    mesh: str = ""
    version: int = 0
    commit: str = ""
    installed_at: str = ""
    etag: str | None = None
    files: tuple[str, ...] = ()  # what the agent installed, to remove later
    manifest_sha256: str = ""  # of the installed manifest: a same-numbered other one is new
    expires: str = ""  # the installed manifest's: a source still serving it after is frozen
    unit: str = ""  # the OpenVPN unit and tunnel address of what is installed, so that a
    vpn_address: str = ""  # pull with nothing new can still check on the tunnel
    health: str = ""  # HEALTHY, WAITING, or "" before any install
    failed_version: int | None = None  # failed its health check; retried, never abandoned
    attempts: int = 0  # how often failed_version failed
    next_retry: str | None = None  # not before this time (UTC)
    last_error: str | None = None
    units: tuple[str, ...] = ()  # units besides OpenVPN the installed version runs
    config: str = ""  # digest of the installed OpenVPN files (bundle/fleet.py), reported
    checked_at: str = ""  # the last pull, whatever its result
    succeeded_at: str = ""  # the last pull that ended well

    @property
    def waiting(self) -> bool:
        return self.health == WAITING


def state_path(root: Path) -> Path:
    return root / STATE_DIR / "state.json"


def state_conf_dir(root: Path, state: AgentState) -> Path:
    """The installed OpenVPN config's folder (Debian's openvpn-server@/-client@ layout)."""
    return root / "etc/openvpn" / ("server" if "server@" in state.unit else "client")


def fleet_path(root: Path) -> Path:
    """Where the installed bundle's fleet.json goes."""
    return root / STATE_DIR / "fleet.json"


_OPTIONAL_STR = (str, type(None))
_TYPES: dict[str, type | tuple[type, ...]] = {
    "version": int, "attempts": int, "files": list, "units": list,
    "failed_version": (int, type(None)), "etag": _OPTIONAL_STR, "next_retry": _OPTIONAL_STR,
    "last_error": _OPTIONAL_STR}


def read_agent_state(root: Path, repair: bool = True) -> AgentState:
    """The state; a corrupt one (a disk full at the wrong moment, a hand edit) is moved
    aside with a warning, and the next install verifies everything again from scratch.
    `repair=False` (doctor, status: read-only) leaves it where it is."""
    path = state_path(root)
    if not path.exists():
        return AgentState()
    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        known = {k: v for k, v in data.items() if k in AgentState.__dataclass_fields__}
        for key, value in known.items():
            if not isinstance(value, _TYPES.get(key, str)) or isinstance(value, bool):
                raise ValueError(f"{key} has the wrong type")
        known["files"] = tuple(str(f) for f in known.get("files") or ())
        known["units"] = tuple(str(u) for u in known.get("units") or ())
        return AgentState(**known)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        if not repair:
            log.warning("%s: unreadable (%s)", path, exc)
            return AgentState()
        aside = path.with_name("state.json.corrupt")
        os.replace(path, aside)
        log.warning("%s: unreadable (%s), moved to %s; starting over: the next bundle is"
                    " verified and installed from scratch", path, exc, aside.name)
        return AgentState()


def write_agent_state(root: Path, state: AgentState) -> None:
    text = json.dumps(asdict(state), indent=2, sort_keys=True) + "\n"
    replace_file(state_path(root), text.encode(), mode=0o600, durable=True)


@contextmanager
def locked(root: Path) -> Iterator[bool]:
    """True when this run holds the lock; False when another run does (timer overlap)."""
    folder = root / STATE_DIR
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    with exclusive(folder / "lock") as mine:
        yield mine
