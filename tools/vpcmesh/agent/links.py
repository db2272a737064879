"""A mesh with two or more hubs (README, "Two hubs"): this node's tunnels to the hubs other
than its own OpenVPN, and how a hub restarts without cutting any spoke off.

A hub's server restart sends its spokes away (explicit-exit-notify), and their traffic
moves to their tunnel to another hub. That is lossless only while that other hub carries
them. So before it restarts, a hub checks that every spoke connected to it answers through
each other live hub; afterwards it waits until its own spokes are back. Two hubs pulling
the same version thus restart one after the other: the later one in the mesh's order also
waits a moment and checks again, in case both checked at the same instant."""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from vpcmesh.agent import resolver, system
from vpcmesh.agent.install import Target
from vpcmesh.agent.management import Management
from vpcmesh.agent.service import Health, Service, ServiceOptions, retire
from vpcmesh.bundle.manifest import Body, Unit
from vpcmesh.errors import VpcmeshError

log = logging.getLogger("vpcmesh.agent")

# A hub whose tunnel has stayed down this long is taken for gone (its cloud is out): there
# is no one to wait for, and this hub goes ahead.
GONE_AFTER = 30.0
# The later hub's second look, for two hubs that checked at the same instant.
SETTLE = 3.0
# How long a pull waits for a restarted tunnel to another hub to connect: that hub may be
# down, which is no reason to hold up (or refuse) the version.
LINK_WAIT = 10.0


class Link(Service):
    """A tunnel to one more hub: up when its address is on this node. A tunnel that is not
    connected (its hub may be down) does not stop a version; one whose unit cannot run does."""

    def __init__(self, opts: ServiceOptions, unit: Unit, conf_dir: Path, mesh: str) -> None:
        opts = replace(opts, health_timeout=min(opts.health_timeout, LINK_WAIT))
        super().__init__(opts, unit.name, unit.listen, mesh, conf_dir, _config(unit.name))
        self.peer = unit.peer

    def _process_up(self) -> bool:
        # --pidfile is the node's own OpenVPN's; under --restart-cmd the address tells.
        return self.opts.restart_cmd is not None or system.unit_active(self.unit)


def _config(unit: str) -> str:
    """openvpn-client@NAME reads NAME.conf (Debian's unit)."""
    return f"{unit.partition('@')[2]}.conf"


def links(opts: ServiceOptions, body: Body, conf_dir: Path) -> list[Link]:
    return [Link(opts, u, conf_dir, body.mesh) for u in body.units if u.kind == "openvpn-client"]


def _checksum(data: bytes) -> int:
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    return ~(total + (total >> 16)) & 0xFFFF


def echo(address: str, timeout: float = 1.0) -> bool:
    """One ICMP echo (the agent runs as root): whether `address` answers."""
    ident, payload = os.getpid() & 0xFFFF, os.urandom(8)
    header = struct.pack("!BBHHH", 8, 0, 0, ident, 1)
    packet = struct.pack("!BBHHH", 8, 0, _checksum(header + payload), ident, 1) + payload
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP) as sock:
            sock.settimeout(timeout)
            sock.sendto(packet, (address, 0))
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                reply, (source, _) = sock.recvfrom(1024)
                icmp = reply[(reply[0] & 0x0F) * 4:]
                if source == address and icmp[:1] == b"\0" and icmp[4:6] == packet[4:6] \
                        and icmp[8:16] == payload:
                    return True
    except OSError:
        return False
    return False


def _network_of(address: str) -> ipaddress.IPv4Network | None:
    """The tunnel network `address` (this node's, on one hub) lies in, as the kernel has it."""
    for word in system.ipv4_addresses().split():
        if word.startswith(f"{address}/"):
            return ipaddress.IPv4Interface(word).network
    return None


def spokes_here(body: Body, conf_dir: Path) -> dict[str, str]:
    """The spokes connected to this hub now (two hubs or more), with their tunnel
    addresses here."""
    if len(body.hubs) < 2:
        return {}
    try:
        with Management(conf_dir / f"{body.mesh}.mgmt") as management:
            clients = management.clients()
    except VpcmeshError:
        return {}
    return {c.common_name: c.virtual_address for c in clients
            if c.common_name not in body.hubs and c.virtual_address}


def _carried_by(link: Link, here: ipaddress.IPv4Network, spokes: dict[str, str],
                carried: set[str]) -> list[str]:
    """The spokes not known to answer through `link`'s hub (at their address there). Those
    that answered once are not asked again, and the first that does not answer ends the
    round: with a thousand spokes, a round costs one timeout, not one per spoke."""
    there = _network_of(link.address)
    if there is None:
        return sorted(spokes)
    for name, address in sorted(spokes.items()):
        if name in carried:
            continue
        offset = int(ipaddress.IPv4Address(address)) - int(here.network_address)
        if not echo(str(there.network_address + offset)):
            return sorted(set(spokes) - carried)
        carried.add(name)
    return []


def before_restart(body: Body, conf_dir: Path, own: list[Link], wait: float,
                   clock: Callable[[], float] = time.monotonic) -> None:
    """Before this hub restarts its server: wait until every spoke connected here answers
    through each other hub that is up; raises when `wait` runs out first."""
    if len(body.hubs) < 2:
        return
    here = _network_of(body.vpn_address)
    if here is None:
        return  # the server is not running: no spoke to hand over
    later = body.hubs.index(body.hostname) > 0
    start = clock()
    for attempt in range(2 if later else 1):
        if attempt:
            time.sleep(SETTLE)
        for link in own:
            _wait_for(link, body, conf_dir, here, start, wait, clock)


def _wait_for(link: Link, body: Body, conf_dir: Path, here: ipaddress.IPv4Network,
              start: float, wait: float, clock: Callable[[], float]) -> None:
    down_since: float | None = None
    carried: set[str] = set()
    while True:
        now = clock()
        if link.probe() is not Health.UP:
            down_since = now if down_since is None else down_since
            if now - down_since >= GONE_AFTER:
                log.warning("hub %s has not answered for %gs: restarting without it",
                            link.peer, GONE_AFTER)
                return
            missing = [f"its tunnel to {link.peer}"]
        else:
            down_since = None
            missing = _carried_by(link, here, spokes_here(body, conf_dir), carried)
            if not missing:
                return
        if now - start >= wait:
            raise VpcmeshError.at(str(conf_dir), f"not restarting this hub yet: hub {link.peer}"
                                  f" does not carry {', '.join(missing)} (after {wait:g}s);"
                                  " restarting now would cut them off. Is that hub restarting"
                                  " too? The next pull tries again")
        time.sleep(1.0)


def after_restart(body: Body, conf_dir: Path, before: dict[str, str], wait: float) -> list[str]:
    """After this hub's restart: wait (up to `wait`) until the spokes connected before are
    back, so that the next hub may go; the ones still away, by name."""
    if len(body.hubs) < 2 or not before:
        return []
    deadline = time.monotonic() + wait
    while True:
        away = sorted(set(before) - set(spokes_here(body, conf_dir)))
        if not away or time.monotonic() >= deadline:
            return away
        time.sleep(0.5)



def retire_unit(opts: ServiceOptions, name: str, target: Target, mesh: str, root: Path) -> None:
    """Stop and disable a unit the installed version ran and the new one does not."""
    if name.startswith("openvpn-client@"):
        folder = target.link_dir if target.conf_dir.name == "server" else target.conf_dir
        retire(opts, name, folder, _config(name), mesh, root)
    else:
        resolver.gone(opts, name, target.resolver_dir, mesh, root)
