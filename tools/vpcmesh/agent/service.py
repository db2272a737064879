"""Restarting OpenVPN and checking that it came back with its tunnel address."""

from __future__ import annotations

import logging
import os
import re
import shlex
import time
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from vpcmesh.agent import system
from vpcmesh.agent.install import Installer, Target
from vpcmesh.agent.management import Management
from vpcmesh.bundle import effects, names
from vpcmesh.errors import VpcmeshError

log = logging.getLogger("vpcmesh.agent")


@dataclass(frozen=True)
class ServiceOptions:
    restart_cmd: str | None = None
    health_cmd: str | None = None
    pidfile: Path | None = None
    health_timeout: float = 30.0
    stop_cmd: str | None = None


class Health(Enum):
    UP = "up"  # running, with its tunnel address
    WAITING = "waiting"  # running, but not connected yet: the peer may not have caught up
    DOWN = "down"  # not running: this config cannot start

# --health-cmd's answer for "running, not connected yet" (EX_TEMPFAIL); 0 is up, else down.
HEALTH_WAITING_EXIT = 75
# A process seen down this long, after this grace, is not going to start.
_GRACE, _DOWN_FOR = 2.0, 2.0


@dataclass(frozen=True)
class Impact:
    """What installed files mean for the running OpenVPN."""

    openvpn: bool = False  # OpenVPN's files changed
    restart: bool = False
    reconnect: tuple[str, ...] = ()  # spokes to restart their session (their ccd changed)
    drop: tuple[str, ...] = ()  # spokes to cut off now: removed, or their certificate revoked
    # A hub's new tls-crypt-v2 server key (pki/tc2rotation.py, the switch): before the
    # restart, every client is told to move to its next <connection> block, the new key.
    advance: bool = False


_CRL_BLOCK = re.compile(rb"-----BEGIN X509 CRL-----.*?-----END X509 CRL-----\s*", re.S)


def _revoked_serials(crl_pem: bytes | None) -> frozenset[int]:
    from cryptography import x509  # only when a hub's ccd file changed

    if not crl_pem:
        return frozenset()
    found: set[int] = set()
    for block in _CRL_BLOCK.findall(crl_pem):  # two CRLs while the CA rotates
        try:
            found.update(r.serial_number for r in x509.load_pem_x509_crl(block))
        except ValueError:
            continue
    return frozenset(found)


def impact(installer: Installer, target: Target, hub: bool,
           others: frozenset[Path] = frozenset()) -> Impact:
    """A hub re-reads its ccd files and its CRL by itself: changes to those alone need no
    restart. A spoke whose ccd file changed is asked to reconnect, so that OpenVPN reads
    the new file (not for a new certificate serial alone); one whose file went away, or
    whose certificate (its serial is in the old ccd file) the new CRL lists, is cut off at
    once. Any other change to OpenVPN's files restarts it, except to `others`: the configs
    of the node's tunnels to further hubs."""
    inside = [p for p in installer.changed if target.conf_dir in p.parents and p not in others]
    if not inside:
        return Impact()
    rels = [names.OPENVPN_PREFIX + str(p.relative_to(target.conf_dir)) for p in inside]
    if effects.needs_restart("hub" if hub else "spoke", rels):
        return Impact(True, restart=True, advance=hub and target.conf_dir / names.TC2_SERVER_KEY
                      in installer.replaced)
    ccd, crl = target.conf_dir / names.CCD_DIR, target.conf_dir / names.CRL
    revoked = _revoked_serials(installer.desired.get(crl, (b"", 0))[0])
    reconnect: list[str] = []
    drop: list[str] = []
    for path in installer.replaced:
        if path.parent != ccd:
            continue
        old_bytes = (installer.backup.get(path) or (b"", 0))[0]
        serial = effects.SERIAL_LINE.search(old_bytes)
        gone = path not in installer.desired
        if gone or (serial and int(serial[1]) in revoked):
            drop.append(path.name)
        elif not effects.serial_only(old_bytes, installer.desired[path][0]):
            reconnect.append(path.name)
    return Impact(True, reconnect=tuple(sorted(reconnect)), drop=tuple(sorted(drop)))


def _zombie(pid: int) -> bool:
    """Exited, and not yet reaped: `kill -0` still finds it. Without systemd (--pidfile), a
    daemon's parent is whatever reaps orphans, and a container's init may take seconds."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False  # gone since, or no /proc: kill -0 has answered
    return stat.rpartition(")")[2].split()[:1] == ["Z"]


class Service:
    """One unit the agent runs: OpenVPN here, the resolver in agent/resolver.py. The
    operator's --restart-cmd, --stop-cmd and --health-cmd run once per unit, with
    VPCMESH_UNIT naming it and VPCMESH_CONF_DIR/VPCMESH_CONFIG its files."""

    def __init__(self, opts: ServiceOptions, unit: str, address: str, mesh: str,
                 conf_dir: Path, config: str) -> None:
        self.opts, self.conf_dir, self.config = opts, conf_dir, config
        self.unit, self.mesh, self.address = unit, mesh, address
        self.env = {"VPCMESH_CONF_DIR": str(conf_dir), "VPCMESH_CONFIG": config,
                    "VPCMESH_MESH": mesh, "VPCMESH_UNIT": unit}

    @classmethod
    def openvpn(cls, opts: ServiceOptions, target: Target, unit: str, address: str,
                mesh: str) -> Service:
        return cls(opts, unit, address, mesh, target.conf_dir, target.config)

    def _control(self, verb: str, command: str | None) -> None:
        """`systemctl VERB unit`, or the operator's command for it; its exit status shows
        in the health check, not here."""
        if command is None:
            command = f"systemctl {verb} {shlex.quote(self.unit)}"
            code = system.systemctl(verb, self.unit)
        else:
            code = system.shell(command, self.env)
        log.info("%s %s (%s): exit %d", self.unit, verb, command, code)

    def restart(self) -> None:
        self._control("restart", self.opts.restart_cmd)

    def stop(self) -> None:
        """After a first install that cannot start: no unit left running without a config."""
        self._control("stop", self.opts.stop_cmd)

    def disconnect(self, effect: Impact) -> None:
        """Through the management interface: ask the spokes whose ccd file changed to
        reconnect, and cut off the removed or revoked ones. A failure is logged, not fatal:
        the change then applies when the spoke next connects."""
        if not effect.reconnect and not effect.drop:
            return
        try:
            with Management(self.conf_dir / f"{self.mesh}.mgmt") as management:
                for name in effect.reconnect:
                    count = management.disconnect(name)
                    log.info("asked %s to reconnect (%d session(s)) for its new ccd file",
                             name, count)
                for name in effect.drop:
                    count = management.drop(name)
                    log.info("cut off %s (%d session(s)): removed or revoked", name, count)
        except VpcmeshError as exc:
            log.warning("%s; the change applies when the spoke next connects", exc)

    def advance(self, effect: Impact) -> None:
        """Just before a restart for a new tls-crypt-v2 server key: each connected client
        reconnects with its next key now, which the restarted hub takes, rather than with
        the old one and then, 5 s later, the next. A failure is logged: they get there."""
        if not effect.advance:
            return
        try:
            with Management(self.conf_dir / f"{self.mesh}.mgmt") as management:
                count = management.advance_all()
            log.info("asked %d client(s) to reconnect with their next tls-crypt-v2 key", count)
        except VpcmeshError as exc:
            log.warning("%s; clients move to their next key after their 5 s timeout", exc)

    def _process_up(self) -> bool:
        if self.opts.pidfile is not None:
            try:
                pid = int(self.opts.pidfile.read_text().split()[0])
                os.kill(pid, 0)
            except (OSError, ValueError, IndexError):
                return False
            return not _zombie(pid)
        if self.opts.restart_cmd is None:
            return system.unit_active(self.unit)
        return True

    def _address_up(self) -> bool:
        return f"inet {self.address}/" in system.ipv4_addresses()

    def probe(self) -> Health:
        """The health now, once."""
        if self.opts.health_cmd is not None:
            code = system.shell(self.opts.health_cmd, self.env)
            return (Health.UP if code == 0 else Health.WAITING if code == HEALTH_WAITING_EXIT
                    else Health.DOWN)
        if not self._process_up():
            return Health.DOWN
        return Health.UP if self._address_up() else Health.WAITING

    def health(self) -> Health:
        """UP as soon as it is; DOWN once the process has stayed down past a short grace
        (no need to wait out the timeout for a config that cannot start); else, at the
        timeout, what it is then."""
        start = time.monotonic()
        deadline = start + self.opts.health_timeout
        down_since: float | None = None
        while True:
            found = self.probe()
            now = time.monotonic()
            if found is Health.UP or now >= deadline:
                return found
            if found is Health.DOWN:
                down_since = down_since if down_since is not None else now
                if now - start >= _GRACE and now - down_since >= _DOWN_FOR:
                    return found
            else:
                down_since = None
            time.sleep(0.5)


def retire(opts: ServiceOptions, name: str, conf_dir: Path, config: str, mesh: str,
           root: Path) -> None:
    """A unit the new version no longer runs: stopped, and disabled."""
    Service(opts, name, "", mesh, conf_dir, config).stop()
    if root == system.REAL_ROOT and system.has_systemd() and opts.restart_cmd is None:
        system.systemctl("disable", name)


def touches(installer: Installer, target: Target, unit: Service, configs: set[Path]) -> bool:
    """Whether this install changed the unit's own files (or its unit file), not counting
    the configs of the other units that share its folder, nor the CRL, which OpenVPN reads
    again at each handshake, nor the list of CAs (read at start: bundle/effects.ca_list). A
    new drop-in takes effect at the unit's next start (after the daemon-reload), as it does
    for the node's first tunnel: no restart for it."""
    own = unit.conf_dir / unit.config
    return any((unit.conf_dir in p.parents and (p == own or p not in configs)
                and p.name not in (names.CRL, names.CA)) or p.parent == target.unit_dir
               for p in installer.changed)
