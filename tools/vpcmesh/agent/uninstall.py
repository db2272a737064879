"""`vpcmesh agent uninstall`: a VM leaves the mesh cleanly. The timer goes first (no pull
starts while the rest goes), then OpenVPN is stopped and disabled, then every file the
agent installed, its block of /etc/hosts, its state. The VM's age key stays unless asked:
it is the VM's identity, and a VM that rejoins with it needs no new recipient."""

from __future__ import annotations

import shutil
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

from vpcmesh.agent import acl, firewall, links, system
from vpcmesh.agent.bootstrap import CONFIG_DIR, UNIT_FILES
from vpcmesh.agent.install import Target, put_file, splice_hosts
from vpcmesh.agent.service import Service, ServiceOptions
from vpcmesh.agent.state import STATE_DIR, locked, read_agent_state, state_conf_dir
from vpcmesh.bundle import names
from vpcmesh.errors import VpcmeshError
from vpcmesh.fsio import write_temp

TIMER = "vpcmesh-pull.timer"


@dataclass(frozen=True)
class Removed:
    removed: tuple[str, ...]  # paths, as given under the root
    kept: tuple[str, ...]
    stopped: str | None  # the OpenVPN unit stopped, if one was installed


def _remove(path: Path, out: list[str]) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()
    else:
        return
    out.append(str(path))


def _hosts_without(target: Target, out: list[str]) -> None:
    if not target.hosts.exists():
        return
    current = target.hosts.read_text()
    kept = splice_hosts(current, "", target.mesh)
    if kept != current:
        put_file(write_temp(target.hosts, kept.encode(), 0o644, durable=True), target.hosts)
        out.append(f"{target.hosts} (the {target.mesh} block)")


def _bundle(root: Path, service: ServiceOptions, real: bool, rules: bool,
            out: list[str]) -> str | None:
    """Stop the installed OpenVPN unit and remove what the bundle put in place; returns the
    unit, if one was installed. The caller holds the agent's lock."""
    state = read_agent_state(root, repair=False)
    if not state.unit:
        return None
    target = Target.of_state(state, state_conf_dir(root, state), root)
    Service.openvpn(service, target, state.unit, state.vpn_address, state.mesh).stop()
    if real:
        system.systemctl("disable", state.unit)
    for unit in state.units:  # the tunnels to further hubs, the resolver
        links.retire_unit(service, unit, target, state.mesh, root)
    for rel in state.files:
        _remove(root / rel, out)
    for name in (names.REPORT, names.PEERS_DIR, f"{state.mesh}.mgmt"):
        _remove(target.conf_dir / name, out)
    if target.conf_dir.name == "server":  # a hub's report, for its tunnels to other hubs
        _remove(target.link_dir / names.REPORT, out)
    _hosts_without(target, out)
    if rules and system.has_nft():
        count = firewall.remove(state.mesh)
        if count:
            out.append(f"{count} forwarding rule(s) of {state.mesh} (nftables)")
        if acl.remove(state.mesh, root / STATE_DIR):
            out.append(f"service ACLs of {state.mesh} (nftables table inet"
                       f" {names.acl_table(state.mesh)})")
    if real:
        system.daemon_reload()  # the OpenVPN unit's drop-in is gone
    return state.unit


def uninstall(root: Path, service: ServiceOptions, metrics: Path | None,
              purge: bool, lock: bool = True, rules: bool | None = None) -> Removed:
    """`rules`: remove the forwarding rules from this network namespace's ruleset (by
    default on the real / only)."""
    removed: list[str] = []
    real = root == system.REAL_ROOT and system.has_systemd()
    if real:
        system.systemctl("disable", "--now", TIMER)
    for rel in UNIT_FILES:
        _remove(root / rel, removed)
    if real:
        system.daemon_reload()
    stopped = None
    if (root / STATE_DIR).exists():  # else never pulled: no bundle, and no lock to make
        # A pull that finds its removal notice holds the lock already (lock False).
        with locked(root) if lock else nullcontext(True) as mine:
            if not mine:
                raise VpcmeshError.at(str(root / STATE_DIR), "a pull is running; run"
                                                             " uninstall again when it has ended")
            stopped = _bundle(root, service, real,
                              root == system.REAL_ROOT if rules is None else rules, removed)
    _remove(root / STATE_DIR, removed)  # the lock goes with it, once released
    if metrics is not None:
        _remove(root / str(metrics).lstrip("/"), removed)
    _remove(root / CONFIG_DIR / "signing.pub", removed)
    kept = []
    key = root / CONFIG_DIR / "age.key"
    if purge:
        _remove(root / CONFIG_DIR, removed)
    elif key.exists():
        kept.append(str(key))
    return Removed(tuple(removed), tuple(kept), stopped)
