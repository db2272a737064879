"""Installing a verified bundle on the node: staged next to the targets, renamed into place,
with the previous files kept so a failed health check can put them back."""

from __future__ import annotations

import errno
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from vpcmesh.agent import system
from vpcmesh.agent.state import AgentState, fleet_path
from vpcmesh.bundle import names
from vpcmesh.bundle.manifest import Manifest
from vpcmesh.errors import VpcmeshError
from vpcmesh.fsio import write_temp

Desired = dict[Path, tuple[bytes, int]]


@dataclass(frozen=True)
class Target:
    conf_dir: Path
    config: str
    sysctl: Path
    hosts: Path
    mesh: str
    dropin: Path
    fleet: Path

    @property
    def firewall(self) -> Path:
        return self.hosts.parent / f"vpcmesh/firewall-{self.mesh}.nft"

    @property
    def acl(self) -> Path:
        return self.hosts.parent / f"vpcmesh/acl-{self.mesh}.nft"

    @property
    def resolver_dir(self) -> Path:
        return self.hosts.parent.parent / names.resolver_dir(self.mesh)

    @property
    def link_dir(self) -> Path:
        """A hub's tunnels to the other hubs: Debian's openvpn-client@ directory."""
        return self.conf_dir.parent / "client"

    @property
    def unit_dir(self) -> Path:
        return self.hosts.parent / "systemd/system"

    @classmethod
    def of_state(cls, state: AgentState, conf_dir: Path, root: Path) -> Target:
        """Where the installed version lives, from the agent's state alone."""
        return cls(conf_dir, f"{state.mesh}.conf",
                   root / f"etc/sysctl.d/60-vpcmesh-{state.mesh}.conf", root / "etc/hosts",
                   state.mesh, root / names.dropin_path(state.unit), fleet_path(root))

    @classmethod
    def of(cls, manifest: Manifest, root: Path) -> Target:
        body = manifest.body
        return cls(root / "etc/openvpn" / body.openvpn_dir, body.config,
                   root / f"etc/sysctl.d/60-vpcmesh-{body.mesh}.conf", root / "etc/hosts",
                   body.mesh, root / names.dropin_path(manifest.unit), fleet_path(root))


def splice_hosts(current: str, fragment: str, mesh: str) -> str:
    """Replace this mesh's BEGIN/END block in /etc/hosts, or append it; keep the rest."""
    begin, end = f"# BEGIN vpcmesh {mesh}", f"# END vpcmesh {mesh}"
    lines, kept, inside = current.splitlines(), [], False
    for line in lines:
        if line.strip() == begin:
            inside = True
        elif line.strip() == end and inside:
            inside = False
        elif not inside:
            kept.append(line)
    body = "\n".join(kept).rstrip("\n")
    return (body + "\n" if body else "") + fragment


def _plain_name(name: str) -> bool:
    return bool(name) and "/" not in name and name not in (".", "..")


def layout(target: Target, files: dict[str, bytes], secrets: dict[str, str],
           links: Sequence[str] = ()) -> Desired:
    """`links`: the units of this node's tunnels to further hubs, which get the drop-in."""
    out: Desired = {}
    for rel, data in files.items():
        if rel.startswith(names.OPENVPN_PREFIX):
            out[target.conf_dir / rel.removeprefix(names.OPENVPN_PREFIX)] = (data, 0o644)
        elif rel.startswith(names.LINK_PREFIX):
            out[target.link_dir / rel.removeprefix(names.LINK_PREFIX)] = (data, 0o644)
        elif rel == names.SYSCTL:
            out[target.sysctl] = (data, 0o644)
        elif rel == names.FLEET:
            out[target.fleet] = (data, 0o644)
        elif rel == names.SYSTEMD_DROPIN:
            out[target.dropin] = (data, 0o644)
            for unit in links:
                out[target.unit_dir / f"{unit}.service.d" / target.dropin.name] = (data, 0o644)
        elif rel == names.FIREWALL:
            out[target.firewall] = (data, 0o644)
        elif rel == names.ACL:
            out[target.acl] = (data, 0o644)
        elif rel.startswith(names.RESOLVER_PREFIX):
            out[target.resolver_dir / rel.removeprefix(names.RESOLVER_PREFIX)] = (data, 0o644)
        elif rel == names.RESOLVER_SERVICE:
            out[target.unit_dir / rel.removeprefix("systemd/")] = (data, 0o644)
        elif rel == names.HOSTS:
            current = target.hosts.read_text() if target.hosts.exists() else ""
            out[target.hosts] = (splice_hosts(current, data.decode(), target.mesh).encode(),
                                 0o644)
    dirs = [target.conf_dir]
    if any(rel.startswith(names.LINK_PREFIX) for rel in files):
        dirs.append(target.link_dir)  # a hub's tunnels to other hubs use its key too
    for name, text in secrets.items():
        if not _plain_name(name):
            raise VpcmeshError.at(names.SECRETS, f"refusing the file name {name!r}")
        for folder in dirs:
            out[folder / name] = (text.encode(), 0o600)  # private keys: owner only
    return out


def _current(path: Path) -> tuple[bytes, int] | None:
    try:
        return path.read_bytes(), path.stat().st_mode & 0o777
    except FileNotFoundError:
        return None


def _write(path: Path, data: bytes, mode: int) -> Path:
    return write_temp(path, data, mode, durable=True)


def put_file(tmp: Path, path: Path) -> None:
    """Rename `tmp` over `path`; where `path` is a mount point of its own (/etc/hosts in
    Docker, LXC and Kubernetes is bind-mounted), rewrite it in place instead."""
    try:
        os.replace(tmp, path)
    except OSError as exc:
        if exc.errno not in (errno.EBUSY, errno.EXDEV, errno.EPERM):
            raise
        with open(path, "r+b") as handle:
            handle.write(tmp.read_bytes())
            handle.truncate()
            handle.flush()
            os.fsync(handle.fileno())
        tmp.unlink()


class Installer:
    def __init__(self, root: Path, desired: Desired, managed_before: Sequence[str]) -> None:
        self.root = root
        self.desired = desired
        self.changes = {p: v for p, v in desired.items() if _current(p) != v}
        self.removals = [root / rel for rel in managed_before
                         if root / rel not in desired and (root / rel).exists()]
        self.backup = {p: _current(p) for p in [*self.changes, *self.removals]}
        hosts = {p for p in desired if p.name == "hosts" and p.parent.name == "etc"}
        self.managed = tuple(sorted(str(p.relative_to(root)) for p in desired if p not in hosts))

    @property
    def pending(self) -> bool:
        return bool(self.changes or self.removals)

    def install(self) -> None:
        staged: list[tuple[Path, Path]] = []
        try:
            for path, (data, mode) in sorted(self.changes.items()):
                staged.append((_write(path, data, mode), path))
            for tmp, path in staged:
                put_file(tmp, path)
        finally:
            # Staged files may hold private keys: none may outlive a failed (or interrupted)
            # run, whatever the moment (a rename that fails, a signal between two).
            for tmp, _ in staged:
                tmp.unlink(missing_ok=True)
        for path in self.removals:
            path.unlink(missing_ok=True)

    def restore(self) -> None:
        for path, old in self.backup.items():
            if old is None:
                path.unlink(missing_ok=True)
            else:
                tmp = _write(path, *old)
                try:
                    put_file(tmp, path)
                finally:
                    tmp.unlink(missing_ok=True)

    @property
    def changed(self) -> list[Path]:
        return [*self.changes, *self.removals]

    @property
    def replaced(self) -> list[Path]:
        """Changed files that existed before: changed in place, or removed."""
        return [p for p in self.changed if self.backup.get(p) is not None]

    def reload_systemd(self) -> None:
        """Before a restart, so the unit runs with its new drop-in (only on the real /)."""
        if self.root == system.REAL_ROOT and system.has_systemd() and any(
                p.parent.name.endswith(".service.d") or p.name.endswith(".service")
                for p in self.changed):
            system.daemon_reload()

    def apply_sysctl(self) -> None:
        # Only on the real system: under a test --root there is no kernel setting to change.
        for path in self.changes:
            if path.parent.name == "sysctl.d" and self.root == system.REAL_ROOT:
                system.apply_sysctl(path)
