"""The bundle's forwarding rules beside Docker: with Docker's FORWARD policy of DROP (made
here by real iptables-nft, as Docker makes it), traffic between two VPCs through the mesh
is dropped until the agent puts the rules first in DOCKER-USER; then it passes, a second
pull changes nothing, iptables still reads the chain, and uninstall removes only ours."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from vpcmesh.agent.firewall import rules_of
from vpcmesh.errors import VpcmeshError

from conftest import EXAMPLE
from meshlab import logs, pull, running_mesh
from netlab import PREFIX, Vm, run, wait_for

pytestmark = pytest.mark.usefixtures("debian_tun")
DOCKER = ["iptables -N DOCKER-USER", "iptables -P FORWARD DROP",
          "iptables -A FORWARD -j DOCKER-USER", "iptables -A DOCKER-USER -j RETURN"]


@contextmanager
def vpc_host(vm: Vm, address: str) -> Iterator[str]:
    """Another VM in `vm`'s VPC, without OpenVPN: its route to the other VPCs points at the
    mesh VM, as the cloud's route table does (README: Cloud side)."""
    netns = f"{PREFIX}{vm.netns.removeprefix(PREFIX)}-h"
    run("ip", "netns", "add", netns)
    try:
        vm.exec("ip", "link", "set", "vpc1", "netns", netns)
        for args in (["ip", "link", "set", "lo", "up"], ["ip", "link", "set", "vpc1", "up"],
                     ["ip", "addr", "add", f"{address}/24", "dev", "vpc1"],
                     ["ip", "route", "add", "default", "via", vm.private]):
            run("ip", "netns", "exec", netns, *args)
        yield netns
    finally:
        run("ip", "netns", "del", netns, check=False)


def _ping(netns: str, address: str) -> bool:
    return run("ip", "netns", "exec", netns, "ping", "-c", "1", "-W", "1", address,
               check=False).returncode == 0


def _docker_user(vm: Vm) -> list[str]:
    return vm.exec("iptables", "-S", "DOCKER-USER").stdout.splitlines()


def test_forwarding_rules_go_first_in_docker_user_and_leave_with_the_agent(
        lab_root: Path, admin_key: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if shutil.which("iptables") is None:
        pytest.skip("needs iptables (make system-deps installs it): Docker's own tool")
    with running_mesh(lab_root, monkeypatch) as mesh:
        hub, huawei = mesh.hub, mesh.lab.vms["huawei-hz-1"]
        with vpc_host(hub, "172.16.0.20") as left, vpc_host(huawei, "172.18.0.20") as right:
            assert wait_for(lambda: _ping(left, "172.18.0.20"), 20), logs(mesh.lab)
            for vm in (hub, huawei):  # Docker starts on both VMs
                for command in DOCKER:
                    vm.exec(*command.split())
            assert not wait_for(lambda: _ping(left, "172.18.0.20"), 3)
            for vm in (hub, huawei):
                code, stderr = pull(vm, mesh.remote, mesh.repo, extra=("--firewall",))
                assert (code, stderr) == (0, "forwarding rules put first in ip filter"
                                             " DOCKER-USER\n"), stderr
            assert wait_for(lambda: _ping(left, "172.18.0.20"), 10), logs(mesh.lab)
            assert wait_for(lambda: _ping(right, "172.16.0.20"), 10)
            ours = '-m comment --comment "vpcmesh example '
            rules = _docker_user(huawei)
            assert [r.split(ours)[0] for r in rules] == [
                "-N DOCKER-USER",
                "-A DOCKER-USER -d 172.18.0.0/24 -i tun+ ",
                "-A DOCKER-USER -s 172.18.0.0/24 -o tun+ ",
                "-A DOCKER-USER -d 192.168.50.0/24 -i tun+ ",
                "-A DOCKER-USER -s 192.168.50.0/24 -o tun+ ",
                "-A DOCKER-USER -j RETURN"]
            assert any("-i tun+ -o tun+" in r for r in _docker_user(hub))  # spoke to spoke
            # The next pull finds them in place: nothing changes, nothing is said.
            assert pull(huawei, mesh.remote, mesh.repo, extra=("--firewall",)) == (0, "")
            assert _docker_user(huawei) == rules
            # Leaving the mesh takes them away, and only them.
            done = huawei.exec(sys.executable, "-m", "vpcmesh", "agent", "uninstall",
                               "--root", str(huawei.workdir), "--firewall", "--stop-cmd",
                               f"sh {huawei.workdir / 'stop.sh'}", "--metrics", "")
            assert "4 forwarding rule(s) of example (nftables)" in done.stderr, done.stderr
            assert _docker_user(huawei) == ["-N DOCKER-USER", "-A DOCKER-USER -j RETURN"]


def test_without_docker_nothing_is_added(lab_root: Path, admin_key: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    with running_mesh(lab_root, monkeypatch) as mesh:
        tencent = mesh.lab.vms["tencent-hz-1"]
        assert pull(tencent, mesh.remote, mesh.repo, extra=("--firewall",)) == (0, "")
        assert "vpcmesh" not in tencent.exec("nft", "list", "ruleset").stdout


def test_a_rule_vpcmesh_does_not_write_is_refused() -> None:
    text = (EXAMPLE.parent.parent / "tools/vpcmesh/rendering/templates/firewall.nft.j2")
    assert text.exists()
    assert rules_of('# a comment\niifname "tun*" ip daddr 10.0.0.0/8 counter accept\n', "f") \
        == ['iifname "tun*" ip daddr 10.0.0.0/8 counter accept']
    for bad in ("flush ruleset", 'iifname "tun*" counter accept; flush ruleset',
                "ip daddr 10.0.0.0/8 counter drop", 'iifname "eth0" counter accept',
                "counter accept", "ip saddr 0.0.0.0/0 counter accept"):
        with pytest.raises(VpcmeshError, match="not a forwarding rule vpcmesh writes"):
            rules_of(bad + "\n", "firewall-example.nft")

