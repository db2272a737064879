"""No stranded VM: a new spoke that pulls before the hub knows it (the two timers are
independent) keeps its config, and is in the mesh as soon as the hub has pulled."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from pyrage import x25519

from bundlekit import git_bundles
from conftest import invoke
from meshlab import logs, pull, running_mesh
from netlab import wait_for

pytestmark = pytest.mark.usefixtures("debian_tun")


def test_a_spoke_that_pulls_before_the_hub_joins_once_the_hub_pulls(
        lab_root: Path, admin_key: Path, monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    with running_mesh(lab_root, monkeypatch) as mesh:
        identity = x25519.Identity.generate()
        key = tmp_path / "qcloud-hz-2.agekey"
        key.write_text(f"{identity}\n")
        assert invoke("node", "add", "qcloud-hz-2", "--repo", mesh.repo, "--cloud", "qcloud",
                      "--region", "cn-hz", "--private-ip", "172.20.0.10", "--subnet",
                      "172.20.0.0/24", "--age-recipient",
                      str(identity.to_public())).exit_code == 0
        assert invoke("render", "--repo", mesh.repo).exit_code == 0
        git_bundles(mesh.repo / "build", mesh.remote)
        root = lab_root / "qcloud-hz-2"
        root.mkdir(mode=0o755)
        qcloud = mesh.lab.add_vm("qcloud-hz-2", "203.0.113.120", "172.20.0.10", 24, root)

        # The new spoke's timer fires first: the hub refuses it (no ccd file yet).
        code, stderr = pull(qcloud, mesh.remote, mesh.repo, key=key, timeout=5)
        assert (code, stderr) == (1, f"{root}/etc/openvpn/client: version 1 is installed and"
                                     " OpenVPN runs, but its tunnel did not come up within 5s"
                                     " (has the hub pulled its bundle with this node?);"
                                     " keeping it, OpenVPN keeps trying\n")
        assert (root / "etc/openvpn/client/example.conf").exists()  # kept, not rolled back
        status = json.loads(invoke("pull", "--status", "--json", "--root", root).stdout)
        assert (status["version"], status["health"]) == (1, "waiting for the tunnel")
        # ... and its next pull says so again, without touching anything.
        assert pull(qcloud, mesh.remote, mesh.repo, key=key, timeout=5)[0] == 1

        # The hub pulls: the spoke is in, with no step on the spoke.
        assert pull(mesh.hub, mesh.remote, mesh.repo)[0] == 0
        started = time.monotonic()
        assert wait_for(lambda: qcloud.ping(mesh.hub.private), 90), logs(mesh.lab)
        assert time.monotonic() - started < 70  # within a retry period of OpenVPN's (60 s)
        assert wait_for(lambda: mesh.spokes[0].ping(qcloud.private), 20), logs(mesh.lab)
        assert pull(qcloud, mesh.remote, mesh.repo, key=key) == (0, "")
        status = json.loads(invoke("pull", "--status", "--json", "--root", root).stdout)
        assert (status["health"], status["last_error"]) == ("healthy", None)
