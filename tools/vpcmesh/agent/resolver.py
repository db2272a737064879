"""vpcmesh's resolver (mesh.yaml dns.resolver): one more unit the agent restarts and checks,
through the same --restart-cmd/--health-cmd contract as OpenVPN."""

from __future__ import annotations

import os
import shutil
import socket
import struct
from pathlib import Path

from vpcmesh.agent import system
from vpcmesh.agent.service import Health, Service, ServiceOptions, retire
from vpcmesh.bundle import names
from vpcmesh.bundle.manifest import Unit
from vpcmesh.errors import VpcmeshError

# A name outside the inner domain: the resolver refuses it at once, without asking a hub, so
# the answer says that it runs even while no hub is reachable.
PROBE_NAME = "vpcmesh-health.invalid"
SBIN = "/usr/sbin"  # where Debian and RHEL put unbound, whatever the agent's PATH


def answers(address: str, timeout: float = 1.0) -> bool:
    """True when a DNS server at address:53 replies (any answer) to a query for PROBE_NAME."""
    query_id = int.from_bytes(os.urandom(2), "big")
    question = b"".join(bytes([len(p)]) + p.encode() for p in PROBE_NAME.split(".")) + b"\0"
    packet = struct.pack(">HHHHHH", query_id, 0x0100, 1, 0, 0, 0) + question + \
        struct.pack(">HH", 1, 1)  # A, IN
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(timeout)
            sock.sendto(packet, (address, 53))
            reply = sock.recv(512)
    except OSError:
        return False
    return len(reply) >= 12 and reply[:2] == packet[:2] and bool(reply[2] & 0x80)


class Resolver(Service):
    """Up when its unit runs and it answers at its listen address. The operator's
    --health-cmd, when given, decides instead (with VPCMESH_UNIT naming this unit)."""

    def __init__(self, opts: ServiceOptions, unit: Unit, conf_dir: Path, mesh: str) -> None:
        super().__init__(opts, unit.name, unit.listen, mesh, conf_dir, names.RESOLVER_CONFIG)

    def _process_up(self) -> bool:
        # --pidfile is OpenVPN's; under --restart-cmd, the answer alone tells.
        return self.opts.restart_cmd is not None or system.unit_active(self.unit)

    def probe(self) -> Health:
        if self.opts.health_cmd is not None:
            return super().probe()
        return Health.UP if self._process_up() and answers(self.address) else Health.DOWN


def resolvers(opts: ServiceOptions, units: tuple[Unit, ...], conf_dir: Path,
              mesh: str) -> list[Resolver]:
    return [Resolver(opts, u, conf_dir, mesh) for u in units if u.kind == "resolver"]


def require_programs(units: list[Resolver], opts: ServiceOptions, root: Path) -> None:
    """Before anything is installed: a bundle that runs the resolver on a node without
    unbound would only fail its health check; say what to install instead. (Under the
    operator's --restart-cmd, that command decides how it runs.)"""
    if not units or opts.restart_cmd is not None or root != system.REAL_ROOT:
        return
    if shutil.which("unbound", path=os.pathsep.join((os.environ.get("PATH", ""), SBIN))) is None:
        raise VpcmeshError.at(str(root / names.resolver_dir(units[0].mesh)), "this bundle runs"
                              " vpcmesh's resolver (mesh.yaml dns.resolver), but unbound is"
                              " not installed: apt install unbound (or dnf install unbound),"
                              " then pull again")


def gone(opts: ServiceOptions, name: str, conf_dir: Path, mesh: str, root: Path) -> None:
    """A unit the new version no longer runs (dns.resolver turned off): stopped, disabled."""
    retire(opts, name, conf_dir, names.RESOLVER_CONFIG, mesh, root)
