"""--pidfile (no systemd): a process counts as running until it exits, not until it is
reaped; a container's init may reap seconds late."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from vpcmesh.agent.service import Health, Service, ServiceOptions


def _service(pidfile: Path) -> Service:
    return Service(ServiceOptions(restart_cmd="true", pidfile=pidfile), "openvpn-client@example",
                   "10.255.255.254", "example", pidfile.parent, "example.conf")


def test_an_exited_process_not_yet_reaped_is_down(tmp_path: Path) -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])  # not waited for: a zombie
    pidfile = tmp_path / "openvpn.pid"
    pidfile.write_text(f"{child.pid}\n")
    try:
        os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # exited, left unreaped
        assert _service(pidfile).probe() is Health.DOWN
    finally:
        child.wait()


def test_a_running_process_without_its_address_is_waiting(tmp_path: Path) -> None:
    child = subprocess.Popen(["sleep", "30"])
    pidfile = tmp_path / "openvpn.pid"
    pidfile.write_text(f"{child.pid}\n")
    try:
        assert _service(pidfile).probe() is Health.WAITING
    finally:
        child.kill()
        child.wait()
