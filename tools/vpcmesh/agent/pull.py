"""The pull agent: verify, then decrypt, stage, install, restart, check health, roll back.

Nothing from the source is parsed before its signature verifies with the key the node was
bootstrapped with, and nothing is installed before every file matches its SHA-256."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import NoReturn

from vpcmesh.agent import leave, links, report, resolver, trust
from vpcmesh.agent.install import Installer, Target, layout
from vpcmesh.agent.links import Link
from vpcmesh.agent.service import Health, Service, ServiceOptions, impact, touches
from vpcmesh.agent.sources import NotInSource, Source
from vpcmesh.agent.state import (
    HEALTHY,
    WAITING,
    AgentState,
    read_agent_state,
    state_conf_dir,
    write_agent_state,
)
from vpcmesh.agent.uninstall import uninstall
from vpcmesh.bundle import fleet, names
from vpcmesh.bundle import manifest as contract
from vpcmesh.bundle.manifest import Manifest
from vpcmesh.errors import VpcmeshError


@dataclass(frozen=True)
class PullOptions:
    hostname: str
    age_key: Path
    trust_key: Path
    root: Path = Path("/")
    service: ServiceOptions = field(default_factory=ServiceOptions)
    metrics: Path | None = None  # a Prometheus textfile, written after every pull
    # Put the bundle's forwarding rules in Docker's DOCKER-USER chain, in this network
    # namespace (agent/firewall.py); the CLI turns it on for the real / by default.
    firewall: bool = False
    # Two or more hubs: how long a hub waits for the others to carry its spokes before it
    # restarts (agent/links.py); then the pull fails, and the next one tries again.
    hub_wait: float = 300.0


@dataclass(frozen=True)
class PullResult:
    outcome: str  # "unchanged", "installed", "recorded" (newer version, same files),
    # "removed" (a signed notice said this node left the mesh: it uninstalled itself)
    version: int
    restarted: bool = False
    openvpn_changed: bool = False
    reconnected: tuple[str, ...] = ()  # spokes a hub asked to reconnect, without a restart
    cut_off: tuple[str, ...] = ()  # spokes a hub dropped: removed, or revoked
    units: tuple[str, ...] = ()  # other units (the resolver) this pull restarted


RETRY_FIRST = dt.timedelta(minutes=2)  # one timer period
RETRY_CAP = dt.timedelta(minutes=30)


def retry_after(attempts: int) -> dt.timedelta:
    """2, 4, 8, 16, then every 30 minutes: a failed version is retried, never abandoned."""
    return min(RETRY_CAP, RETRY_FIRST * int(2 ** max(0, attempts - 1)))


def check(manifest: Manifest, digest: str, opts: PullOptions, state: AgentState,
          now: dt.datetime, source: str) -> bool:
    """False for a quiet no-op (the version is installed already); raises to refuse."""
    host, version = manifest.body.hostname, manifest.version
    if host != opts.hostname:
        raise VpcmeshError.at(source, f"the manifest is for '{host}', not"
                                      f" '{opts.hostname}'; refusing another node's bundle")
    if version == state.version and digest in (state.manifest_sha256, ""):
        return False
    if version < state.version:
        raise VpcmeshError.at(source, f"version {version} is older than the installed"
                                      f" {state.version}; refusing a rollback")
    if version == state.failed_version and state.next_retry and \
            now < contract.parse_time(state.next_retry):
        raise VpcmeshError.at(source, f"version {version} failed its health check"
                                      f" ({state.attempts} time(s)); trying it again after"
                                      f" {state.next_retry}")
    if manifest.expires_at <= now:
        raise VpcmeshError.at(source, f"the manifest expired on {manifest.expires}; the"
                                      " source may be frozen or stale")
    return True


def fetch_files(source: Source, manifest: Manifest, host: str) -> dict[str, bytes]:
    files = {}
    for rel, entry in sorted(manifest.body.files.items()):
        data = source.read(host, rel, entry.size)
        if len(data) != entry.size or hashlib.sha256(data).hexdigest() != entry.sha256:
            raise VpcmeshError.at(source.where(host, rel), f"does not match the manifest"
                                  f" ({len(data)} of {entry.size} bytes, or another SHA-256);"
                                  " refusing the bundle")
        files[rel] = data
    return files


def _secret_files(opened: dict[str, object]) -> dict[str, str]:
    found = opened.get(names.SECRET_FILES_KEY)
    if not isinstance(found, dict) or not all(isinstance(v, str) for v in found.values()):
        raise VpcmeshError.at(names.SECRETS, f"holds no '{names.SECRET_FILES_KEY}' mapping of"
                                             " file names to text; refusing the bundle")
    return {str(k): v for k, v in found.items()}


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def _frozen(state: AgentState, now: dt.datetime, source: str) -> None:
    """Nothing new, for longer than the installed manifest was signed for: the source (or
    the publish job behind it) has stopped, and the node would not hear of a revocation."""
    if state.expires and contract.parse_time(state.expires) <= now:
        raise VpcmeshError.at(source, f"still serves version {state.version}, whose manifest"
                                      f" expired on {state.expires}: the source may be frozen"
                                      " (is the publish job running?)")


def _recheck(state: AgentState, opts: PullOptions) -> PullResult:
    """Nothing new, but the installed version was waiting for its tunnel: is it up now?"""
    if not state.waiting:
        return PullResult("unchanged", state.version)
    conf_dir = state_conf_dir(opts.root, state)
    service = Service.openvpn(opts.service, Target.of_state(state, conf_dir, opts.root),
                      unit=state.unit, address=state.vpn_address, mesh=state.mesh)
    if service.probe() is Health.UP:
        write_agent_state(opts.root, replace(state, health=HEALTHY, last_error=None))
        return PullResult("unchanged", state.version)
    raise VpcmeshError.at(str(conf_dir), f"version {state.version} is installed and OpenVPN"
                                         " runs, but its tunnel is still not up; has the hub"
                                         " pulled its bundle with this node?")


def pull(source: Source, opts: PullOptions, now: dt.datetime) -> PullResult:
    state = read_agent_state(opts.root)
    try:
        fetched = source.manifest(opts.hostname, state.etag)
    except NotInSource:
        removed = leave.notice(source, opts.hostname, opts.trust_key, state)
        if removed is None:
            raise
        uninstall(opts.root, opts.service, opts.metrics, purge=False, lock=False,
                  rules=opts.firewall)
        return PullResult("removed", removed.after_version)
    if fetched is None:
        _frozen(state, now, source.name)
        return _recheck(state, opts)
    manifest = contract.verify(fetched.manifest, fetched.signature,
                               trust.trusted(source, opts.hostname, opts.trust_key),
                               str(opts.trust_key), source.name)
    digest = hashlib.sha256(fetched.manifest).hexdigest()
    if not check(manifest, digest, opts, state, now, source.name):
        if fetched.etag != state.etag or not state.manifest_sha256 or not state.expires:
            state = replace(state, etag=fetched.etag, manifest_sha256=digest,
                            expires=manifest.expires)
            write_agent_state(opts.root, state)
        _frozen(state, now, source.name)
        return _recheck(state, opts)
    version = manifest.version
    files = fetch_files(source, manifest, opts.hostname)
    if names.SECRETS not in files:
        raise VpcmeshError.at(source.where(opts.hostname, names.SECRETS), "missing from the"
                                                                          " bundle")
    from vpcmesh.secrets import sops  # only when there is something new to decrypt

    opened = sops.decrypt(files[names.SECRETS], f"{opts.hostname}/{names.SECRETS}",
                          opts.age_key)
    target = Target.of(manifest, opts.root)
    hub = manifest.body.role == "hub"
    tunnels = links.links(opts.service, manifest.body, target.link_dir if hub else
                          target.conf_dir)
    resolvers = resolver.resolvers(opts.service, manifest.body.units, target.resolver_dir,
                                   manifest.body.mesh)
    resolver.require_programs(resolvers, opts.service, opts.root)  # before anything changes
    units: list[Service] = [*tunnels, *resolvers]
    config = fleet.config_digest(manifest.body.files)
    installer = Installer(opts.root, layout(target, files, _secret_files(opened),
                                            [t.unit for t in tunnels]), state.files)
    done = replace(state, hostname=opts.hostname, mesh=manifest.body.mesh, version=version,
                   commit=manifest.commit, installed_at=contract.format_time(now),
                   etag=fetched.etag, files=installer.managed, manifest_sha256=digest,
                   expires=manifest.expires,
                   unit=manifest.unit, vpn_address=manifest.body.vpn_address, health=HEALTHY,
                   failed_version=None, attempts=0, next_retry=None, last_error=None,
                   config=config, units=tuple(u.unit for u in units))
    if not installer.pending:
        write_agent_state(opts.root, replace(done, health=state.health or HEALTHY))
        return PullResult("recorded", version)  # the report follows in observe.record
    effect = impact(installer, target, hub, frozenset(t.conf_dir / t.config for t in tunnels))
    handed: dict[str, str] = {}
    if hub and effect.restart:  # before anything changes: another hub must carry its spokes
        links.before_restart(manifest.body, target.conf_dir, tunnels, opts.hub_wait)
        handed = links.spokes_here(manifest.body, target.conf_dir)
    fleet_before = _read(target.fleet) if hub else None
    installer.install()
    if hub:
        report.ensure_peers_dir(target.conf_dir)
        if names.FLEET in files:
            report.track_fleet(opts.root, fleet_before, files[names.FLEET], now)
    # Before a restart: a client's config includes it.
    for folder in {t.conf_dir for t in tunnels} | ({target.conf_dir} if not hub else set()):
        report.write_report(folder, config, version, True)
    installer.reload_systemd()
    service = Service.openvpn(opts.service, target, unit=manifest.unit,
                      address=manifest.body.vpn_address, mesh=manifest.body.mesh)
    service.disconnect(effect)
    restarted: list[Service] = []
    found = Health.UP
    if effect.restart:
        service.advance(effect)
        service.restart()
        restarted.append(service)
        found = service.health()
        if found is Health.DOWN:
            _roll_back(installer, service, restarted, state, version, now, opts)
        links.after_restart(manifest.body, target.conf_dir, handed,
                            opts.service.health_timeout)
    # Then each other unit whose files changed (or that is new), one after the other.
    configs = {u.conf_dir / u.config for u in [service, *tunnels]}
    for unit in units:
        if unit.unit in state.units and not touches(installer, target, unit, configs):
            continue
        unit.restart()
        restarted.append(unit)
        health = unit.health()
        # A tunnel to another hub may wait for that hub (it may be down); a unit that
        # cannot run stops the version.
        if health is Health.DOWN or (health is not Health.UP and not isinstance(unit, Link)):
            _roll_back(installer, unit, restarted, state, version, now, opts)
    _stop_gone(state, units, opts, target)
    if effect.restart and found is Health.WAITING:
        write_agent_state(opts.root, replace(done, health=WAITING, last_error=(
            f"version {version}: OpenVPN runs, but its tunnel is not up yet")))
        raise VpcmeshError.at(str(target.conf_dir), f"version {version} is installed and"
                              " OpenVPN runs, but its tunnel did not come up within"
                              f" {opts.service.health_timeout:g}s (has the hub pulled its"
                              " bundle with this node?); keeping it, OpenVPN keeps trying")
    installer.apply_sysctl()
    write_agent_state(opts.root, done)
    return PullResult("installed", version, effect.restart, effect.openvpn, effect.reconnect,
                      effect.drop, tuple(u.unit for u in restarted if u is not service))


def _stop_gone(state: AgentState, units: list[Service], opts: PullOptions,
               target: Target) -> None:
    """Units the installed version ran and the new one does not: stopped, and disabled."""
    kept = {u.unit for u in units}
    for name in state.units:
        if name not in kept:
            links.retire_unit(opts.service, name, target, state.mesh, opts.root)


def _roll_back(installer: Installer, failed: Service, restarted: list[Service],
               state: AgentState, version: int, now: dt.datetime,
               opts: PullOptions) -> NoReturn:
    """A unit of this version cannot start: the previous files back, and each unit this pull
    restarted restarted again on them (stopped, if the previous version did not run it);
    the version is retried later, with backoff."""
    installer.restore()
    conf_dir = state_conf_dir(opts.root, state)
    if state.version and state.config and conf_dir.name == "client":
        report.write_report(conf_dir, state.config, state.version, False)
    for unit in restarted:
        (unit.restart if state.version and unit.unit in (state.unit, *state.units)
         else unit.stop)()
    what = ", ".join(u.unit for u in restarted)
    if state.version:
        after = (f"restored version {state.version} and restarted"
                 f" {'it' if restarted == [failed] else what}")
    else:
        after = ("nothing was installed before, so OpenVPN is stopped"
                 if restarted == [failed] else
                 f"nothing was installed before, so {what} are stopped")
    attempts = state.attempts + 1 if state.failed_version == version else 1
    retry = contract.format_time(now + retry_after(attempts))
    # OpenVPN is the bundle's first unit; another one is named.
    named = "" if type(failed) is Service else f" ({failed.unit})"
    message = (f"version {version}{named} did not start within"
               f" {opts.service.health_timeout:g}s; {after}; trying it again after {retry}")
    write_agent_state(opts.root, replace(state, failed_version=version, attempts=attempts,
                                         next_retry=retry, last_error=message))
    raise VpcmeshError.at(str(failed.conf_dir), message)
