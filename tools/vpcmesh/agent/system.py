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


def _json(args: list[str]) -> object:
    """A program's JSON output, or None when it is missing or fails (a check then says
    it could not look)."""
    import json

    try:
        done = process.run(args)
    except VpcmeshError:
        return None
    if done.returncode != 0:
        return None
    try:
        return json.loads(done.stdout or b"null")
    except ValueError:
        return None


def routes() -> object:
    """`ip -j route`: the main table, in this namespace."""
    return _json(["ip", "-j", "route", "show", "table", "main"])


def links() -> object:
    """`ip -j -d link`: with each link's kind (bridge, veth, tun, ...)."""
    return _json(["ip", "-j", "-d", "link", "show"])


def nft_ruleset() -> object:
    """`nft -j list ruleset`, which shows iptables-nft's rules too (Docker's among them)."""
    return _json(["nft", "-j", "list", "ruleset"])


def has_nft() -> bool:
    return shutil.which("nft") is not None


def nft_table(family: str, table: str) -> object:
    """`nft -j list table`, or None when there is no such table (or no nft)."""
    return _json(["nft", "-j", "list", "table", family, table])


def nft_has_table(family: str, table: str) -> bool:
    return process.run(["nft", "list", "table", family, table]).returncode == 0


def nft_script(script: str) -> None:
    """`nft -f -`: the whole script applies, or none of it (nft runs it as one transaction)."""
    done = process.run(["nft", "-f", "-"], stdin=script.encode())
    if done.returncode != 0:
        raise VpcmeshError.at("nft", "could not change the ruleset: "
                                     + done.stderr.decode(errors="replace").strip())


def unit_state(unit: str) -> str | None:
    if not has_systemd():
        return None
    done = process.run(["systemctl", "is-active", unit])
    return done.stdout.decode(errors="replace").strip() or None


def journal(unit: str, lines: int) -> str | None:
    if shutil.which("journalctl") is None:
        return None
    done = process.run(["journalctl", "-u", unit, "-n", str(lines), "--no-pager", "-o", "cat"])
    return done.stdout.decode(errors="replace") if done.returncode == 0 else None
