"""Changes reach a running mesh without an outage: while a spoke joins, changes its subnets,
is revoked or removed, and while the CRL is refreshed, two spokes the change does not
involve keep talking (a ping at 10/s loses nothing), and the hub's OpenVPN never restarts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pyrage import x25519

from vpcmesh.agent.management import Management

from bundlekit import git_bundles
from conftest import invoke
from meshlab import Ping, Running, logs, pid, pull, running_mesh
from netlab import wait_for

pytestmark = pytest.mark.usefixtures("debian_tun")


def _no_loss(ping: Ping, step: str, mesh: Running) -> bool:
    sent, lost = ping.stop()
    assert lost == 0, f"{step}: {lost} of {sent} pings lost\n{logs(mesh.lab)}"
    return True


def _publish(mesh: Running) -> None:
    result = invoke("render", "--repo", mesh.repo)
    assert result.exit_code == 0, result.stderr
    git_bundles(mesh.repo / "build", mesh.remote)


def _hot(result: tuple[int, str], then: str) -> bool:
    """The hub installed a new version without restarting, and said whom it reconnected."""
    code, stderr = result
    return code == 0 and re.fullmatch(rf"installed version \d+ without a restart{then}\n",
                                      stderr) is not None


def _connected(mesh: Running) -> set[str]:
    with Management(mesh.hub.workdir / "etc/openvpn/server/example.mgmt") as management:
        return {c.common_name for c in management.clients()}


def test_changes_lose_no_packet_between_untouched_spokes(lab_root: Path, admin_key: Path,
                                                        monkeypatch: pytest.MonkeyPatch,
                                                        tmp_path: Path) -> None:
    with running_mesh(lab_root, monkeypatch) as mesh:
        lab, hub = mesh.lab, mesh.hub
        huawei, ucloud = lab.vms["huawei-hz-1"], lab.vms["ucloud-hz-1"]
        tencent = lab.vms["tencent-hz-1"]
        hub_pid = pid(hub)
        assert wait_for(lambda: huawei.ping(ucloud.private), 20), logs(lab)

        # 1. A spoke joins: a new VM, its own age key, a pull request adding its node file.
        ping = Ping(huawei, ucloud.private)
        identity = x25519.Identity.generate()
        key = tmp_path / "qcloud-hz-2.agekey"
        key.write_text(f"{identity}\n")
        result = invoke("node", "add", "qcloud-hz-2", "--repo", mesh.repo, "--cloud", "qcloud",
                        "--region", "cn-hz", "--private-ip", "172.20.0.10", "--subnet",
                        "172.20.0.0/24", "--age-recipient", str(identity.to_public()))
        assert result.exit_code == 0, result.stderr
        _publish(mesh)
        assert _hot(pull(hub, mesh.remote, mesh.repo), "")
        root = lab_root / "qcloud-hz-2"
        root.mkdir(mode=0o755)
        qcloud = lab.add_vm("qcloud-hz-2", "203.0.113.120", "172.20.0.10", 24, root)
        assert pull(qcloud, mesh.remote, mesh.repo, key=key) == (
            0, "installed version 1 and restarted OpenVPN\n")
        assert wait_for(lambda: qcloud.ping(huawei.private), 30), logs(lab)
        assert wait_for(lambda: ucloud.ping(qcloud.private), 30), logs(lab)
        assert _no_loss(ping, "a spoke joins", mesh)

        # 2. A spoke's subnets change: that spoke reconnects, nobody else notices.
        ping = Ping(huawei, ucloud.private)
        tencent.exec("ip", "addr", "add", "192.168.61.10/24", "dev", "vpc1")
        node = mesh.repo / "nodes/tencent-hz-1.yaml"
        node.write_text(node.read_text().replace("  - 172.17.0.0/24\n",
                                                 "  - 172.17.0.0/24\n  - 192.168.61.0/24\n"))
        _publish(mesh)
        assert _hot(pull(hub, mesh.remote, mesh.repo), "; asked tencent-hz-1 to reconnect")
        assert wait_for(lambda: huawei.ping("192.168.61.10"), 30), logs(lab)
        assert _no_loss(ping, "a subnet changes", mesh)

        # 3. The CRL is refreshed: nothing restarts, nobody is disconnected.
        ping = Ping(huawei, ucloud.private)
        before = _connected(mesh)
        assert invoke("pki", "renew", "--repo", mesh.repo).exit_code == 0
        _publish(mesh)
        assert _hot(pull(hub, mesh.remote, mesh.repo), "")
        assert _connected(mesh) == before
        assert _no_loss(ping, "the CRL is refreshed", mesh)

        # 3b. A spoke's certificate is renewed: the hub's pull asks nobody to reconnect (only
        # the serial in its ccd file changed); the spoke moves to it at its own pull.
        ping = Ping(huawei, ucloud.private)
        assert invoke("pki", "renew", "tencent-hz-1", "--repo", mesh.repo).exit_code == 0
        _publish(mesh)
        assert _hot(pull(hub, mesh.remote, mesh.repo), "")
        assert _connected(mesh) == before
        assert pull(tencent, mesh.remote, mesh.repo)[0] == 0
        assert wait_for(lambda: tencent.ping(ucloud.private), 30), logs(lab)
        assert _no_loss(ping, "a spoke is renewed", mesh)

        # 4. A spoke is revoked (it gets a new key): the hub drops its session at once.
        ping = Ping(huawei, ucloud.private)
        assert invoke("pki", "revoke", "tencent-hz-1", "--repo", mesh.repo).exit_code == 0
        _publish(mesh)
        assert _hot(pull(hub, mesh.remote, mesh.repo), "; cut off tencent-hz-1")
        assert wait_for(lambda: "tencent-hz-1" not in _connected(mesh), 5), logs(lab)
        assert not wait_for(lambda: "tencent-hz-1" in _connected(mesh), 3)  # refused: revoked
        assert pull(tencent, mesh.remote, mesh.repo)[0] == 0  # its new key: back in
        assert wait_for(lambda: tencent.ping(ucloud.private), 30), logs(lab)
        assert _no_loss(ping, "a spoke is revoked", mesh)

        # 5. A spoke is removed: disconnected at the hub's pull, and not let back in.
        ping = Ping(huawei, ucloud.private)
        assert invoke("node", "remove", "qcloud-hz-2", "--repo", mesh.repo).exit_code == 0
        _publish(mesh)
        assert _hot(pull(hub, mesh.remote, mesh.repo), "; cut off qcloud-hz-2")
        assert wait_for(lambda: "qcloud-hz-2" not in _connected(mesh), 5), logs(lab)
        assert not wait_for(lambda: "qcloud-hz-2" in _connected(mesh), 3)
        assert _no_loss(ping, "a spoke is removed", mesh)

        assert pid(hub) == hub_pid  # the hub's OpenVPN ran through all of it
