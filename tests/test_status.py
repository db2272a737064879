"""`vpcmesh status` and the metrics file, on a real mesh: what each spoke reports over its
tunnel (push-peer-info) against what the hub's fleet.json says was published for it."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from bundlekit import git_bundles
from conftest import invoke
from meshlab import Running, logs, pull, running_mesh
from netlab import Vm, wait_for

pytestmark = pytest.mark.usefixtures("debian_tun")


def status(mesh: Running, *args: str) -> tuple[int, str]:
    """Run on the hub, as an operator would (in its namespace, for its management socket)."""
    proc = mesh.hub.exec(sys.executable, "-m", "vpcmesh", "status", "--root",
                         str(mesh.hub.workdir), *args, check=False)
    return proc.returncode, proc.stdout + proc.stderr


def rows(mesh: Running, *args: str) -> tuple[int, dict[str, dict[str, object]]]:
    code, out = status(mesh, "--json", *args)
    return code, {n["hostname"]: n for n in json.loads(out)["nodes"]}


def reported(mesh: Running, spoke: Vm) -> str:
    record = mesh.hub.workdir / "etc/openvpn/server/vpcmesh-peers" / spoke.name
    return record.read_text() if record.exists() else ""


def test_status_shows_every_node_in_sync_then_a_spoke_behind_then_down(
        lab_root: Path, admin_key: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with running_mesh(lab_root, monkeypatch) as mesh:
        hub, tencent = mesh.hub, mesh.lab.vms["tencent-hz-1"]
        assert wait_for(lambda: all("event=connect" in reported(mesh, s) for s in mesh.spokes),
                        20), logs(mesh.lab)
        code, found = rows(mesh)
        assert code == 0, found
        assert {h: (r["connected"], r["sync"]) for h, r in found.items()} == {
            h: (True, "in sync") for h in ["aliyun-hz-1", "huawei-hz-1", "tencent-hz-1",
                                           "ucloud-hz-1"]}
        assert found["tencent-hz-1"]["real_address"].startswith(tencent.public + ":")
        code, table = status(mesh)
        assert code == 0 and "no problems" in table
        assert table.splitlines()[0].split()[:4] == ["NODE", "ROLE", "CLOUD", "STATE"]

        # A new certificate for tencent: the hub pulls (its fleet.json now names tencent's
        # new config), tencent does not: it runs what it ran, and says so.
        assert invoke("pki", "renew", "tencent-hz-1", "--repo", mesh.repo).exit_code == 0
        assert invoke("render", "--repo", mesh.repo).exit_code == 0
        git_bundles(mesh.repo / "build", mesh.remote)
        assert pull(hub, mesh.remote, mesh.repo)[0] == 0
        assert wait_for(lambda: rows(mesh)[1]["tencent-hz-1"]["connected"], 30)
        code, found = rows(mesh)
        assert found["tencent-hz-1"]["sync"] == "behind"
        assert code == 0  # behind for less than the 30 minutes allowed
        code, table = status(mesh, "--behind-after", "0")
        assert code == 1 and "problem: tencent-hz-1: runs another config than the one" \
            " published for it" in table, table
        # It pulls, restarts, reconnects with its new config: in sync again.
        assert pull(tencent, mesh.remote, mesh.repo)[0] == 0
        assert wait_for(lambda: rows(mesh)[1]["tencent-hz-1"]["sync"] == "in sync", 30)

        # A new CRL reaches every node and restarts none, so no spoke reconnects to report
        # it: the hub still counts each in sync, and none is a problem, however long.
        assert invoke("pki", "renew", "--repo", mesh.repo).exit_code == 0
        git_bundles(mesh.repo / "build", mesh.remote)
        for vm in [hub, *mesh.spokes]:
            assert pull(vm, mesh.remote, mesh.repo)[0] == 0
        code, found = rows(mesh)
        assert code == 0 and {r["sync"] for r in found.values()} == {"in sync"}, found
        # (--behind-after 0 also makes the hub's own last pull, seconds ago, a problem.)
        code, table = status(mesh, "--behind-after", "0")
        assert "runs another config" not in table, table

        # Down: shown, not left out; a problem once down longer than allowed.
        tencent.stop_openvpn()
        assert wait_for(lambda: not rows(mesh)[1]["tencent-hz-1"]["connected"], 30)
        code, found = rows(mesh)
        assert code == 0 and found["tencent-hz-1"]["since"] is not None
        code, table = status(mesh, "--down-after", "0")
        assert code == 1 and "problem: tencent-hz-1: down since " in table


def test_the_hub_writes_peer_metrics_and_status_reads_a_status_taken_elsewhere(
        lab_root: Path, admin_key: Path, monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    with running_mesh(lab_root, monkeypatch) as mesh:
        hub = mesh.hub
        assert wait_for(lambda: all("event=connect" in reported(mesh, s) for s in mesh.spokes),
                        20), logs(mesh.lab)
        prom = tmp_path / "textfile/vpcmesh.prom"
        assert pull(hub, mesh.remote, mesh.repo, extra=("--metrics", str(prom))) == (0, "")
        text = prom.read_text()
        labels = 'mesh="example",node="aliyun-hz-1"'
        assert f"vpcmesh_pull_success{{{labels}}} 1.0" in text
        assert f"vpcmesh_tunnel_up{{{labels}}} 1.0" in text
        assert f"vpcmesh_bundle_version{{{labels}}} 1.0" in text
        for spoke in mesh.spokes:
            assert f'vpcmesh_peer_connected{{{labels},peer="{spoke.name}"}} 1.0' in text
            assert f'vpcmesh_peer_config_in_sync{{{labels},peer="{spoke.name}"}} 1.0' in text
        assert "vpcmesh_certificate_expiry_timestamp_seconds{" in text
        assert "vpcmesh_crl_next_update_timestamp_seconds{" in text

        # Taken on the hub, judged elsewhere (ssh root@hub vpcmesh status --json | ...).
        taken = tmp_path / "status.json"
        taken.write_text(status(mesh, "--json")[1])
        result = invoke("status", "--from", taken)
        assert result.exit_code == 0 and "no problems" in result.stdout
        result = invoke("status", "--from", taken, "--expiring-days", "100000")
        assert result.exit_code == 1 and "certificate expires on" in result.stdout


def test_status_off_a_hub_says_where_to_run_it(tmp_path: Path) -> None:
    result = invoke("status", "--root", tmp_path)
    assert (result.exit_code, result.stderr) == (
        1, f"{tmp_path}/var/lib/vpcmesh: no bundle is installed here: run `vpcmesh status` on"
           " the hub, after its first pull\n")


@pytest.mark.parametrize(("text", "why"), [
    ("not json", "not JSON; expected the output of `vpcmesh status --json`"),
    ('{"format": 1, "mesh": "m", "hub": "h", "taken_at": "yesterday", "hub_pulled_at": null,'
     ' "hub_error": null, "nodes": [], "expiries": []}',
     "field 'taken_at' is not a time like 2026-01-31T12:00:00Z"),
])
def test_a_status_from_elsewhere_that_is_not_one_is_refused(tmp_path: Path, text: str,
                                                            why: str) -> None:
    path = tmp_path / "status.json"
    path.write_text(text)
    result = invoke("status", "--from", path)
    assert (result.exit_code, result.stderr) == (1, f"{path}: {why}\n")


def test_a_record_with_a_time_no_clock_shows_is_shown_as_unknown(tmp_path: Path) -> None:
    # The peers folder belongs to nobody; what is in it must not crash status on the hub.
    from vpcmesh.agent.report import PeerRecord
    from vpcmesh.agent.status import _spoke
    from vpcmesh.bundle.fleet import FleetNode

    node = FleetNode("s", "spoke", "c", "r", "10.8.0.2", None, ())
    row = _spoke(node, None, PeerRecord("disconnect", 10 ** 11 * 9, "", "", "", ""), {},
                 ())
    assert (row.connected, row.since) == (False, None)


def test_a_node_that_is_not_an_object_is_named(tmp_path: Path) -> None:
    path = tmp_path / "status.json"
    path.write_text('{"format": 1, "mesh": "m", "hub": "h", "taken_at": "2026-01-01T00:00:00Z",'
                    ' "hub_pulled_at": null, "hub_error": null, "nodes": [3], "expiries": []}')
    result = invoke("status", "--from", path)
    assert (result.exit_code, result.stderr) == (
        1, f"{path}: a node is not a JSON object; is it the output of `vpcmesh status"
           " --json`?\n")
