"""Rotations on a running mesh, with real OpenVPN (tls-crypt-v2, as `vpcmesh init` makes
meshes): the bundle-signing key and the CA's three steps, each published and pulled the way
the timers would, while two spokes talk through the hub.

What each VM trusts for signatures is its own copy of signing.pub (as `agent install` leaves
it in /etc/vpcmesh), so following the key chain is what lets it take the next bundle."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bundlekit import git_bundles
from conftest import invoke
from meshlab import Ping, Running, bring_up, compile_example, logs, pid, pull
from netlab import Lab, Vm, require, wait_for

pytestmark = pytest.mark.usefixtures("debian_tun")


def _publish(mesh: Running, *command: str) -> str:
    result = invoke(*command, "--repo", mesh.repo)
    assert result.exit_code == 0, result.stderr
    git_bundles(mesh.repo / "build", mesh.remote)
    return result.stderr


def _pull(mesh: Running, vm: Vm) -> str:
    code, stderr = pull(vm, mesh.remote, mesh.repo, trust=vm.workdir / "signing.pub")
    assert code == 0, f"{vm.name}: {stderr}\n{logs(mesh.lab)}"
    return stderr


def _pids(mesh: Running) -> dict[str, int]:
    return {vm.name: pid(vm) for vm in [mesh.hub, *mesh.spokes]}


def _lossless(ping: Ping, step: str, mesh: Running) -> None:
    sent, lost = ping.stop()
    assert sent > 0 and lost == 0, f"{step}: {lost} of {sent} pings lost\n{logs(mesh.lab)}"


def _reach(mesh: Running, what: str) -> None:
    pairs = [(a, b) for a in [mesh.hub, *mesh.spokes] for b in [mesh.hub, *mesh.spokes]
             if a is not b]
    failed = [f"{a.name} -> {b.name}" for a, b in pairs
              if not wait_for(lambda a=a, b=b: a.ping(b.private), 20)]
    assert failed == [], f"{what}: {failed}\n{logs(mesh.lab)}"


def test_rotating_the_signing_key_and_the_ca_on_a_running_mesh(
        lab_root: Path, admin_key: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    require()
    monkeypatch.delenv("VPCMESH_NOW")  # real certificates for a real OpenVPN clock
    repo = compile_example(lab_root, vpn_extra="  tls_crypt_v2: true\n")
    remote = git_bundles(repo / "build", lab_root / "published")
    with Lab(lab_root) as lab:
        hub, spokes = bring_up(lab, lab_root, repo, remote)
        mesh = Running(lab, repo, remote, hub, spokes)
        for vm in lab.vms.values():
            shutil.copyfile(repo / "mesh/signing.pub", vm.workdir / "signing.pub")
        huawei, ucloud = lab.vms["huawei-hz-1"], lab.vms["ucloud-hz-1"]
        _reach(mesh, "before")
        started = _pids(mesh)

        # 1. The signing key: every VM follows the chain; nothing restarts.
        ping = Ping(huawei, ucloud.private)
        _publish(mesh, "pki", "rotate", "signing-key")
        for vm in [hub, *spokes]:
            assert "trusting signing key(s)" in _pull(mesh, vm)
            assert (vm.workdir / "signing.pub").read_bytes() == (
                repo / "mesh/signing.pub").read_bytes()
        _lossless(ping, "the signing key rotates", mesh)

        # 2. Introduce a new CA: both trusted, both CRLs; nothing restarts.
        ping = Ping(huawei, ucloud.private)
        _publish(mesh, "pki", "rotate", "ca")
        for vm in [*spokes, hub]:
            assert "without a restart" in _pull(mesh, vm)
        _lossless(ping, "a new CA is introduced", mesh)
        assert _pids(mesh) == started

        # 3. Move: a new certificate for every node. The worst order: a spoke first, while
        # the hub runs its old certificate and trusts only the old CA (it has read neither
        # ca.crt since); then the hub; then the other spokes, still on the old CA.
        ping = Ping(huawei, ucloud.private)
        saved = {rel: (ucloud.workdir / "etc/openvpn/client" / rel).read_bytes()
                 for rel in ("ucloud-hz-1.crt", "ucloud-hz-1.key", "tc2-aliyun-hz-1.key")}
        _publish(mesh, "pki", "rotate", "ca", "--no-wait")
        first, *rest = spokes
        assert "restarted OpenVPN" in _pull(mesh, first)
        assert wait_for(lambda: first.ping(hub.private), 20), logs(lab)  # old hub, new spoke
        assert "restarted OpenVPN" in _pull(mesh, hub)
        for vm in spokes:  # old spokes, new hub; then the rest move too
            assert wait_for(lambda vm=vm: vm.ping(hub.private), 30), logs(lab)
        for vm in rest:
            assert "restarted OpenVPN" in _pull(mesh, vm)
        _reach(mesh, "after the move")
        moved = _pids(mesh)
        assert all(moved[h] != started[h] for h in moved)  # each restarted once
        sent, lost = ping.stop()
        print(f"the move on one hub: {lost} of {sent} pings lost (the hub restarts)")

        # 4. Retire the old CA: the hub's server takes the new CA alone (a restart: OpenVPN
        # reads its CA file at start); the spokes restart nothing.
        ping = Ping(huawei, ucloud.private)
        _publish(mesh, "pki", "rotate", "ca", "--no-wait")
        assert "restarted OpenVPN" in _pull(mesh, hub)
        for vm in spokes:
            assert "without a restart" in _pull(mesh, vm)
        _reach(mesh, "after the retirement")
        sent, lost = ping.stop()
        print(f"the retirement on one hub: {lost} of {sent} pings lost (the hub restarts)")
        retired = _pids(mesh)
        assert all(retired[vm.name] == moved[vm.name] for vm in spokes)

        # A certificate of the old CA no longer gets in.
        conf = ucloud.workdir / "etc/openvpn/client"
        ucloud.exec("sh", str(ucloud.workdir / "stop.sh"), check=False)
        for rel, data in saved.items():
            (conf / rel).write_bytes(data)
        ucloud.exec("sh", "-c", f"cd {conf} && openvpn --config example.conf --daemon vpcmt"
                    f" --writepid {ucloud.pidfile} --log-append {ucloud.logfile}")
        assert wait_for(lambda: "unable to get certificate CRL" in hub.log()
                        or "certificate verify failed" in hub.log(), 30), logs(lab)
        assert not ucloud.ping(hub.private)
