"""After every pull, whatever its result: the state's clock, the spoke's report to its hub,
and the metrics file. None of it may turn a good pull into a failed one, nor hide why a
failed one failed: problems here are logged, not raised."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import replace

from vpcmesh.agent import acl, installed, report, system
from vpcmesh.agent.install import Target
from vpcmesh.agent.pull import PullOptions
from vpcmesh.agent.state import (
    AgentState,
    read_agent_state,
    state_conf_dir,
    write_agent_state,
)
from vpcmesh.bundle.manifest import format_time
from vpcmesh.bundle.status import NodeRow
from vpcmesh.errors import VpcmeshError

log = logging.getLogger("vpcmesh.agent")


def _metrics(state: AgentState, opts: PullOptions, now: dt.datetime) -> None:
    assert opts.metrics is not None
    from vpcmesh.agent import metrics, status

    peers: tuple[NodeRow, ...] = ()
    hub = "server@" in state.unit
    if hub:
        try:
            peers = status.gather(opts.root, now).nodes
        except VpcmeshError as exc:
            log.warning("metrics: no peer rows: %s", exc)
    tunnel = (f"inet {state.vpn_address}/" in system.ipv4_addresses()
              if state.vpn_address else None)
    conf_dir = state_conf_dir(opts.root, state)
    cert = installed.certificate(conf_dir, state.hostname)
    crl = installed.crl(conf_dir)
    acls: tuple[bool, int] | None = None
    if Target.of_state(state, conf_dir, opts.root).acl.exists():
        found = acl.counted(state.mesh) if system.has_nft() else None
        acls = (found is not None, found[1] if found is not None else 0)
    metrics.write_metrics(opts.metrics, state, tunnel,
                          cert.not_valid_after_utc if cert is not None else None,
                          crl.next_update_utc if crl is not None else None,
                          tuple(p for p in peers if p.hostname != state.hostname), acls)


def record(opts: PullOptions, now: dt.datetime, error: str | None) -> None:
    """`error`: the first line of why the pull failed, or None."""
    state = read_agent_state(opts.root)
    stamp = format_time(now)
    state = replace(state, checked_at=stamp, last_error=error,
                    succeeded_at=stamp if error is None else state.succeeded_at)
    write_agent_state(opts.root, state)
    try:
        if state.config and "client@" in state.unit:
            report.write_report(state_conf_dir(opts.root, state), state.config, state.version,
                                error is None)
        if opts.metrics is not None:
            _metrics(state, opts, now)
    except (OSError, VpcmeshError) as exc:
        log.warning("after the pull: %s", exc)
