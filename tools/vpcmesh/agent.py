"""The pull agent: verify, then decrypt, stage, install, restart, check health, roll back.

Nothing from the source is parsed before its signature verifies with the key the node was
bootstrapped with, and nothing is installed before every file matches its SHA-256."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import logging
import os
import shlex
import subprocess
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from vpcmesh.agentstate import AgentState, read_agent_state, write_agent_state
from vpcmesh.errors import VpcmeshError
from vpcmesh.install import Installer, Target, layout
from vpcmesh.sources import Fetched, Source

log = logging.getLogger("vpcmesh.agent")
MAX_FILE = 1 << 20  # a bundle file larger than this is refused before it is read


@dataclass(frozen=True)
class PullOptions:
    hostname: str
    age_key: Path
    trust_key: Path
    root: Path = Path("/")
    restart_cmd: str | None = None
    health_cmd: str | None = None
    pidfile: Path | None = None
    health_timeout: float = 30.0


@dataclass(frozen=True)
class PullResult:
    outcome: str  # "unchanged", "installed", "recorded" (newer version, same files)
    version: int
    restarted: bool = False


def verify(fetched: Fetched, trust_key: Path, source: str) -> dict[str, Any]:
    try:
        key = load_pem_public_key(trust_key.read_bytes())
    except (OSError, ValueError) as exc:
        raise VpcmeshError.at(str(trust_key), f"not an Ed25519 public key: {exc}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise VpcmeshError.at(str(trust_key), "not an Ed25519 public key")
    try:
        key.verify(base64.b64decode(fetched.signature.strip(), validate=True), fetched.manifest)
    except (InvalidSignature, binascii.Error, ValueError):
        raise VpcmeshError.at(source, f"manifest signature does not verify with {trust_key};"
                                      " refusing the bundle") from None
    manifest: dict[str, Any] = json.loads(fetched.manifest)
    return manifest


def check(manifest: dict[str, Any], opts: PullOptions, state: AgentState, now: dt.datetime,
          source: str) -> bool:
    """False for a quiet no-op (the version is installed already); raises to refuse."""
    if manifest.get("hostname") != opts.hostname:
        raise VpcmeshError.at(source, f"the manifest is for '{manifest.get('hostname')}', not"
                                      f" '{opts.hostname}'; refusing another node's bundle")
    version = int(manifest["version"])
    if version == state.version:
        return False
    if version < state.version:
        raise VpcmeshError.at(source, f"version {version} is older than the installed"
                                      f" {state.version}; refusing a rollback")
    if version == state.failed_version:
        raise VpcmeshError.at(source, f"version {version} failed its health check before;"
                                      " waiting for a newer one")
    expires = dt.datetime.strptime(manifest["expires"], "%Y-%m-%dT%H:%M:%SZ")
    if expires.replace(tzinfo=dt.UTC) <= now:
        raise VpcmeshError.at(source, f"the manifest expired on {manifest['expires']}; the"
                                      " source may be frozen or stale")
    return True


def fetch_files(source: Source, manifest: dict[str, Any], host: str) -> dict[str, bytes]:
    files = {}
    for rel, meta in sorted(manifest["files"].items()):
        size = int(meta["size"])
        where = source.where(host, rel)
        if size > MAX_FILE or rel.startswith("/") or ".." in rel.split("/"):
            raise VpcmeshError.at(where, "refused: too large or outside the bundle")
        data = source.read(host, rel, size)
        if len(data) != size or hashlib.sha256(data).hexdigest() != meta["sha256"]:
            raise VpcmeshError.at(where, f"does not match the manifest ({len(data)} of {size}"
                                         " bytes, or another SHA-256); refusing the bundle")
        files[rel] = data
    return files


def _run_shell(cmd: str, env: dict[str, str]) -> int:
    return subprocess.run(["sh", "-c", cmd], env={**os.environ, **env}, check=False,
                          capture_output=True).returncode


class Service:
    """Restarting OpenVPN and checking that it came back with its tunnel address."""

    def __init__(self, opts: PullOptions, target: Target, manifest: dict[str, Any]) -> None:
        self.opts, self.target = opts, target
        self.unit = f"openvpn-{manifest['openvpn_dir']}@{manifest['mesh']}"
        self.address = manifest["vpn_address"]
        self.env = {"VPCMESH_CONF_DIR": str(target.conf_dir), "VPCMESH_CONFIG": target.config,
                    "VPCMESH_MESH": manifest["mesh"], "VPCMESH_UNIT": self.unit}

    def restart(self) -> None:
        cmd = self.opts.restart_cmd or f"systemctl restart {shlex.quote(self.unit)}"
        code = _run_shell(cmd, self.env)
        log.info("restarted OpenVPN (%s): exit %d", cmd, code)

    def _process_up(self) -> bool:
        if self.opts.pidfile is not None:
            try:
                os.kill(int(self.opts.pidfile.read_text().split()[0]), 0)
            except (OSError, ValueError, IndexError):
                return False
            return True
        if self.opts.restart_cmd is None:
            return _run_shell(f"systemctl is-active --quiet {shlex.quote(self.unit)}",
                              self.env) == 0
        return True

    def _address_up(self) -> bool:
        out = subprocess.run(["ip", "-o", "-4", "addr", "show"], capture_output=True,
                             text=True, check=False).stdout
        return f"inet {self.address}/" in out

    def healthy(self) -> bool:
        deadline = time.monotonic() + self.opts.health_timeout
        while True:
            if self.opts.health_cmd is not None:
                ok = _run_shell(self.opts.health_cmd, self.env) == 0
            else:
                ok = self._process_up() and self._address_up()
            if ok or time.monotonic() >= deadline:
                return ok
            time.sleep(0.5)


def _stamp(now: dt.datetime) -> str:
    return now.strftime("%Y-%m-%dT%H:%M:%SZ")


def pull(source: Source, opts: PullOptions, now: dt.datetime) -> PullResult:
    state = read_agent_state(opts.root)
    fetched = source.manifest(opts.hostname, state.etag)
    if fetched is None:
        return PullResult("unchanged", state.version)
    manifest = verify(fetched, opts.trust_key, source.name)
    if not check(manifest, opts, state, now, source.name):
        if fetched.etag != state.etag:
            write_agent_state(opts.root, replace(state, etag=fetched.etag))
        return PullResult("unchanged", state.version)
    version = int(manifest["version"])
    files = fetch_files(source, manifest, opts.hostname)
    from vpcmesh import sops  # only when there is something new to decrypt

    opened = sops.decrypt_bytes(files["secrets.sops.yaml"], f"{opts.hostname}/secrets.sops.yaml",
                                opts.age_key)
    target = Target.of(manifest, opts.root)
    installer = Installer(opts.root, layout(target, files, opened["files"]), state.files)
    done = replace(state, hostname=opts.hostname, mesh=manifest["mesh"], version=version,
                   commit=str(manifest["commit"]), installed_at=_stamp(now),
                   etag=fetched.etag, files=installer.managed, failed_version=None,
                   last_error=None)
    if not installer.pending:
        write_agent_state(opts.root, done)
        return PullResult("recorded", version)
    installer.install()
    installer.reload_systemd()
    service = Service(opts, target, manifest)
    restart = installer.touches(target.conf_dir)
    if restart:
        service.restart()
        if not service.healthy():
            installer.restore()
            service.restart()
            failed = replace(state, failed_version=version,
                             last_error=f"version {version} failed its health check")
            write_agent_state(opts.root, failed)
            raise VpcmeshError.at(str(target.conf_dir), f"version {version} did not come up"
                                  f" within {opts.health_timeout:g}s; restored version"
                                  f" {state.version} and restarted it")
    installer.apply_sysctl()
    write_agent_state(opts.root, done)
    return PullResult("installed", version, restart)
