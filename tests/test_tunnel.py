"""The runbook's connectivity matrix over real OpenVPN tunnels between network namespaces,
each node configured only from its own bundle and its own age key."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509

from vpcmesh.pki.x509 import ALGORITHMS, algorithm_of

from bundlekit import bump, git_bundles, resign, signing_key
from conftest import invoke
from meshlab import (
    assert_matrix,
    logs,
    pid,
    pull,
    running_mesh,
    tunnel_addresses,
)
from netlab import Vm, wait_for

pytestmark = pytest.mark.usefixtures("debian_tun")


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_runbook_ping_matrix(lab_root: Path, admin_key: Path, algorithm: str,
                             monkeypatch: pytest.MonkeyPatch) -> None:
    with running_mesh(lab_root, monkeypatch, algorithm) as mesh:
        for cert in [mesh.repo / "mesh/pki/ca.crt", *(mesh.repo / "mesh/pki/issued").glob("*")]:
            public = x509.load_pem_x509_certificate(cert.read_bytes()).public_key()
            assert algorithm_of(public) == algorithm
        assert_matrix(mesh.lab, mesh.hub, mesh.spokes, tunnel_addresses(mesh.repo))


def test_a_new_subnet_reaches_every_node_and_restarts_nothing(
        lab_root: Path, admin_key: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with running_mesh(lab_root, monkeypatch) as mesh:
        lab, repo, hub, spokes = mesh.lab, mesh.repo, mesh.hub, mesh.spokes
        tencent = lab.vms["tencent-hz-1"]
        tencent.exec("ip", "addr", "add", "192.168.60.10/24", "dev", "vpc1")
        node = repo / "nodes/tencent-hz-1.yaml"
        node.write_text(node.read_text().replace("  - 172.17.0.0/24\n",
                                                 "  - 172.17.0.0/24\n  - 192.168.60.0/24\n"))
        assert invoke("render", "--repo", repo).exit_code == 0
        git_bundles(repo / "build", mesh.remote)
        before = {vm.name: pid(vm) for vm in lab.vms.values()}
        results = {vm.name: pull(vm, mesh.remote, repo) for vm in [hub, *spokes]}
        # vpn.address_space covers it: only the hub's ccd file for tencent changes, and the
        # hub asks tencent to reconnect (so OpenVPN reads its new iroute); tencent's own
        # forwarding rules change in place; nothing restarts.
        assert results == {hub.name: (0, "installed version 2 without a restart; asked"
                                         " tencent-hz-1 to reconnect\n"),
                           **{s.name: (0, "installed version 2\n" if s is tencent else "")
                              for s in spokes}}
        after = {vm.name: pid(vm) for vm in lab.vms.values()}
        assert after == before
        others = [s for s in spokes if s is not tencent]
        reached = [vm.name for vm in [hub, *others]
                   if wait_for(lambda vm=vm: vm.ping("192.168.60.10"), 40)]
        assert reached == [hub.name, *[s.name for s in others]], logs(lab)
        assert_matrix(lab, hub, spokes, tunnel_addresses(repo))


def bundle_files(vm: Vm) -> dict[Path, bytes]:
    """What the agent installed; not what spokes reported as they came and went."""
    return {p: p.read_bytes() for p in (vm.workdir / "etc").rglob("*")
            if p.is_file() and p.parent.name != "vpcmesh-peers"}


def test_a_config_openvpn_cannot_start_is_rolled_back(lab_root: Path, admin_key: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    with running_mesh(lab_root, monkeypatch) as mesh:
        hub = mesh.hub
        installed = bundle_files(hub)
        bundle = mesh.repo / "build" / hub.name
        conf = bundle / "openvpn/example.conf"
        resign(bundle, signing_key(mesh.repo), bump,
               {"openvpn/example.conf": conf.read_bytes() + b"no-such-option yes\n"})
        git_bundles(mesh.repo / "build", mesh.remote)
        code, stderr = pull(hub, mesh.remote, mesh.repo, timeout=5)
        assert code == 1 and stderr.startswith(
            f"{hub.workdir}/etc/openvpn/server: version 2 did not start within 5s; restored"
            " version 1 and restarted it; trying it again after "), stderr
        assert bundle_files(hub) == installed
        assert wait_for(lambda: mesh.spokes[0].ping(hub.private), 40), logs(mesh.lab)
