"""The running mesh, measured (part of `make bench`; root, openvpn and iperf3 needed).

- Changes: the packets lost between two spokes a change does not involve (ping at 10/s)
  while a spoke joins, a spoke's subnets change and a spoke is revoked, and how long after
  the hub's pull the revoked spoke is gone.
- Convergence: from a publish to every node applied, with each VM's 2-minute timer
  (systemd OnUnitActiveSec=2min, RandomizedDelaySec=30s), on a simulated clock.
- Data plane: iperf3 over the raw link, spoke to hub and spoke to spoke (through the hub),
  with the generated configs; `--variants` also measures the options considered for them.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pyrage import x25519

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "tests")]

from vpcmesh.agent.management import Management  # noqa: E402

from bundlekit import git_bundles  # noqa: E402
from conftest import KEYS, invoke  # noqa: E402
from meshlab import Ping, bring_up, compile_example, debian_tun_mode, lab_folder, pull  # noqa: E402
from netlab import Lab, Vm, missing_requirements, wait_for  # noqa: E402


def missing() -> list[str]:
    return missing_requirements() + ([] if shutil.which("iperf3") else ["iperf3"])


@dataclass
class Mesh:
    lab: Lab
    repo: Path
    remote: Path
    hub: Vm
    spokes: dict[str, Vm]
    root: Path


@contextlib.contextmanager
def mesh() -> Iterator[Mesh]:
    with lab_root() as root:
        repo = compile_example(root)
        remote = git_bundles(repo / "build", root / "published")
        with Lab(root) as lab:
            hub, spokes = bring_up(lab, root, repo, remote)
            yield Mesh(lab, repo, remote, hub, {s.name: s for s in spokes}, root)


@contextlib.contextmanager
def lab_root() -> Iterator[Path]:
    """A lab's folder, with /dev/net/tun as on a VM, real time and the admin key (as the
    tests' fixtures set them), all put back afterwards."""
    saved = {k: os.environ.get(k) for k in ("VPCMESH_NOW", "SOPS_AGE_KEY_FILE")}
    os.environ.pop("VPCMESH_NOW", None)
    os.environ["SOPS_AGE_KEY_FILE"] = str(KEYS / "admin.agekey")
    try:
        with debian_tun_mode(), lab_folder() as root:
            yield root
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _publish(m: Mesh) -> None:
    assert invoke("render", "--repo", m.repo).exit_code == 0
    git_bundles(m.repo / "build", m.remote)


def _connected(m: Mesh) -> set[str]:
    with Management(m.hub.workdir / "etc/openvpn/server/example.mgmt") as management:
        return {c.common_name for c in management.clients()}


def changes() -> dict[str, str]:
    """Lost pings between huawei and ucloud during each change; revoked spoke gone after."""
    out: dict[str, str] = {}
    with mesh() as m:
        huawei, ucloud = m.spokes["huawei-hz-1"], m.spokes["ucloud-hz-1"]
        wait_for(lambda: huawei.ping(ucloud.private), 20)

        ping = Ping(huawei, ucloud.private)
        identity = x25519.Identity.generate()
        key = m.root / "qcloud.agekey"
        key.write_text(f"{identity}\n")
        assert invoke("node", "add", "qcloud-hz-2", "--repo", m.repo, "--cloud", "qcloud",
                      "--region", "cn-hz", "--private-ip", "172.20.0.10", "--subnet",
                      "172.20.0.0/24", "--age-recipient",
                      str(identity.to_public())).exit_code == 0
        _publish(m)
        pull(m.hub, m.remote, m.repo)
        (m.root / "qcloud-hz-2").mkdir(mode=0o755)
        qcloud = m.lab.add_vm("qcloud-hz-2", "203.0.113.120", "172.20.0.10", 24,
                              m.root / "qcloud-hz-2")
        pull(qcloud, m.remote, m.repo, key=key)
        wait_for(lambda: qcloud.ping(huawei.private), 30)
        sent, lost = ping.stop()
        out["join"] = f"{lost} of {sent}"

        ping = Ping(huawei, ucloud.private)
        tencent = m.spokes["tencent-hz-1"]
        tencent.exec("ip", "addr", "add", "192.168.61.10/24", "dev", "vpc1")
        node = m.repo / "nodes/tencent-hz-1.yaml"
        node.write_text(node.read_text().replace("  - 172.17.0.0/24\n",
                                                 "  - 172.17.0.0/24\n  - 192.168.61.0/24\n"))
        _publish(m)
        pull(m.hub, m.remote, m.repo)
        wait_for(lambda: huawei.ping("192.168.61.10"), 30)
        sent, lost = ping.stop()
        out["subnet"] = f"{lost} of {sent}"

        ping = Ping(huawei, ucloud.private)
        assert invoke("pki", "revoke", "tencent-hz-1", "--repo", m.repo).exit_code == 0
        _publish(m)
        started = time.monotonic()  # the hub's pull: fetch, verify, decrypt, install, kill
        pull(m.hub, m.remote, m.repo)
        while "tencent-hz-1" in _connected(m) and time.monotonic() - started < 30:
            time.sleep(0.05)
        gone = time.monotonic() - started
        time.sleep(2)
        sent, lost = ping.stop()
        out["revoke"] = f"{lost} of {sent}"
        out["revoked gone"] = f"{gone:.2f} s from the start of the hub's pull"
    return out


def convergence(nodes: int, seed: int = 7) -> dict[str, float]:
    """Minutes from a publish to each node applied: every timer fires every 2 minutes plus
    up to 30 s at random, at a phase of its own. A new spoke's tunnel comes up at the later
    of its own pull and the hub's (OpenVPN retries within seconds: see the join row)."""
    rng = random.Random(seed)
    firsts = sorted(rng.uniform(0, 120) + rng.uniform(0, 30) for _ in range(nodes))
    hub, new = rng.uniform(0, 120) + rng.uniform(0, 30), rng.uniform(0, 120) + rng.uniform(0, 30)
    return {"median": statistics.median(firsts) / 60, "all": max(firsts) / 60,
            "join": max(hub, new) / 60}


def _iperf(client: Vm, server: Vm, address: str, seconds: int = 5) -> tuple[float, int]:
    proc = subprocess.Popen(["ip", "netns", "exec", server.netns, "iperf3", "-s", "-1",
                             "-B", address], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.3)
        out = client.exec("iperf3", "-c", address, "-t", str(seconds), "-J", check=False).stdout
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        proc.wait()
    report = json.loads(out)
    if "error" in report:
        raise SystemExit(f"iperf3 {client.name} -> {address}: {report['error']}")
    result = report["end"]["sum_sent"]
    return result["bits_per_second"] / 1e9, int(result.get("retransmits", 0))


def data_plane(m: Mesh) -> dict[str, tuple[float, int]]:
    huawei, ucloud = m.spokes["huawei-hz-1"], m.spokes["ucloud-hz-1"]
    for address in (ucloud.private, m.hub.private):
        if not wait_for(lambda a=address: huawei.ping(a), 90):
            raise SystemExit(f"no tunnel from huawei-hz-1 to {address}:\n"
                             f"{m.hub.log()[-1500:]}\n{huawei.log()[-1500:]}")
    return {"raw link": _iperf(huawei, m.hub, m.hub.public),
            "spoke to hub": _iperf(huawei, m.hub, m.hub.private),
            "spoke to spoke": _iperf(huawei, ucloud, ucloud.private)}


VARIANTS = {
    "none of them": [],
    "txqueuelen 1000": ["txqueuelen 1000"],
    "fast-io": ["fast-io"],
    "1 MiB socket buffers": ["sndbuf 1048576", "rcvbuf 1048576"],
    "all three": ["txqueuelen 1000", "fast-io", "sndbuf 1048576", "rcvbuf 1048576"],
}
TUNING = ("txqueuelen", "fast-io", "sndbuf", "rcvbuf")


def _restart_all(m: Mesh, extra: list[str]) -> None:
    for vm in [m.hub, *m.spokes.values()]:
        conf_dir = vm.workdir / "etc/openvpn" / ("server" if vm is m.hub else "client")
        conf = conf_dir / "example.conf"
        lines = [line for line in conf.read_text().splitlines()
                 if not line.startswith(TUNING)]
        conf.write_text("\n".join([*lines, *extra]) + "\n")
        pid = int(vm.pidfile.read_text().split()[0])
        vm.stop_openvpn()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
            time.sleep(0.1)
    for vm in [m.hub, *m.spokes.values()]:
        conf_dir = vm.workdir / "etc/openvpn" / ("server" if vm is m.hub else "client")
        vm.exec("openvpn", "--cd", str(conf_dir), "--config", "example.conf", "--daemon",
                "vpcmt", "--writepid", str(vm.pidfile), "--log-append", str(vm.logfile))


def variants() -> dict[str, dict[str, tuple[float, int]]]:
    out = {}
    with mesh() as m:
        for name, extra in VARIANTS.items():
            _restart_all(m, extra)
            out[name] = data_plane(m)
    return out


def main() -> None:
    # A look at the options, for the README's evidence: `python bench/live.py`.
    for name, figures in variants().items():
        cells = ", ".join(f"{k} {g:.2f} Gbit/s ({r} retr)" for k, (g, r) in figures.items())
        print(f"{name}: {cells}", flush=True)


if __name__ == "__main__":
    main()
