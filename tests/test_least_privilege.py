"""Least privilege on the wire, with real OpenVPN in namespaces: spokes check their hub
against the CRL, so a stolen hub certificate, once revoked, is refused."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from bundlekit import git_bundles
from conftest import invoke
from meshlab import logs, pid, pull, running_mesh
from netlab import wait_for

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
