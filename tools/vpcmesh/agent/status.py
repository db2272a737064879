"""The fleet as a hub sees it: who is connected, what each node runs against what was
published for it, and what expires when.

Facts come from the hub alone: its installed fleet.json (every node, with its published
config digest), OpenVPN's management interface (who is connected, bytes, addresses), what
each spoke reported when it last connected or left (agent/report.py), and the agent's state.
`assess` then judges them against a clock, so that a status taken on the hub and read
elsewhere (`status --from`) is judged when it is read."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from pathlib import Path

from vpcmesh.agent import installed, report
from vpcmesh.agent.management import Client, Management
from vpcmesh.agent.state import fleet_path, read_agent_state, state_conf_dir
from vpcmesh.bundle import fleet
from vpcmesh.bundle.manifest import format_time, parse_time
from vpcmesh.bundle.status import BEHIND, Expiry, FleetStatus, NodeRow
from vpcmesh.errors import VpcmeshError


@dataclass(frozen=True)
class Thresholds:
    down: dt.timedelta = dt.timedelta(minutes=30)
    behind: dt.timedelta = dt.timedelta(minutes=30)
    expiring: dt.timedelta = dt.timedelta(days=14)


def _utc(stamp: int) -> str | None:
    """None for no time, or one no clock shows (a record in nobody's folder is not trusted)."""
    try:
        return format_time(dt.datetime.fromtimestamp(stamp, dt.timezone.utc)) if stamp > 0 else None
    except (OverflowError, ValueError, OSError):
        return None


def _crl_next_update(conf_dir: Path) -> str | None:
    found = installed.crl(conf_dir)
    return format_time(found.next_update_utc) if found and found.next_update_utc else None


def _clients(conf_dir: Path, mesh: str) -> dict[str, Client] | None:
    """Connected spokes by name; None when the hub's OpenVPN does not answer."""
    try:
        with Management(conf_dir / f"{mesh}.mgmt") as management:
            return {c.common_name: c for c in management.clients()}
    except VpcmeshError:
        return None


def _spoke(node: fleet.FleetNode, client: Client | None, record: report.PeerRecord | None,
           since: dict[str, str], alike: tuple[str, ...]) -> NodeRow:
    base = NodeRow(node.hostname, node.role, node.cloud, client is not None, None,
                   node.vpn_address, "", 0, 0, None, node.config, since.get(node.hostname),
                   None, None, node.cert_expires)
    if record is not None:
        # A report from before a change it applied without a restart (a new CRL): it runs
        # what was published, as far as the hub can know (its own pulls say the rest).
        reported = node.config if record.config in alike else record.config
        base = replace(base, reported=reported or None, version=record.version or None,
                       pull=record.pull or None)
    if client is not None:
        return replace(base, since=_utc(client.connected_since),
                       real_address=client.real_address,
                       bytes_received=client.bytes_received, bytes_sent=client.bytes_sent)
    if record is not None and record.event == "disconnect":
        return replace(base, since=_utc(record.time))
    return base


def gather(root: Path, now: dt.datetime) -> FleetStatus:
    """On a hub: everything `status` shows, read from this node alone."""
    state = read_agent_state(root, repair=False)
    if not state.version:
        raise VpcmeshError.at(str(root / "var/lib/vpcmesh"), "no bundle is installed here:"
                              " run `vpcmesh status` on the hub, after its first pull")
    if "server@" not in state.unit:
        raise VpcmeshError.at(state.hostname, "is a spoke: run `vpcmesh status` on the hub,"
                              " or here as `ssh root@<hub> vpcmesh status --json | vpcmesh"
                              " status --from -`")
    where = fleet_path(root)
    try:
        published = fleet.parse(where.read_bytes(), str(where))
    except FileNotFoundError:
        raise VpcmeshError.at(str(where), "missing: the installed bundle predates fleet.json;"
                                          " publish and pull a bundle made by this"
                                          " vpcmesh") from None
    conf_dir = state_conf_dir(root, state)
    clients = _clients(conf_dir, state.mesh)
    since, alike = report.read_since(root), report.read_alike(root)
    rows = []
    for node in published.nodes:
        if node.hostname == state.hostname:
            rows.append(NodeRow(node.hostname, node.role, node.cloud, clients is not None,
                                None, node.vpn_address, node.public_address or "", 0, 0,
                                state.config or None, node.config, None,
                                str(state.version), "ok" if not state.last_error else "failed",
                                node.cert_expires))
        else:
            rows.append(_spoke(node, (clients or {}).get(node.hostname),
                               report.read_peer(conf_dir, node.hostname), since,
                               alike.get(node.hostname, ())))
    expiries = (Expiry("CRL", _crl_next_update(conf_dir)),
                Expiry(f"manifest of {state.hostname}", state.expires or None))
    return FleetStatus(state.mesh, state.hostname, format_time(now), tuple(rows), expiries,
                       state.succeeded_at or None, state.last_error)


def _age(text: str | None, now: dt.datetime) -> dt.timedelta | None:
    return now - parse_time(text) if text else None


def _expiry(what: str, expires: str | None, now: dt.datetime, limits: Thresholds) -> str | None:
    if not expires:
        return None
    left = parse_time(expires) - now
    if left <= dt.timedelta(0):
        return f"{what} expired on {expires}"
    if left <= limits.expiring:
        return f"{what} expires on {expires}, in {left.days} day(s)"
    return None


def assess(status: FleetStatus, now: dt.datetime, limits: Thresholds) -> list[str]:
    """What is wrong, one line each; empty when all is well."""
    out = []
    for row in status.nodes:
        if row.hostname == status.hub and not row.connected:
            out.append(f"{row.hostname}: the hub's OpenVPN does not answer on its management"
                       " socket: is it running?")
        elif not row.connected:
            down = _age(row.since, now)
            if down is None or down >= limits.down:
                out.append(f"{row.hostname}: down since {row.since or 'an unknown time'}")
        elif row.sync == BEHIND:
            start = max((t for t in (row.since, row.published_since) if t), default=None)
            behind = _age(start, now)
            if behind is None or behind >= limits.behind:
                out.append(f"{row.hostname}: runs another config than the one published for"
                           f" it, since {start or 'an unknown time'} (version {row.version},"
                           f" last pull {row.pull}); see `vpcmesh pull --status` there")
        problem = _expiry(f"{row.hostname}'s certificate", row.cert_expires, now, limits)
        if problem:
            out.append(problem)
    for item in status.expiries:
        problem = _expiry(item.what, item.expires, now, limits)
        if problem:
            out.append(problem)
    pulled = _age(status.hub_pulled_at, now)
    if pulled is None or pulled > limits.behind:
        out.append(f"{status.hub}: its agent has not pulled well since"
                   f" {status.hub_pulled_at or 'it was installed'}"
                   + (f": {status.hub_error}" if status.hub_error else ""))
    return out
