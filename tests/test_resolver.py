"""mesh.yaml dns.resolver, for real: unbound on every node, started by `vpcmesh pull` through
the --restart-cmd contract (VPCMESH_UNIT), answering inner names on the spokes and in a
container beside a spoke, and refusing every other name and every outsider."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from bundlekit import git_bundles
from conftest import invoke
from meshlab import bring_up, compile_example, logs, pid, pull, tunnel_addresses
from netlab import PREFIX, Lab, Vm, require, run, skip_or_fail, wait_for

pytestmark = pytest.mark.usefixtures("debian_tun")
RESOLVER = "\ndns:\n  resolver: true\n"
FIRST = "installed version 1 and restarted OpenVPN; (re)started vpcmesh-resolver@example\n"


@contextmanager
def resolv_conf(netns: str, nameserver: str) -> Iterator[None]:
    """`ip netns exec` shows /etc/netns/NS/resolv.conf as the namespace's /etc/resolv.conf:
    the file a VM's (or a container's) resolver reads."""
    folder = Path("/etc/netns") / netns
    folder.mkdir(parents=True)
    try:
        (folder / "resolv.conf").write_text(f"nameserver {nameserver}\noptions timeout:2\n")
        yield
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def container(host: Vm, tag: str) -> Iterator[str]:
    """A namespace behind `host` on a bridge of its own, as Docker's default network puts a
    container: 172.30.0.2, its gateway the host's 172.30.0.1."""
    netns = f"{PREFIX}{tag}-ctr"
    run("ip", "netns", "add", netns)
    try:
        host.exec("ip", "link", "add", "docker0", "type", "veth", "peer", "name", "eth0",
                  "netns", netns)
        host.exec("ip", "addr", "add", "172.30.0.1/24", "dev", "docker0")
        host.exec("ip", "link", "set", "docker0", "up")
        for args in (["link", "set", "lo", "up"], ["addr", "add", "172.30.0.2/24", "dev", "eth0"],
                     ["link", "set", "eth0", "up"], ["route", "add", "default", "via",
                                                     "172.30.0.1"]):
            run("ip", "netns", "exec", netns, "ip", *args)
        yield netns
    finally:
        for found in run("ip", "netns", "pids", netns, check=False).stdout.split():
            run("kill", "-9", found, check=False)
        run("ip", "netns", "del", netns, check=False)


def _dig(vm_or_ns: Vm | str, server: str, name: str, *extra: str) -> str:
    args = ("dig", "+time=2", "+tries=1", f"@{server}", name, *extra)
    if isinstance(vm_or_ns, Vm):
        return vm_or_ns.exec(*args, check=False).stdout
    return run("ip", "netns", "exec", vm_or_ns, *args, check=False).stdout


def _getent(netns: str, name: str) -> str:
    return run("ip", "netns", "exec", netns, "getent", "hosts", name, check=False).stdout


def test_inner_names_resolve_on_spokes_and_in_containers(lab_root: Path, admin_key: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    require()
    if shutil.which("unbound") is None or shutil.which("dig") is None:
        skip_or_fail("the resolver test needs unbound and dig (scripts/install-system-deps.sh)")
    monkeypatch.delenv("VPCMESH_NOW")
    repo = compile_example(lab_root, mesh_extra=RESOLVER)
    remote = git_bundles(repo / "build", lab_root / "published")
    tunnel = tunnel_addresses(repo)
    with Lab(lab_root) as lab:
        hub, _ = bring_up(lab, lab_root, repo, remote, said=FIRST)
        tencent, huawei = lab.vms["tencent-hz-1"], lab.vms["huawei-hz-1"]
        with resolv_conf(tencent.netns, tencent.private), container(tencent, lab.tag) as ctr, \
                resolv_conf(ctr, tencent.private):
            # The hub answers itself, at its tunnel address, for services and node names.
            assert wait_for(lambda: "172.16.0.10" in _dig(tencent, tunnel[hub.name],
                                                          "redis.inner.example.com", "+short"),
                            20), logs(lab)
            # A spoke's own resolver forwards the inner domain to the hub through the tunnel;
            # the VM resolves with getent, as every program on it does.
            assert _getent(tencent.netns, "postgres.inner.example.com").split() == [
                "172.16.0.10", "postgres.inner.example.com"], logs(lab)
            assert _getent(tencent.netns, "huawei-hz-1.inner.example.com").split()[0] == \
                huawei.private
            # A container whose resolv.conf is its host's reaches the same names.
            assert _getent(ctr, "elasticsearch.inner.example.com").split()[0] == "172.18.0.10"
            assert _getent(ctr, "nope.inner.example.com") == ""
            assert "status: NXDOMAIN" in _dig(ctr, tencent.private, "nope.inner.example.com")
            # No recursion for anyone: other names are refused at once, never sent to a hub.
            assert "status: REFUSED" in _dig(ctr, tencent.private, "example.org")
            assert "status: REFUSED" in _dig(tencent, tunnel[hub.name], "example.org")
            # An outsider (a public source address) is refused even an inner name.
            assert "status: REFUSED" in _dig(hub, hub.private, "redis.inner.example.com",
                                             "-b", hub.public)

            # A new service changes the records: the hub restarts its resolver, not OpenVPN;
            # the spoke's forwarder is unchanged and keeps running.
            hub_pid, resolver_pid = pid(hub), _resolver_pid(tencent)
            node = repo / "nodes/tencent-hz-1.yaml"
            node.write_text(node.read_text() + "services:\n  - name: gitea\n    port: 3000\n")
            result = invoke("render", "--repo", repo)
            assert result.exit_code == 0, result.stderr
            git_bundles(repo / "build", remote)
            assert pull(hub, remote, repo) == (
                0, "installed version 2; (re)started vpcmesh-resolver@example\n")
            assert pid(hub) == hub_pid
            assert pull(tencent, remote, repo) == (0, "installed version 2\n")
            assert _resolver_pid(tencent) == resolver_pid
            assert _getent(ctr, "gitea.inner.example.com").split()[0] == tencent.private


def _resolver_pid(vm: Vm) -> int:
    return int(Path(f"{vm.pidfile}.resolver").read_text())
