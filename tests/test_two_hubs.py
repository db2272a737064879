"""Two hubs on two clouds, for real: every node configured by `vpcmesh pull`, each spoke with
a tunnel to each hub. Traffic between the survivors resumes when a hub's cloud is cut off,
a spoke that loses its path to one hub stays reachable both ways, the preferred hub takes
its traffic back without loss, and a change that restarts both hubs is applied one hub at
a time without losing a packet between spokes."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bundlekit import git_bundles
from conftest import KEYS, invoke
from meshlab import (
    RESTART,
    STOP,
    Ping,
    acl_counters,
    compile_example,
    connects,
    listen,
    logs,
    pid,
    pull,
)
from netlab import Lab, Vm, require, wait_for

pytestmark = pytest.mark.usefixtures("debian_tun", "admin_key")

SECOND_HUB = ("role: hub\npublic_address: 203.0.113.20\ntunnel_network: 10.9.0.0/24\n")
# Seconds the survivors may take to reach each other again: the 4 s failover timeout plus
# a wide margin for a loaded CI machine. `make bench` measures the real figure.
RECOVERY_BOUND = 20.0


@dataclass
class TwoHubs:
    lab: Lab
    repo: Path
    remote: Path
    first: Vm  # aliyun-hz-1: vpn.network, preferred
    second: Vm  # tencent-hz-1: its own tunnel network
    a: Vm  # huawei-hz-1
    b: Vm  # ucloud-hz-1
    firewall: bool = False  # pulls apply the forwarding rules and service ACLs

    def log(self) -> str:
        extra = "\n".join(f"--- {p.name} ---\n{p.read_text(errors='replace')[-2000:]}"
                          for p in sorted(self.lab.root.glob("*.log.*")))
        return logs(self.lab) + "\n" + extra


def _pull(vm: Vm, hubs: TwoHubs, timeout: float = 30) -> tuple[int, str]:
    return pull(vm, hubs.remote, hubs.repo, timeout=timeout,
                extra=("--firewall",) if hubs.firewall else ())


def _up(lab_root: Path, monkeypatch: pytest.MonkeyPatch, vpn_extra: str = "",
        mesh_extra: str = "", edits: tuple[tuple[str, str, str], ...] = ()) -> Iterator[TwoHubs]:
    require()
    monkeypatch.delenv("VPCMESH_NOW")
    repo = compile_example(lab_root, vpn_extra=vpn_extra, mesh_extra=mesh_extra, edits=edits,
                           node_extra={"tencent-hz-1": SECOND_HUB})
    remote = git_bundles(repo / "build", lab_root / "published")
    with Lab(lab_root) as lab:
        vms = {}
        for host, private, public in (("aliyun-hz-1", "172.16.0.10", "203.0.113.10"),
                                      ("tencent-hz-1", "172.17.0.10", "203.0.113.20"),
                                      ("huawei-hz-1", "172.18.0.10", "203.0.113.102"),
                                      ("ucloud-hz-1", "172.19.0.10", "203.0.113.103")):
            root = lab_root / host
            root.mkdir(mode=0o755)
            vms[host] = lab.add_vm(host, public, private, 24, root)
        hubs = TwoHubs(lab, repo, remote, vms["aliyun-hz-1"], vms["tencent-hz-1"],
                       vms["huawei-hz-1"], vms["ucloud-hz-1"], firewall=bool(mesh_extra))
        for vm in vms.values():
            code, err = _pull(vm, hubs)
            assert code == 0, f"{vm.name}: {err}\n{hubs.log()}"
        yield hubs


@pytest.fixture
def two_hubs(lab_root: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TwoHubs]:
    yield from _up(lab_root, monkeypatch)


def _reaches(vm: Vm, address: str, timeout: float = 30) -> bool:
    return wait_for(lambda: vm.ping(address), timeout)


def _all_pairs(h: TwoHubs) -> list[str]:
    nodes = [h.first, h.second, h.a, h.b]
    return [f"{x.name} -> {y.name}" for x in nodes for y in nodes
            if x is not y and not _reaches(x, y.private)]


def _recovery(src: Vm, dst: Vm, cut: float) -> float:
    """Seconds from `cut` until `dst` answers `src` again (pinging every 0.1 s)."""
    deadline = cut + 60
    while time.monotonic() < deadline:
        if src.exec("ping", "-c", "1", "-W", "0.2", dst.private, check=False).returncode == 0:
            return time.monotonic() - cut
        time.sleep(0.1)
    return float("inf")


def test_every_node_reaches_every_other_through_the_preferred_hub(two_hubs: TwoHubs) -> None:
    h = two_hubs
    assert _all_pairs(h) == [], h.log()
    # Spokes prefer the first hub (metric 100 against 200); each hub reaches the other's VPC.
    assert h.a.route_dev(h.b.private) == "tun-vpcm0"
    assert h.b.route_dev(h.second.private) == "tun-vpcm0"
    assert h.a.exec("ip", "-o", "link", "show", "tun-vpcm1").returncode == 0


def test_with_tls_crypt_v2_each_tunnel_has_its_own_key(lab_root: Path, admin_key: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    # Every node holds a client key per hub, the hubs one for each other too.
    up = _up(lab_root, monkeypatch, vpn_extra="  tls_crypt_v2: true\n")
    h = next(up)
    try:
        assert _all_pairs(h) == [], h.log()
        links = h.a.workdir / "etc/openvpn/client"
        assert sorted(p.name for p in links.glob("tc2-*")) == ["tc2-aliyun-hz-1.key",
                                                               "tc2-tencent-hz-1.key"]
        hub_links = h.second.workdir / "etc/openvpn/client"
        assert sorted(p.name for p in hub_links.glob("tc2-*")) == ["tc2-aliyun-hz-1.key",
                                                                   "tc2-server.key"]
    finally:
        up.close()


def test_service_acls_hold_through_either_hub(lab_root: Path, admin_key: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    # Deny by default; elasticsearch on huawei-hz-1 for ucloud-hz-1 alone.
    up = _up(lab_root, monkeypatch, mesh_extra="acl:\n  default: deny\n", edits=((
        "nodes/huawei-hz-1.yaml", "{name: elasticsearch, port: 9200}",
        "{name: elasticsearch, port: 9200, allow: ['node:ucloud-hz-1']}"),))
    h = next(up)
    try:
        listen(h.a, 9200, 2222)
        assert wait_for(lambda: connects(h.b, h.a.private, 9200), 20), h.log()
        assert not connects(h.second, h.a.private, 9200)  # a hub is not on the list
        assert not connects(h.b, h.a.private, 2222)
        # ucloud-hz-1 loses its path to the first hub: through the second, the same rules.
        h.b.exec("ip", "route", "add", "blackhole", f"{h.first.public}/32")
        assert wait_for(lambda: h.b.route_dev(h.a.private) == "tun-vpcm1", 15), h.log()
        assert wait_for(lambda: connects(h.b, h.a.private, 9200), 20), h.log()
        assert not connects(h.b, h.a.private, 2222)
        assert acl_counters(h.a)["elasticsearch on huawei-hz-1: allowed"] >= 2
    finally:
        up.close()


def test_a_spoke_that_loses_one_hub_is_reached_through_the_other(two_hubs: TwoHubs) -> None:
    h = two_hubs
    assert _reaches(h.a, h.b.private), h.log()
    # Only huawei-hz-1's path to the first hub breaks; both hubs stay up.
    h.a.exec("ip", "route", "add", "blackhole", f"{h.first.public}/32")
    assert wait_for(lambda: h.a.route_dev(h.b.private) == "tun-vpcm1", 15), h.log()
    # Everyone reaches it (the first hub hands its packets to the second) and it everyone.
    failed = [f"{x.name} <-> {h.a.name}" for x in (h.b, h.first, h.second)
              if not (_reaches(x, h.a.private) and _reaches(h.a, x.private))]
    assert failed == [], h.log()
    assert h.b.route_dev(h.a.private) == "tun-vpcm0"  # b still goes through the first hub


def test_the_survivors_reach_each_other_when_a_hub_is_cut_off_and_it_takes_back_without_loss(
        two_hubs: TwoHubs) -> None:
    h = two_hubs
    assert _reaches(h.a, h.b.private), h.log()
    cut = time.monotonic()
    h.first.exec("ip", "link", "set", "wan0", "down")  # its cloud is cut off
    took = max(_recovery(h.a, h.b, cut), _recovery(h.b, h.a, cut))
    assert took < RECOVERY_BOUND, f"{took:.1f}s\n{h.log()}"
    assert _reaches(h.a, h.second.private) and _reaches(h.b, h.second.private), h.log()
    # The hub comes back: the spokes reconnect to it and their traffic moves back to it,
    # while a ping runs both ways. The hub routes to a spoke as soon as it accepts it, a
    # round trip before the spoke has its data keys: a ping (10/s) on its way to it then is
    # lost (seen under load; README, "Two hubs"), more than one is not.
    forth, back = Ping(h.a, h.b.private), Ping(h.b, h.a.private)
    h.first.exec("ip", "link", "set", "wan0", "up")
    returned = wait_for(lambda: h.a.route_dev(h.b.private) == "tun-vpcm0"
                        and h.b.route_dev(h.a.private) == "tun-vpcm0", 60)
    time.sleep(3)
    lost = forth.stop()[1], back.stop()[1]
    assert returned, h.log()
    assert max(lost) <= 1, f"{h.a.name}: {forth.missing()}; {h.b.name}: {back.missing()}\n{h.log()}"


def change_both_hubs(h: TwoHubs) -> tuple[tuple[int, int], list[str]]:
    """Publish a change to both hubs' server config, then run both hubs' pulls at the same
    moment (their timers fired together) while two spokes ping each other both ways: the
    packets lost each way, and what each pull said (it must succeed)."""
    path = h.repo / "mesh/mesh.yaml"
    text = path.read_text()
    clients = int(text.split("max_clients: ")[1].split()[0])
    path.write_text(text.replace(f"max_clients: {clients}", f"max_clients: {clients + 1}"))
    result = invoke("render", "--repo", h.repo)
    assert result.exit_code == 0, result.stderr
    git_bundles(h.repo / "build", h.remote)
    forth, back = Ping(h.a, h.b.private), Ping(h.b, h.a.private)
    time.sleep(1)
    procs = [_background_pull(vm, h) for vm in (h.second, h.first)]
    outputs = [p.communicate(timeout=400) for p in procs]
    time.sleep(2)
    lost = forth.stop()[1], back.stop()[1]
    assert [p.returncode for p in procs] == [0, 0], f"{outputs}\n{h.log()}"
    return lost, [out[1] for out in outputs]


def test_a_change_that_restarts_both_hubs_goes_one_hub_at_a_time_without_loss(
        two_hubs: TwoHubs) -> None:
    h = two_hubs
    assert _reaches(h.a, h.b.private) and _reaches(h.b, h.a.private), h.log()
    pids = {vm.name: pid(vm) for vm in (h.first, h.second, h.a, h.b)}
    lost, said = change_both_hubs(h)
    assert pid(h.first) != pids[h.first.name] and pid(h.second) != pids[h.second.name]
    assert (pid(h.a), pid(h.b)) == (pids[h.a.name], pids[h.b.name])  # spokes untouched
    assert lost == (0, 0), f"{said}\n{h.log()}"


def _background_pull(vm: Vm, h: TwoHubs, trust: Path | None = None
                     ) -> subprocess.Popen[str]:
    script, stop = vm.workdir / "restart.sh", vm.workdir / "stop.sh"
    script.write_text(RESTART.format(pid=vm.pidfile, log=vm.logfile))
    stop.write_text(STOP.format(pid=vm.pidfile, log=vm.logfile))
    return subprocess.Popen(
        ["ip", "netns", "exec", vm.netns, sys.executable, "-m", "vpcmesh", "pull", "--once",
         "--hostname", vm.name, "--source", str(h.remote), "--age-key",
         str(KEYS / f"{vm.name}.agekey"), "--trust-key", str(trust or h.repo / "mesh/signing.pub"),
         "--root", str(vm.workdir), "--restart-cmd", f"sh {script}", "--stop-cmd",
         f"sh {stop}", "--pidfile", str(vm.pidfile), "--health-timeout", "30"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
