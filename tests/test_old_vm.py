"""An older VM in the mesh: a Debian 11 root (Python 3.9.2, OpenVPN 2.5.1, both from
Debian's archive) runs `vpcmesh pull` with its own Python and starts its own OpenVPN as a
spoke of a 2.6 hub, chrooted inside its network namespace; the runbook's matrix passes."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from vpcmesh.secrets import sops

from bundlekit import git_bundles
from conftest import KEYS, ROOT, invoke
from meshlab import RESTART, STOP, assert_matrix, bring_up, compile_example, pull, tunnel_addresses
from netlab import Lab, Vm, require, skip_or_fail, wait_for

pytestmark = pytest.mark.usefixtures("debian_tun")
OLD = "ucloud-hz-1"  # the spoke that runs on the old system
CACHE = ROOT / ".tools/roots/bullseye"  # made once by scripts/old-vm-root.sh (make clean)
# Inside the chroot: mount what a VM has (/proc, /dev with /dev/net/tun) in a mount
# namespace of its own, which ends with the last process in it (the daemonised OpenVPN).
CHROOT = ('root=$1; shift; mount -t proc proc "$root/proc"; mount --rbind /dev "$root/dev";'
          ' exec chroot "$root" /usr/bin/env -i HOME=/root LANG=C.UTF-8'
          ' PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
          ' PYTHONPATH=/opt/vpcmesh-src "$@"')


@pytest.fixture(scope="session")
def old_root() -> Path:
    require()
    if shutil.which("debootstrap") is None:
        skip_or_fail("needs debootstrap (make system-deps installs it)")
    proc = subprocess.run([str(ROOT / "scripts/old-vm-root.sh"), str(CACHE)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    return CACHE


def in_old(vm: Vm, *args: str) -> subprocess.CompletedProcess[str]:
    return vm.exec("unshare", "--mount", "--propagation", "private", "--", "sh", "-ec",
                   CHROOT, "old", str(vm.workdir), *args, check=False)


def make_old_vm(vm: Vm, template: Path, repo: Path) -> None:
    """The VM's disk: the cached root, with what its bootstrap puts there (sops from its
    release package, the age key, the trust key) and the vpcmesh code under test."""
    subprocess.run(["cp", "-a", "--reflink=auto", f"{template}/.", str(vm.workdir)], check=True)
    shutil.copy2(sops.binary(), vm.workdir / "usr/local/bin/sops")
    shutil.copytree(ROOT / "tools/vpcmesh", vm.workdir / "opt/vpcmesh-src/vpcmesh",
                    ignore=shutil.ignore_patterns("__pycache__"))
    (vm.workdir / "etc/vpcmesh").mkdir(mode=0o700)
    shutil.copy2(KEYS / f"{vm.name}.agekey", vm.workdir / "etc/vpcmesh/age.key")
    shutil.copy2(repo / "mesh/signing.pub", vm.workdir / "etc/vpcmesh/signing.pub")
    shutil.copytree(repo / "build", vm.workdir / "srv/bundles")
    (vm.workdir / "restart.sh").write_text(RESTART.format(pid="/openvpn.pid",
                                                          log="/openvpn.log"))
    (vm.workdir / "stop.sh").write_text(STOP.format(pid="/openvpn.pid", log="/openvpn.log"))
    vm.pidfile, vm.logfile = vm.workdir / "openvpn.pid", vm.workdir / "openvpn.log"


def old_puller(old_root: Path) -> Callable[[Vm, Path, Path], tuple[int, str]]:
    """A pull as each VM runs it: the old one in its chroot, from its copy of the bundles."""

    def puller(vm: Vm, remote: Path, repo: Path) -> tuple[int, str]:
        if vm.name != OLD:
            return pull(vm, remote, repo)
        make_old_vm(vm, old_root, repo)
        versions = in_old(vm, "sh", "-c", "/opt/vpcmesh/bin/python -V; openvpn --version")
        assert "Python 3.9." in versions.stdout and "OpenVPN 2.5." in versions.stdout
        proc = in_old(vm, "/opt/vpcmesh/bin/python", "-m", "vpcmesh", "pull", "--once",
                      "--hostname", vm.name, "--source", "/srv/bundles",
                      "--age-key", "/etc/vpcmesh/age.key",
                      "--trust-key", "/etc/vpcmesh/signing.pub", "--root", "/",
                      "--restart-cmd", "sh /restart.sh", "--stop-cmd", "sh /stop.sh",
                      "--pidfile", "/openvpn.pid", "--health-timeout", "30")
        return proc.returncode, proc.stderr

    return puller


@pytest.mark.parametrize("tls_crypt_v2", [False, True])
def test_debian_11_spoke_runs_the_agent_with_python_3_9_and_openvpn_2_5(
        lab_root: Path, admin_key: Path, old_root: Path, monkeypatch: pytest.MonkeyPatch,
        tls_crypt_v2: bool) -> None:
    monkeypatch.delenv("VPCMESH_NOW")  # real certificates for a real OpenVPN clock
    repo = compile_example(lab_root, vpn_extra="  tls_crypt_v2: true\n" if tls_crypt_v2 else "")
    remote = git_bundles(repo / "build", lab_root / "published")
    with Lab(lab_root) as lab:
        hub, spokes = bring_up(lab, lab_root, repo, remote, old_puller(old_root))
        old = lab.vms[OLD]
        assert "OpenVPN 2.5." in old.log()
        conf = (old.workdir / "etc/openvpn/client/example.conf").read_text()
        assert "group nogroup" in conf
        assert ("\ntls-crypt-v2 tc2-aliyun-hz-1.key\n" in conf) == tls_crypt_v2
        assert_matrix(lab, hub, spokes, tunnel_addresses(repo))
        status = in_old(old, "/opt/vpcmesh/bin/python", "-m", "vpcmesh", "pull", "--status",
                        "--root", "/")
        assert status.returncode == 0 and "version: 1\n" in status.stdout, status.stderr


def test_a_2_5_spoke_under_compat_follows_the_hub_to_tls_crypt(
        lab_root: Path, admin_key: Path, old_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What an imported mesh runs until compat ends: OpenVPN 2.5.1 reads the spoke's two
    <connection> blocks (tls-auth, then tls-crypt) and the hub's pushed comp-lzo framing,
    and finds the hub by itself when the hub drops compat."""
    monkeypatch.delenv("VPCMESH_NOW")
    compat = ("  compat: {tls_auth: true, comp_lzo: true, cipher_fallback: AES-256-CBC,"
              " auth: SHA256}\n")
    repo = compile_example(lab_root, vpn_extra=compat)
    mesh = repo / "mesh/mesh.yaml"
    remote = git_bundles(repo / "build", lab_root / "published")
    with Lab(lab_root) as lab:
        hub, spokes = bring_up(lab, lab_root, repo, remote, old_puller(old_root))
        old = lab.vms[OLD]
        tunnel = tunnel_addresses(repo)
        assert "OpenVPN 2.5." in old.log() and "<connection>" in (
            old.workdir / "etc/openvpn/client/example.conf").read_text()
        assert_matrix(lab, hub, spokes, tunnel)
        mesh.write_text(mesh.read_text().replace(compat, ""))
        assert invoke("render", "--repo", repo).exit_code == 0
        git_bundles(repo / "build", remote)
        connected = old.log().count("Peer Connection Initiated")
        assert pull(hub, remote, repo)[0] == 0
        assert "tls-crypt tls.key" in (hub.workdir / "etc/openvpn/server/example.conf"
                                       ).read_text()
        # It reaches the tls-crypt hub through its second block, by itself.
        assert wait_for(lambda: old.log().count("Peer Connection Initiated") > connected, 60), \
            old.log()[-3000:]
        # OpenVPN 2.5 keeps no CAP_NET_ADMIN after dropping to nobody: the hub's push
        # changed (no comp-lzo framing), so it exits to reopen its tun device, and the
        # bundle's systemd drop-in (Restart=on-failure, 5 s) starts it again as root. No
        # systemd here: the same restart, by hand.
        if not wait_for(lambda: old.ping(tunnel[hub.name]), 10):
            assert "Exiting due to fatal error" in old.log(), old.log()[-3000:]
            restarted = in_old(old, "env", "VPCMESH_CONF_DIR=/etc/openvpn/client",
                               "VPCMESH_CONFIG=example.conf", "sh", "/restart.sh")
            assert restarted.returncode == 0, restarted.stderr
        assert wait_for(lambda: old.ping(tunnel[hub.name]), 60), old.log()[-3000:]
        assert_matrix(lab, hub, spokes, tunnel)
