"""`vpcmesh doctor` on a real mesh: each runbook failure is made on purpose in a VM's
namespace (or its OpenVPN) and doctor must name it; put right, it must say ok again."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from meshlab import Running, logs, running_mesh
from netlab import Vm, wait_for

pytestmark = pytest.mark.usefixtures("debian_tun")


def doctor(vm: Vm, *args: str) -> tuple[int, dict[str, dict[str, str]]]:
    proc = vm.exec(sys.executable, "-m", "vpcmesh", "doctor", "--json", "--root",
                   str(vm.workdir), *args, check=False)
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode, {f["check"]: f for f in json.loads(proc.stdout)}


def level(vm: Vm, check: str, *args: str) -> str:
    return doctor(vm, *args)[1][check]["level"]


def test_doctor_names_each_broken_thing_and_then_its_repair(
        lab_root: Path, admin_key: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with running_mesh(lab_root, monkeypatch) as mesh:
        huawei, hub = mesh.lab.vms["huawei-hz-1"], mesh.hub
        _, found = doctor(huawei)
        assert {c: found[c]["level"] for c in ("forwarding", "forward-policy", "routes",
                                               "hub-reachable", "clock", "expiry")} == {
            "forwarding": "ok", "forward-policy": "ok", "routes": "ok", "hub-reachable": "ok",
            "clock": "ok", "expiry": "ok"}, found

        huawei.exec("sysctl", "-q", "-w", "net.ipv4.ip_forward=0")
        code, found = doctor(huawei)
        assert code == 1 and found["forwarding"]["level"] == "problem"
        assert "sysctl -w net.ipv4.ip_forward=1" in found["forwarding"]["fix"]
        huawei.exec("sysctl", "-q", "-w", "net.ipv4.ip_forward=1")

        huawei.exec("sysctl", "-q", "-w", "net.ipv4.conf.all.rp_filter=1")
        assert level(huawei, "rp_filter") == "warn"
        huawei.exec("sysctl", "-q", "-w", "net.ipv4.conf.all.rp_filter=0")

        # Docker's FORWARD policy, in this VM's own nftables.
        huawei.exec("nft", "add table ip filter")
        huawei.exec("nft", "add chain ip filter FORWARD { type filter hook forward priority 0;"
                           " policy drop; }")
        _, found = doctor(huawei)
        assert found["forward-policy"]["level"] == "problem"
        assert "DOCKER-USER -i tun+" in found["forward-policy"]["fix"]
        huawei.exec("nft", 'add rule ip filter FORWARD iifname "tun*" accept')
        assert level(huawei, "forward-policy") == "ok"
        huawei.exec("nft", "delete table ip filter")

        # docker0's default network inside the mesh's 172.16.0.0/12: tencent's VPC lies in it.
        huawei.exec("ip", "link", "add", "docker0", "type", "bridge")
        huawei.exec("ip", "addr", "add", "172.17.0.1/16", "dev", "docker0")
        huawei.exec("ip", "link", "set", "docker0", "up")
        _, found = doctor(huawei)
        assert found["routes"]["level"] == "problem"
        assert "docker0's 172.17.0.0/16 lies in the mesh's 172.16.0.0/12" in \
            found["routes"]["detail"]
        huawei.exec("ip", "link", "del", "docker0")
        assert level(huawei, "routes") == "ok"

        # The hub's port closed: the probe gets ICMP port unreachable.
        hub.stop_openvpn()  # SIGTERM: it is gone a moment later
        assert wait_for(lambda: level(huawei, "hub-reachable") == "problem", 10)
        assert "refused" in doctor(huawei)[1]["hub-reachable"]["detail"]


def _start_with_key(mesh: Running, vm: Vm, key: bytes) -> None:
    conf_dir = vm.workdir / "etc/openvpn/client"
    vm.stop_openvpn()
    (conf_dir / "tls.key").write_bytes(key)
    vm.exec("openvpn", "--cd", str(conf_dir), "--config", "example.conf", "--daemon",
            "vpcmt", "--writepid", str(vm.pidfile), "--log-append", str(vm.logfile))


def test_doctor_reads_the_faq_failures_in_real_openvpn_logs(
        lab_root: Path, admin_key: Path, monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    with running_mesh(lab_root, monkeypatch) as mesh:
        hub, ucloud = mesh.hub, mesh.lab.vms["ucloud-hz-1"]
        hub_log = hub.logfile
        assert level(hub, "log", "--log", str(hub_log)) == "ok"  # nothing known in it yet

        # A spoke with another control-channel key: the hub cannot unwrap its packets.
        other = tmp_path / "other.key"
        subprocess.run(["openvpn", "--genkey", "secret", str(other)], check=True,
                       capture_output=True)
        original = (ucloud.workdir / "etc/openvpn/client/tls.key").read_bytes()
        _start_with_key(mesh, ucloud, other.read_bytes())
        assert wait_for(lambda: "tls-crypt unwrapping failed" in hub.log(), 20), logs(mesh.lab)
        code, found = doctor(hub, "--log", str(hub_log))
        assert code == 1 and found["log: tls-key-mismatch"]["level"] == "problem"
        assert "tls-auth ta.key 1" in found["log: tls-key-mismatch"]["fix"]

        # Its ccd file gone from the hub (ccd-exclusive): refused, AUTH_FAILED on the spoke.
        _start_with_key(mesh, ucloud, original)
        (hub.workdir / "etc/openvpn/server/ccd/ucloud-hz-1").unlink()
        assert wait_for(lambda: "client-config-dir authentication failed" in hub.log(), 30), \
            logs(mesh.lab)
        assert level(hub, "log: ccd-missing", "--log", str(hub_log)) == "problem"
        assert wait_for(lambda: "AUTH_FAILED" in ucloud.log(), 30), logs(mesh.lab)
        assert level(ucloud, "log: ccd-missing", "--log", str(ucloud.logfile)) == "problem"


@pytest.mark.parametrize(("line", "name"), [
    # As OpenVPN 2.5/2.6 word them (src/openvpn/*.c), for the failures no lab here makes.
    ("Bad LZO decompression header byte: 69", "compression-mismatch"),
    ("TLS Error: TLS key negotiation failed to occur within 60 seconds (check your network"
     " connectivity)", "handshake-timeout"),
    ("spoke/203.0.113.7:1194 MULTI: bad source address from client [172.20.0.5], packet"
     " dropped", "missing-iroute"),
    ("ERROR: Cannot open TUN/TAP dev /dev/net/tun: No such file or directory (errno=2)",
     "tun-device"),
    ("VERIFY ERROR: depth=0, error=certificate is not yet valid: CN=spoke", "certificate-time"),
])
def test_each_faq_line_is_recognised(line: str, name: str, tmp_path: Path) -> None:
    from conftest import invoke

    log = tmp_path / "openvpn.log"
    log.write_text(f"Initialization Sequence Completed\n{line}\n")
    result = invoke("doctor", "--json", "--root", tmp_path, "--log", log)
    found = {f["check"]: f for f in json.loads(result.stdout)}
    assert found[f"log: {name}"]["level"] == "problem" and found[f"log: {name}"]["fix"]
