from __future__ import annotations

from pathlib import Path

import click

from vpcmesh import clock
from vpcmesh.agent.status import Thresholds, assess, gather
from vpcmesh.bundle import status as contract
from vpcmesh.bundle.manifest import parse_time
from vpcmesh.bundle.status import FleetStatus, NodeRow

_COLUMNS = ("NODE", "ROLE", "CLOUD", "STATE", "SINCE", "TUNNEL", "REAL ADDRESS", "IN", "OUT",
            "CONFIG", "VERSION", "CERT EXPIRES")


def _size(count: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024  # type: ignore[assignment]
    return str(count)


def _when(text: str | None) -> str:
    return parse_time(text).strftime("%Y-%m-%d %H:%M") if text else "-"


def _cells(row: NodeRow, hub: str) -> tuple[str, ...]:
    state = "up" if row.connected else "down"
    moving = row.connected and row.hostname != hub
    return (row.hostname, row.role, row.cloud, state, _when(row.since), row.vpn_address,
            row.real_address or "-", _size(row.bytes_received) if moving else "-",
            _size(row.bytes_sent) if moving else "-", row.sync, row.version or "-",
            row.cert_expires[:10] if row.cert_expires else "-")


def table(status: FleetStatus, problems: list[str]) -> str:
    rows = [_COLUMNS, *(_cells(r, status.hub) for r in status.nodes)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(_COLUMNS))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()
             for r in rows]
    lines.append("")
    for item in status.expiries:
        lines.append(f"{item.what} expires: {item.expires or 'unknown'}")
    lines.append(f"mesh {status.mesh}, seen from {status.hub} at {status.taken_at}")
    lines.append("")
    lines.extend([f"problem: {p}" for p in problems] or ["no problems"])
    return "\n".join(lines)


def status(root: Path, source: str | None, as_json: bool, limits: Thresholds) -> int:
    now = clock.now()
    found = contract.load(source) if source is not None else gather(root, now)
    problems = assess(found, now, limits)
    if as_json:
        click.echo(contract.to_bytes(found, problems).decode(), nl=False)
    else:
        click.echo(table(found, problems))
    return 1 if problems else 0
