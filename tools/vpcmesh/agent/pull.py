"""The pull agent: verify, then decrypt, stage, install, restart, check health, roll back.

Nothing from the source is parsed before its signature verifies with the key the node was
bootstrapped with, and nothing is installed before every file matches its SHA-256."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field, replace
from pathlib import Path

from vpcmesh.agent.install import Installer, Target, layout
from vpcmesh.agent.service import Service, ServiceOptions, impact
from vpcmesh.agent.sources import Source
from vpcmesh.agent.state import AgentState, read_agent_state, write_agent_state
from vpcmesh.bundle import manifest as contract
from vpcmesh.bundle import names
from vpcmesh.bundle.manifest import Manifest
from vpcmesh.errors import VpcmeshError


@dataclass(frozen=True)
class PullOptions:
    hostname: str
    age_key: Path
    trust_key: Path
    root: Path = Path("/")
    service: ServiceOptions = field(default_factory=ServiceOptions)


@dataclass(frozen=True)
class PullResult:
    outcome: str  # "unchanged", "installed", "recorded" (newer version, same files)
    version: int
    restarted: bool = False
    openvpn_changed: bool = False
    reconnected: tuple[str, ...] = ()  # spokes a hub asked to reconnect, without a restart
    cut_off: tuple[str, ...] = ()  # spokes a hub dropped: removed, or revoked


def check(manifest: Manifest, opts: PullOptions, state: AgentState, now: dt.datetime,
          source: str) -> bool:
    """False for a quiet no-op (the version is installed already); raises to refuse."""
    host, version = manifest.body.hostname, manifest.version
    if host != opts.hostname:
        raise VpcmeshError.at(source, f"the manifest is for '{host}', not"
                                      f" '{opts.hostname}'; refusing another node's bundle")
    if version == state.version:
        return False
    if version < state.version:
        raise VpcmeshError.at(source, f"version {version} is older than the installed"
                                      f" {state.version}; refusing a rollback")
    if version == state.failed_version:
        raise VpcmeshError.at(source, f"version {version} failed its health check before;"
                                      " waiting for a newer one")
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


def pull(source: Source, opts: PullOptions, now: dt.datetime) -> PullResult:
    state = read_agent_state(opts.root)
    fetched = source.manifest(opts.hostname, state.etag)
    if fetched is None:
        return PullResult("unchanged", state.version)
    try:
        trust = opts.trust_key.read_bytes()
    except OSError as exc:
        raise VpcmeshError.at(str(opts.trust_key), f"cannot read: {exc.strerror}") from None
    manifest = contract.verify(fetched.manifest, fetched.signature,
                               contract.load_trust_key(trust, str(opts.trust_key)),
                               str(opts.trust_key), source.name)
    if not check(manifest, opts, state, now, source.name):
        if fetched.etag != state.etag:
            write_agent_state(opts.root, replace(state, etag=fetched.etag))
        return PullResult("unchanged", state.version)
    version = manifest.version
    files = fetch_files(source, manifest, opts.hostname)
    if names.SECRETS not in files:
        raise VpcmeshError.at(source.where(opts.hostname, names.SECRETS), "missing from the"
                                                                          " bundle")
    from vpcmesh.secrets import sops  # only when there is something new to decrypt

    opened = sops.decrypt(files[names.SECRETS], f"{opts.hostname}/{names.SECRETS}",
                          opts.age_key)
    target = Target.of(manifest, opts.root)
    installer = Installer(opts.root, layout(target, files, _secret_files(opened)), state.files)
    done = replace(state, hostname=opts.hostname, mesh=manifest.body.mesh, version=version,
                   commit=manifest.commit, installed_at=contract.format_time(now),
                   etag=fetched.etag, files=installer.managed, failed_version=None,
                   last_error=None)
    if not installer.pending:
        write_agent_state(opts.root, done)
        return PullResult("recorded", version)
    installer.install()
    installer.reload_systemd()
    service = Service(opts.service, target, manifest)
    effect = impact(installer, target, manifest.body.role == "hub")
    restart = effect.restart
    service.disconnect(effect)
    if restart:
        service.restart()
        if not service.healthy():
            installer.restore()
            service.restart()
            failed = replace(state, failed_version=version,
                             last_error=f"version {version} failed its health check")
            write_agent_state(opts.root, failed)
            raise VpcmeshError.at(str(target.conf_dir), f"version {version} did not come up"
                                  f" within {opts.service.health_timeout:g}s; restored version"
                                  f" {state.version} and restarted it")
    installer.apply_sysctl()
    write_agent_state(opts.root, done)
    return PullResult("installed", version, restart, effect.openvpn, effect.reconnect,
                      effect.drop)
