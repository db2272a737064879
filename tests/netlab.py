"""A lab of network namespaces running real OpenVPN: one namespace per VM, a bridge as the
internet, and a veth pair inside each namespace carrying the VM's VPC address (the `dummy`
link type is not available on these machines). The one place tests run `ip` and `openvpn`."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

PREFIX = "vpcmt"


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(list(args), capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
    return proc


def missing_requirements() -> list[str]:
    missing = [tool for tool in ("ip", "openvpn", "ping") if shutil.which(tool) is None]
    if os.geteuid() != 0:
        missing.append("root")
    if not Path("/dev/net/tun").exists():
        missing.append("/dev/net/tun")
    return missing


def require() -> None:
    """Skip where the lab cannot run, but fail in CI: a missing part must not pass as a skip."""

    missing = missing_requirements()
    if missing:
        skip_or_fail(f"the network lab needs {', '.join(missing)}")


def skip_or_fail(message: str) -> None:
    """In CI a missing part fails, unless the runner says it has no lab (VPCMESH_NO_LAB:
    why, such as a container without network namespaces); then the test skips by name."""
    import pytest

    reason = os.environ.get("VPCMESH_NO_LAB")
    if reason:
        pytest.skip(f"{message} (VPCMESH_NO_LAB: {reason})")
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@dataclass
class Vm:
    name: str
    netns: str
    public: str
    private: str
    private_prefix: int
    workdir: Path
    pidfile: Path = field(init=False)
    logfile: Path = field(init=False)

    def __post_init__(self) -> None:
        self.pidfile = self.workdir.parent / f"{self.name}.pid"
        self.logfile = self.workdir.parent / f"{self.name}.log"

    def exec(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run("ip", "netns", "exec", self.netns, *args, check=check)

    def ping(self, address: str) -> bool:
        return self.exec("ping", "-c", "1", "-W", "1", address, check=False).returncode == 0

    def route_dev(self, address: str) -> str:
        words = self.exec("ip", "-o", "route", "get", address).stdout.split()
        return words[words.index("dev") + 1]

    def start_openvpn(self, conf: str) -> None:
        # The way openvpn-server@ / openvpn-client@ run it: from the config's directory.
        self.exec("openvpn", "--cd", str(self.workdir), "--config", conf, "--daemon",
                  f"{PREFIX}-{self.name}", "--writepid", str(self.pidfile),
                  "--log", str(self.logfile))

    def stop_openvpn(self) -> None:
        """As `systemctl stop` does: SIGTERM, then wait (up to 5 s) for the process to go, so
        that what starts next finds its port free."""
        if self.pidfile.exists():
            with contextlib.suppress(ProcessLookupError, ValueError):
                pid = int(self.pidfile.read_text().split()[0])
                os.kill(pid, signal.SIGTERM)
                wait_for(lambda: not Path(f"/proc/{pid}").exists(), 5)
            self.pidfile.unlink(missing_ok=True)  # OpenVPN removes its own as it exits

    def log(self) -> str:
        return self.logfile.read_text(errors="replace") if self.logfile.exists() else ""


class Lab:
    """Namespaces and processes are torn down on exit, also when the test fails."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.tag = secrets.token_hex(2)
        self.wan = f"{PREFIX}{self.tag}-wan"
        self.vms: dict[str, Vm] = {}

    def __enter__(self) -> Lab:
        run("ip", "netns", "add", self.wan)
        run("ip", "netns", "exec", self.wan, "ip", "link", "add", "br0", "type", "bridge")
        run("ip", "netns", "exec", self.wan, "ip", "link", "set", "br0", "up")
        return self

    def add_vm(self, name: str, public: str, private: str, prefix: int, workdir: Path) -> Vm:
        index = len(self.vms)
        netns = f"{PREFIX}{self.tag}-{index}"
        vm = Vm(name, netns, public, private, prefix, workdir)
        self.vms[name] = vm
        run("ip", "netns", "add", netns)
        outside = f"w{self.tag}{index}"
        run("ip", "link", "add", "wan0", "netns", netns, "type", "veth", "peer", "name",
            outside, "netns", self.wan)
        run("ip", "netns", "exec", self.wan, "ip", "link", "set", outside, "master", "br0")
        run("ip", "netns", "exec", self.wan, "ip", "link", "set", outside, "up")
        vm.exec("ip", "link", "set", "lo", "up")
        vm.exec("ip", "addr", "add", f"{public}/24", "dev", "wan0")
        vm.exec("ip", "link", "set", "wan0", "up")
        # The VM's NIC in its VPC: a veth pair kept inside the namespace.
        vm.exec("ip", "link", "add", "eth1", "type", "veth", "peer", "name", "vpc1")
        # metric 100, as DHCP gives a cloud VM: a pushed route (metric 0) would shadow it.
        vm.exec("ip", "addr", "add", f"{private}/{prefix}", "dev", "eth1", "metric", "100")
        vm.exec("ip", "link", "set", "vpc1", "up")
        vm.exec("ip", "link", "set", "eth1", "up")
        vm.exec("sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
        return vm

    def __exit__(self, *exc: object) -> None:
        for vm in self.vms.values():
            vm.stop_openvpn()
        time.sleep(0.2)
        for vm in self.vms.values():
            for pid in run("ip", "netns", "pids", vm.netns, check=False).stdout.split():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGKILL)
            run("ip", "netns", "del", vm.netns, check=False)
        run("ip", "netns", "del", self.wan, check=False)


def wait_for(check: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
