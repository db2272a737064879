"""The cut-over from the runbook's manual setup to vpcmesh, for real: an easy-rsa PKI, the
runbook's server.conf and client.conf running in network namespaces, `vpcmesh import`, and
the hub moved in place. The old client.conf reconnects to it unchanged and passes the
runbook's matrix;
each VM then moves to its vpcmesh config by `vpcmesh pull` with the certificate it had; the
revoked client stays out; and when a pull request ends compat, every spoke follows the hub
from tls-auth to tls-crypt with one reconnect, before it has even pulled."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
from cryptography import x509

from bundlekit import git_bundles
from conftest import invoke
from meshlab import assert_matrix, logs, pull, tunnel_addresses
from netlab import Lab, Vm, require, wait_for
from runbook import REVOKED, import_args

pytestmark = pytest.mark.usefixtures("debian_tun")
ADDRESSES = {  # name: (public, private/prefix), as the mapping and ccd/ say
    "aliyun-hz-1": ("203.0.113.10", "172.16.0.10", 24),
    "tencent-hz-1": ("203.0.113.101", "172.17.0.10", 24),
    "huawei-hz-1": ("203.0.113.102", "172.18.0.10", 24),
    REVOKED: ("203.0.113.103", "10.99.0.10", 24),
}


def _old_client(vm: Vm, runbook: Path, cert: Path, key: Path) -> None:
    """The runbook's client.conf, as scp put it on the VM: only the file names changed."""
    folder = vm.workdir / "old"
    folder.mkdir(mode=0o755)
    for source, name in [(runbook / "pki/ca.crt", "ca.crt"), (runbook / "ta.key", "ta.key"),
                         (cert, f"{vm.name}.crt"), (key, f"{vm.name}.key")]:
        shutil.copyfile(source, folder / name)
    conf = (runbook / "client.conf").read_text().replace("NAME", vm.name)
    (folder / "client.conf").write_text(conf)
    vm.exec("openvpn", "--cd", str(folder), "--config", "client.conf", "--daemon",
            f"vpcmt-old-{vm.name}", "--writepid", str(vm.pidfile), "--log", str(vm.logfile))


def _old_server(vm: Vm, runbook: Path) -> None:
    """The runbook's hub: server.conf with its PKI files, ccd/, ipp.txt and ta.key."""
    folder = vm.workdir / "old"
    folder.mkdir(mode=0o755)
    for name in ("ca.crt", "crl.pem", "issued/server.crt", "private/server.key"):
        shutil.copyfile(runbook / "pki" / name, folder / Path(name).name)
    for name in ("server.conf", "ipp.txt", "ta.key"):
        shutil.copyfile(runbook / name, folder / name)
    shutil.copytree(runbook / "ccd", folder / "ccd")
    (folder / "ccd").chmod(0o755)
    vm.exec("openvpn", "--cd", str(folder), "--config", "server.conf", "--daemon",
            f"vpcmt-old-{vm.name}", "--writepid", str(vm.pidfile), "--log", str(vm.logfile))


def _revoked_files(runbook: Path) -> tuple[Path, Path]:
    """easy-rsa moves a revoked certificate and its key to revoked/*_by_serial/."""
    cert = next((runbook / "pki/revoked/certs_by_serial").glob("*.crt"))
    return cert, runbook / "pki/revoked/private_by_serial" / f"{cert.stem}.key"


def _sync(hub: Vm) -> dict[str, str]:
    """What `vpcmesh status` on the hub says each spoke runs: the cut-over's gauge."""
    proc = hub.exec(sys.executable, "-m", "vpcmesh", "status", "--json", "--root",
                    str(hub.workdir), check=False)
    return {n["hostname"]: n["sync"] for n in json.loads(proc.stdout)["nodes"]
            if n["hostname"] != hub.name}


def _installed_cert(vm: Vm) -> bytes:
    return (vm.workdir / f"etc/openvpn/client/{vm.name}.crt").read_bytes()


def _same_cert(a: bytes, b: bytes) -> bool:
    return x509.load_pem_x509_certificate(a) == x509.load_pem_x509_certificate(b)


def test_the_runbook_moves_to_vpcmesh_without_a_new_key(
        runbook: Path, lab_root: Path, admin_key: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    require()
    monkeypatch.delenv("VPCMESH_NOW")  # easy-rsa's certificates start now
    repo = lab_root / "mesh"
    assert invoke(*import_args(runbook, repo)).exit_code == 0
    assert invoke("render", "--repo", repo).exit_code == 0
    remote = git_bundles(repo / "build", lab_root / "published")
    tunnel = tunnel_addresses(repo)
    with Lab(lab_root) as lab:
        for name, (public, private, prefix) in ADDRESSES.items():
            (lab_root / name).mkdir(mode=0o755)
            lab.add_vm(name, public, private, prefix, lab_root / name)
        hub, tencent, huawei, laptop = (lab.vms[n] for n in ADDRESSES)
        # 0. The runbook's setup as it runs today: its server.conf and client.conf.
        _old_server(hub, runbook)
        for vm in (tencent, huawei):
            _old_client(vm, runbook, runbook / f"pki/issued/{vm.name}.crt",
                        runbook / f"pki/private/{vm.name}.key")
        assert_matrix(lab, hub, [tencent, huawei], tunnel)
        # 1. The hub moves in place: the old server stops, the agent's first pull starts
        # vpcmesh's; the old clients, unchanged, come back to it by themselves.
        hub.stop_openvpn()
        code, stderr = pull(hub, remote, repo)
        assert (code, stderr) == (0, "installed version 1 and restarted OpenVPN\n"), logs(lab)
        for vm in (tencent, huawei):
            assert wait_for(lambda vm=vm: vm.ping(tunnel[hub.name]), 60), logs(lab)
        assert "Peer Connection Initiated" in hub.log()
        assert_matrix(lab, hub, [tencent, huawei], tunnel)
        assert _sync(hub) == {"huawei-hz-1": "unknown", "tencent-hz-1": "unknown"}
        # 2. The revoked client stays out: the CRL the hub got from the import says why.
        _old_client(laptop, runbook, *_revoked_files(runbook))
        assert wait_for(lambda: "certificate revoked" in hub.log(), 20), logs(lab)
        assert "Initialization Sequence Completed" not in laptop.log()
        laptop.stop_openvpn()
        # 3. Each VM moves to its vpcmesh config (the old unit stopped first), keeping its
        # certificate; a moved and an unmoved VM reach each other meanwhile.
        for vm in (tencent, huawei):
            vm.stop_openvpn()
            code, stderr = pull(vm, remote, repo)
            assert (code, stderr) == (0, "installed version 1 and restarted OpenVPN\n"), \
                logs(lab)
            assert _same_cert(_installed_cert(vm),
                              (runbook / f"pki/issued/{vm.name}.crt").read_bytes())
            assert "tls-auth tls.key 1" in (vm.workdir / "etc/openvpn/client/example.conf"
                                            ).read_text()
            assert_matrix(lab, hub, [tencent, huawei], tunnel)
        assert wait_for(lambda: set(_sync(hub).values()) == {"in sync"}, 20), _sync(hub)
        # 4. Every VM runs its bundle: a pull request ends compat. The hub restarts with
        # tls-crypt; the spokes follow on their own, before their next pull.
        mesh = repo / "mesh/mesh.yaml"
        text = mesh.read_text()
        mesh.write_text(text[:text.index("  # What the old")] + text[text.index("\npki:"):])
        assert invoke("render", "--repo", repo).exit_code == 0
        git_bundles(repo / "build", remote)
        code, stderr = pull(hub, remote, repo)
        assert (code, stderr) == (0, "installed version 2 and restarted OpenVPN\n"), logs(lab)
        assert "tls-crypt tls.key" in (hub.workdir / "etc/openvpn/server/example.conf"
                                       ).read_text()
        for vm in (tencent, huawei):
            assert wait_for(lambda vm=vm: vm.ping(tunnel[hub.name]), 60), logs(lab)
        for vm in (tencent, huawei):
            code, stderr = pull(vm, remote, repo)
            assert (code, stderr) == (0, "installed version 2 and restarted OpenVPN\n"), \
                logs(lab)
            assert "tls-auth" not in (vm.workdir / "etc/openvpn/client/example.conf").read_text()
        assert_matrix(lab, hub, [tencent, huawei], tunnel)
