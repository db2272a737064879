"""The node's own programs, called in one place: systemctl, sysctl, ip, and the shell for
the operator's --restart-cmd / --health-cmd. Each returns what the agent needs to know and
never raises for a program's exit status (a failed restart shows in the health check)."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Mapping
from pathlib import Path

from vpcmesh import process
from vpcmesh.errors import VpcmeshError

REAL_ROOT = Path("/")


def shell(command: str, env: Mapping[str, str]) -> int:
    return process.run(["sh", "-c", command], env=env).returncode


def systemctl(*args: str) -> int:
    return process.run(["systemctl", *args]).returncode


def has_systemd() -> bool:
    return shutil.which("systemctl") is not None


def unit_active(unit: str) -> bool:
    return systemctl("is-active", "--quiet", unit) == 0


def daemon_reload() -> None:
    systemctl("daemon-reload")


def apply_sysctl(path: Path) -> None:
    # Without procps (a minimal image) the setting applies at the next boot.
    with contextlib.suppress(VpcmeshError):
        process.run(["sysctl", "-q", "-p", str(path)])


def ipv4_addresses() -> str:
    """`ip -o -4 addr show`: one line per address, in this namespace."""
    return process.run(["ip", "-o", "-4", "addr", "show"]).stdout.decode(errors="replace")
