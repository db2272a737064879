"""Least privilege on the wire, with real OpenVPN in namespaces: service ACLs let through
the flows they allow and drop every other, whichever kernel a packet crosses; spokes check
their hub against the CRL, so a stolen hub certificate, once revoked, is refused."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from bundlekit import git_bundles
from conftest import invoke
from meshlab import (
    LISTEN,
    Ping,
    acl_counters,
    bring_up,
    compile_example,
    connects,
    listen,
    logs,
    pid,
    pull,
    running_mesh,
    tunnel_addresses,
)
from netlab import Lab, Vm, require, wait_for

pytestmark = pytest.mark.usefixtures("debian_tun")


def test_a_spoke_refuses_a_revoked_hub_certificate(lab_root: Path, admin_key: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    with running_mesh(lab_root, monkeypatch) as mesh:
        lab, hub = mesh.lab, mesh.hub
        huawei = lab.vms["huawei-hz-1"]
        assert wait_for(lambda: huawei.ping(hub.private), 20), logs(lab)
        # The hub's key is taken: the admins revoke its certificate. Until the hub pulls its
        # new one, the running hub stands for a thief holding the old certificate and key.
        assert invoke("pki", "revoke", "aliyun-hz-1", "--repo", mesh.repo).exit_code == 0
        assert invoke("render", "--repo", mesh.repo).exit_code == 0
        git_bundles(mesh.repo / "build", mesh.remote)
        code, said = pull(huawei, mesh.remote, mesh.repo)
        assert (code, said.endswith("without a restart\n")) == (0, True), said
        os.kill(pid(huawei), signal.SIGUSR1)  # its next handshake, as at reneg-sec or a reconnect
        assert wait_for(lambda: "error=certificate revoked" in huawei.log(), 20), logs(lab)
        assert not huawei.ping(hub.private)
        # The hub pulls its new certificate: the spoke takes it.
        assert pull(hub, mesh.remote, mesh.repo)[0] == 0
        assert wait_for(lambda: huawei.ping(hub.private), 40), logs(lab)


def _acl_mesh(root: Path, client_to_client: bool) -> Path:
    """The example, deny by default: postgres on the hub for the group app (tencent-hz-1)
    only; redis (hub) and elasticsearch (huawei-hz-1) for every node."""
    return compile_example(root, mesh_extra="acl:\n  default: deny\n",
                           node_extra={"tencent-hz-1": "groups: [app]\n"}, edits=(
                               ("nodes/aliyun-hz-1.yaml", "{name: postgres, port: 5432}",
                                "{name: postgres, port: 5432, allow: ['group:app']}"),
                               ("mesh/mesh.yaml", "client_to_client: true",
                                f"client_to_client: {str(client_to_client).lower()}")))


def _doctor(vm: Vm) -> dict[str, str]:
    """`vpcmesh doctor --json`'s service-acls finding on this VM."""
    done = vm.exec(sys.executable, "-m", "vpcmesh", "doctor", "--root", str(vm.workdir),
                   "--json", check=False)
    return next(f for f in json.loads(done.stdout) if f["check"] == "service-acls")


LOADED = "service ACLs loaded (nftables table inet vpcmesh-example)\n"


@pytest.mark.parametrize("client_to_client", [True, False])
def test_service_acls_pass_allowed_flows_and_drop_every_other(
        lab_root: Path, admin_key: Path, monkeypatch: pytest.MonkeyPatch,
        client_to_client: bool) -> None:
    require()
    monkeypatch.delenv("VPCMESH_NOW")
    repo = _acl_mesh(lab_root, client_to_client)
    remote = git_bundles(repo / "build", lab_root / "published")

    def puller(vm: Vm, remote: Path, repo: Path) -> tuple[int, str]:
        return pull(vm, remote, repo, extra=("--firewall",))

    with Lab(lab_root) as lab:
        hub, _ = bring_up(lab, lab_root, repo, remote, puller,
                          LOADED + "installed version 1 and restarted OpenVPN\n")
        huawei, tencent, ucloud = (lab.vms[h] for h in ("huawei-hz-1", "tencent-hz-1",
                                                         "ucloud-hz-1"))
        listen(hub, 5432, 6379, 2222)
        listen(huawei, 9200, 2222)
        assert wait_for(lambda: tencent.ping(huawei.private) and ucloud.ping(hub.private), 30), \
            logs(lab)
        tunnel = tunnel_addresses(repo)
        assert wait_for(lambda: connects(tencent, hub.private, 5432), 10), logs(lab)
        allowed = [(tencent, hub.private, 5432), (tencent, tunnel[hub.name], 5432),
                   (ucloud, hub.private, 6379), (tencent, huawei.private, 9200),
                   (hub, huawei.private, 9200)]
        denied = [(ucloud, hub.private, 5432), (ucloud, tunnel[hub.name], 5432),
                  (huawei, hub.private, 5432), (ucloud, hub.private, 2222),
                  (hub, huawei.private, 2222)]
        assert [f for f in allowed if not connects(*f)] == []
        assert [f for f in denied if connects(*f)] == []
        at_hub, at_huawei = acl_counters(hub), acl_counters(huawei)
        assert at_hub["postgres on aliyun-hz-1: allowed"] >= 2
        assert at_hub["postgres on aliyun-hz-1: denied"] >= 3
        assert at_hub["acl.default deny"] >= 1
        assert at_huawei["elasticsearch on huawei-hz-1: allowed"] >= 2
        assert at_huawei["acl.default deny"] >= 1
        # Spoke to spoke crosses the hub's kernel only without client-to-client: then the hub
        # drops the flow before huawei sees it; with it, huawei itself drops it.
        assert not connects(tencent, huawei.private, 2222)
        dropped_at_hub = acl_counters(hub)["acl.default deny"] - at_hub["acl.default deny"]
        dropped_at_huawei = acl_counters(huawei)["acl.default deny"] - at_huawei["acl.default deny"]
        assert (dropped_at_hub > 0, dropped_at_huawei > 0) == (not client_to_client,
                                                               client_to_client)
        at_hub = acl_counters(hub)

        # A pull with nothing new leaves the table (and its counters) as they are; a flushed
        # ruleset (`systemctl restart nftables`) is put back by the next pull, even one whose
        # source is down.
        metrics = lab_root / "hub.prom"
        assert pull(hub, remote, repo, extra=("--firewall", "--metrics", str(metrics))) == (0, "")
        assert acl_counters(hub) == at_hub
        gauges = {line.split("{")[0]: float(line.split()[-1])
                  for line in metrics.read_text().splitlines() if line.startswith("vpcmesh_acl")}
        assert gauges["vpcmesh_acl_loaded"] == 1 and gauges["vpcmesh_acl_dropped_packets"] >= 5
        found = _doctor(hub)
        assert found["level"] == "ok" and found["detail"].startswith("loaded: "), found
        assert int(found["detail"].split(", ")[1].split()[0]) >= 5  # packets dropped
        hub.exec("nft", "flush", "ruleset")
        assert _doctor(hub)["level"] == "problem"  # says so, and how to put them back
        assert pull(hub, lab_root / "gone", repo, extra=("--firewall",))[0] == 1
        assert not connects(ucloud, hub.private, 5432)
        hub.exec("nft", "flush", "ruleset")
        assert pull(hub, remote, repo, extra=("--firewall",)) == (0, LOADED)
        assert not connects(ucloud, hub.private, 5432)
        # At boot the OpenVPN unit's drop-in loads them before the tunnel is up.
        hub.exec("nft", "flush", "ruleset")
        dropin = hub.workdir / "etc/systemd/system/openvpn-server@example.service.d/vpcmesh.conf"
        line = next(x for x in dropin.read_text().splitlines() if x.startswith("ExecStartPre="))
        command = line.removeprefix("ExecStartPre=-").replace("/etc/vpcmesh",
                                                              f"{hub.workdir}/etc/vpcmesh")
        hub.exec(*shlex.split(command))
        assert not connects(ucloud, hub.private, 5432)
        assert connects(tencent, hub.private, 5432)
        # The mesh drops its ACLs: the next pull removes the table, and everything is open.
        for rel, old, new in (("mesh/mesh.yaml", "acl:\n  default: deny\n", ""),
                              ("nodes/aliyun-hz-1.yaml", ", allow: ['group:app']", "")):
            path = repo / rel
            path.write_text(path.read_text().replace(old, new))
        assert invoke("render", "--repo", repo).exit_code == 0
        git_bundles(repo / "build", remote)
        code, said = pull(hub, remote, repo, extra=("--firewall",))
        assert code == 0 and said.startswith("service ACLs removed (nftables table inet"
                                             " vpcmesh-example)\n"), said
        assert connects(ucloud, hub.private, 2222)


def test_a_port_docker_publishes_is_held_to_its_allow_list(
        lab_root: Path, admin_key: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Docker publishes a container's port with a DNAT in prerouting: by the forward hook the
    packet is addressed to the container. The rules match the connection as it was opened,
    so an open mesh cannot be walked into the container past the service's allow list."""
    require()
    monkeypatch.delenv("VPCMESH_NOW")
    repo = compile_example(lab_root, node_extra={"tencent-hz-1": "groups: [app]\n"}, edits=(
        ("nodes/aliyun-hz-1.yaml", "{name: redis, port: 6379}",
         "{name: redis, port: 6379}\n  - {name: harbor, port: 8443, allow: ['group:app']}"),))
    remote = git_bundles(repo / "build", lab_root / "published")

    def puller(vm: Vm, remote: Path, repo: Path) -> tuple[int, str]:
        code, said = pull(vm, remote, repo, extra=("--firewall",))
        return code, said.replace(LOADED, "")  # only the hub has rules to load

    container = f"vpcmx{os.getpid()}-ctr"
    with Lab(lab_root) as lab:
        try:
            hub, _ = bring_up(lab, lab_root, repo, remote, puller)
            tencent, ucloud = lab.vms["tencent-hz-1"], lab.vms["ucloud-hz-1"]
            # The container: a namespace behind a bridge-like veth, as docker0 is.
            subprocess.run(["ip", "netns", "add", container], check=True)
            hub.exec("ip", "link", "add", "docker0", "type", "veth", "peer", "name", "ctr0",
                     "netns", container)
            hub.exec("ip", "addr", "add", "172.30.99.1/24", "dev", "docker0")
            hub.exec("ip", "link", "set", "docker0", "up")
            for args in (["ip", "addr", "add", "172.30.99.2/24", "dev", "ctr0"],
                         ["ip", "link", "set", "ctr0", "up"],
                         ["ip", "route", "add", "default", "via", "172.30.99.1"]):
                subprocess.run(["ip", "netns", "exec", container, *args], check=True)
            subprocess.Popen(["ip", "netns", "exec", container, sys.executable, "-c", LISTEN,
                              "443"])
            subprocess.run(["ip", "netns", "exec", hub.netns, "nft", "-f", "-"], check=True,
                           text=True, input=(
                               "table ip docker {\n chain prerouting {\n"
                               "  type nat hook prerouting priority dstnat;\n"
                               f"  ip daddr {hub.private} tcp dport 8443"
                               " dnat to 172.30.99.2:443\n }\n}\n"))
            assert wait_for(lambda: connects(tencent, hub.private, 8443), 20), logs(lab)
            assert not connects(ucloud, hub.private, 8443)
            assert acl_counters(hub)["harbor on aliyun-hz-1: denied"] >= 1
        finally:
            for pid_ in subprocess.run(["ip", "netns", "pids", container], text=True,
                                       capture_output=True).stdout.split():
                os.kill(int(pid_), signal.SIGKILL)
            subprocess.run(["ip", "netns", "del", container], capture_output=True)


def test_tls_crypt_v2_keys_are_per_node_and_a_leaked_one_is_revoked_alone(
        lab_root: Path, admin_key: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    require()
    monkeypatch.delenv("VPCMESH_NOW")
    repo = compile_example(lab_root, vpn_extra="  tls_crypt_v2: true\n")
    remote = git_bundles(repo / "build", lab_root / "published")
    with Lab(lab_root) as lab:
        hub, _ = bring_up(lab, lab_root, repo, remote)
        huawei, tencent, ucloud = (lab.vms[h] for h in ("huawei-hz-1", "tencent-hz-1",
                                                         "ucloud-hz-1"))
        assert "tls-crypt-v2 tc2-server.key" in (
            hub.workdir / "etc/openvpn/server/example.conf").read_text()
        assert not (tencent.workdir / "etc/openvpn/client/tls.key").exists()  # no shared key
        assert wait_for(lambda: tencent.ping(huawei.private) and ucloud.ping(huawei.private),
                        30), logs(lab)
        # tencent-hz-1's keys leak: revoked, and re-issued for it alone.
        others = {h: (repo / f"secrets/nodes/{h}.sops.yaml").read_bytes()
                  for h in ("aliyun-hz-1", "huawei-hz-1", "ucloud-hz-1")}
        ping = Ping(huawei, ucloud.private)
        assert invoke("pki", "revoke", "tencent-hz-1", "--repo", repo).exit_code == 0
        assert invoke("render", "--repo", repo).exit_code == 0
        git_bundles(repo / "build", remote)
        assert {h: (repo / f"secrets/nodes/{h}.sops.yaml").read_bytes() for h in others} == others
        code, said = pull(hub, remote, repo)
        assert (code, said.endswith("without a restart; cut off tencent-hz-1\n")) == (0, True), said
        # Its old key (the thief's copy, say) no longer gets past the hub's first packet
        # check, before any TLS: its certificate's serial is on the CRL.
        os.kill(pid(tencent), signal.SIGUSR1)  # tries again now, not at ping-restart
        assert wait_for(lambda: "TLS CRYPT V2 VERIFY SCRIPT ERROR" in hub.log(), 30), logs(lab)
        assert not tencent.ping(huawei.private)
        assert pull(tencent, remote, repo)[0] == 0  # its new keys: back in
        assert wait_for(lambda: tencent.ping(huawei.private), 30), logs(lab)
        sent, lost = ping.stop()
        assert lost == 0, f"{lost} of {sent} lost between two nodes the revocation leaves alone"
