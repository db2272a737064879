"""Restarting OpenVPN and checking that it came back with its tunnel address."""

from __future__ import annotations

import logging
import os
import shlex
import time
from dataclasses import dataclass
from pathlib import Path

from vpcmesh.agent import system
from vpcmesh.agent.install import Target
from vpcmesh.bundle.manifest import Manifest

log = logging.getLogger("vpcmesh.agent")


@dataclass(frozen=True)
class ServiceOptions:
    restart_cmd: str | None = None
    health_cmd: str | None = None
    pidfile: Path | None = None
    health_timeout: float = 30.0


class Service:
    def __init__(self, opts: ServiceOptions, target: Target, manifest: Manifest) -> None:
        self.opts, self.target = opts, target
        self.unit = manifest.unit
        self.address = manifest.body.vpn_address
        self.env = {"VPCMESH_CONF_DIR": str(target.conf_dir), "VPCMESH_CONFIG": target.config,
                    "VPCMESH_MESH": manifest.body.mesh, "VPCMESH_UNIT": self.unit}

    def restart(self) -> None:
        if self.opts.restart_cmd is not None:
            code = system.shell(self.opts.restart_cmd, self.env)
            log.info("restarted OpenVPN (%s): exit %d", self.opts.restart_cmd, code)
            return
        code = system.systemctl("restart", self.unit)
        log.info("restarted OpenVPN (systemctl restart %s): exit %d", shlex.quote(self.unit),
                 code)

    def _process_up(self) -> bool:
        if self.opts.pidfile is not None:
            try:
                os.kill(int(self.opts.pidfile.read_text().split()[0]), 0)
            except (OSError, ValueError, IndexError):
                return False
            return True
        if self.opts.restart_cmd is None:
            return system.unit_active(self.unit)
        return True

    def _address_up(self) -> bool:
        return f"inet {self.address}/" in system.ipv4_addresses()

    def healthy(self) -> bool:
        deadline = time.monotonic() + self.opts.health_timeout
        while True:
            if self.opts.health_cmd is not None:
                ok = system.shell(self.opts.health_cmd, self.env) == 0
            else:
                ok = self._process_up() and self._address_up()
            if ok or time.monotonic() >= deadline:
                return ok
            time.sleep(0.5)
