"""What the agent keeps right after every pull, whatever its outcome: the installed units
enabled at boot, the bundle's forwarding rules first in Docker's DOCKER-USER chain, and its
service ACLs loaded (a `systemctl restart nftables` flushes them; the next pull puts them
back)."""

from __future__ import annotations

from vpcmesh.agent import acl, firewall, system
from vpcmesh.agent.install import Target
from vpcmesh.agent.pull import PullOptions
from vpcmesh.agent.state import STATE_DIR, AgentState, read_agent_state, state_conf_dir


def ensure_enabled(opts: PullOptions, state: AgentState | None = None) -> tuple[str, ...]:
    """After every pull: the installed units enabled, so that a reboot brings the tunnel
    (and the resolver) back by itself instead of waiting for someone to notice. Only under
    systemd on the real /, and not when the operator's --restart-cmd runs the units.
    `state`: the agent's state as the pull left it, when the caller has read it already."""
    state = state or read_agent_state(opts.root)
    if (not state.unit or opts.root != system.REAL_ROOT or not system.has_systemd()
            or opts.service.restart_cmd is not None):
        return ()
    enabled = []
    for unit in (state.unit, *state.units):
        if system.systemctl("is-enabled", "--quiet", unit) != 0 and \
                system.systemctl("enable", unit) == 0:
            enabled.append(unit)
    return tuple(enabled)


def ensure_firewall(opts: PullOptions,
                    state: AgentState | None = None) -> firewall.Applied | None:
    """After every pull, whatever its outcome: the installed rules, first in DOCKER-USER,
    so a Docker started (or restarted) after OpenVPN is caught up within one timer period."""
    state = state or read_agent_state(opts.root)
    if not opts.firewall or not state.mesh:
        return None
    path = Target.of_state(state, state_conf_dir(opts.root, state), opts.root).firewall
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None  # a bundle from before vpcmesh carried these rules
    rules = firewall.rules_of(text, str(path))
    if not system.has_nft():
        return None  # no nft, no nftables ruleset to fix (doctor looks at the firewall)
    return firewall.apply(state.mesh, rules)


def ensure_acl(opts: PullOptions, state: AgentState | None = None) -> acl.Loaded | None:
    """After every pull, whatever its outcome: the installed service ACLs loaded, or the
    mesh's table gone when the bundle has none."""
    state = state or read_agent_state(opts.root)
    if not opts.firewall or not state.mesh:
        return None
    path = Target.of_state(state, state_conf_dir(opts.root, state), opts.root).acl
    try:
        text: str | None = acl.check(path.read_text(), state.mesh, str(path))
    except FileNotFoundError:
        text = None
    return acl.ensure(state.mesh, text, opts.root / STATE_DIR)
