from __future__ import annotations

import json
import logging
import signal
import time
from dataclasses import asdict
from pathlib import Path

import click

from vpcmesh import clock
from vpcmesh.agent import observe
from vpcmesh.agent.acl import Loaded
from vpcmesh.agent.firewall import Applied
from vpcmesh.agent.pull import PullOptions, pull
from vpcmesh.agent.sources import NO_CREDENTIALS, Credentials, open_source
from vpcmesh.agent.state import STATE_DIR, locked, read_agent_state
from vpcmesh.agent.upkeep import ensure_acl, ensure_enabled, ensure_firewall
from vpcmesh.errors import VpcmeshError

log = logging.getLogger("vpcmesh.agent")


def _keep_acl(opts: PullOptions) -> None:
    """A failed pull (its source down, say) still puts back the installed service ACLs that
    a `systemctl restart nftables` flushed: their protection must not wait for the source."""
    try:
        ensure_acl(opts)
    except VpcmeshError as exc:
        log.warning("service ACLs: %s", exc)


def status(root: Path, as_json: bool = False) -> int:
    state = read_agent_state(root)
    shown = {k: v for k, v in asdict(state).items() if k != "files"}
    if as_json:
        click.echo(json.dumps(shown, indent=2, sort_keys=True))
        return 0
    for key, value in shown.items():
        click.echo(f"{key}: {'-' if value in (None, '') else value}")
    return 0


def _once(source_spec: str, ref: str, opts: PullOptions, credentials: Credentials) -> str:
    """One pull; returns its outcome ("removed": this node has left the mesh)."""
    with locked(opts.root) as mine:
        if not mine:
            log.info("another pull is running; nothing to do")
            return "busy"
        now = clock.now()
        try:
            source = open_source(source_spec, ref, opts.root / STATE_DIR / "source.git",
                                 credentials)
            result = pull(source, opts, now)
            applied: Applied | None = None
            loaded: Loaded | None = None
            enabled: tuple[str, ...] = ()
            if result.outcome != "removed":  # one read of what the pull left, for both
                after = read_agent_state(opts.root)
                applied, enabled = ensure_firewall(opts, after), ensure_enabled(opts, after)
                loaded = ensure_acl(opts, after)
        except VpcmeshError as exc:
            _keep_acl(opts)
            observe.record(opts, now, str(exc).splitlines()[0])
            raise
        if result.outcome == "removed":  # nothing of the agent is left to record into
            click.echo(f"{opts.hostname} was removed from the mesh (a notice signed with the"
                       f" mesh's key, after version {result.version}): stopped OpenVPN and"
                       " the timer, removed the installed files; the age key stays",
                       err=True)
            return result.outcome
        observe.record(opts, now, None)
        for unit in enabled:
            click.echo(f"enabled {unit} at boot", err=True)
        if loaded is not None and loaded.changed:
            click.echo(f"service ACLs {'loaded' if loaded.rules else 'removed'} (nftables"
                       f" table inet {loaded.table})", err=True)
        if applied is not None and applied.changed:
            click.echo(f"forwarding rules put first in {applied.chain}" if applied.chain else
                       "forwarding rules removed (Docker's DOCKER-USER chain is gone)",
                       err=True)
    if result.outcome == "installed":
        how = ""
        if result.restarted:
            how = " and restarted OpenVPN"
        elif result.openvpn_changed:
            how = " without a restart"
            if result.reconnected:
                how += f"; asked {', '.join(result.reconnected)} to reconnect"
            if result.cut_off:
                how += f"; cut off {', '.join(result.cut_off)}"
        if result.units:
            how += f"; (re)started {', '.join(result.units)}"
        click.echo(f"installed version {result.version}{how}", err=True)
    else:
        log.info("%s at version %d", result.outcome, result.version)
    return result.outcome


def _interrupted(signum: int, frame: object) -> None:
    # SIGTERM (systemd stopping the timer's run, a shutdown) unwinds like Ctrl-C, so every
    # cleanup runs: no staged private key is left behind.
    raise KeyboardInterrupt


def run(source_spec: str, ref: str, opts: PullOptions, once: bool, interval: float,
        credentials: Credentials = NO_CREDENTIALS) -> int:
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _interrupted)
    if once:
        _once(source_spec, ref, opts, credentials)
        return 0
    while True:  # without --once: a long-running agent (the timer is the usual way)
        try:
            if _once(source_spec, ref, opts, credentials) == "removed":
                return 0
        except VpcmeshError as exc:
            for problem in exc.problems:
                click.echo(str(problem), err=True)
        time.sleep(interval)
