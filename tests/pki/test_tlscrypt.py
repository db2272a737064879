"""tls-crypt-v2 keys as OpenVPN itself makes and reads them (the tunnels in
tests/test_least_privilege.py run on keys made here)."""

from __future__ import annotations

import base64
import shutil
import subprocess
from pathlib import Path

import pytest

from vpcmesh.pki import tlscrypt

needs_openvpn = pytest.mark.skipif(shutil.which("openvpn") is None, reason="no openvpn")


def test_a_client_key_carries_its_metadata_and_only_its_hub_unwraps_it() -> None:
    master = tlscrypt.new_master()
    hub, other = tlscrypt.server_key(master, "hub-1"), tlscrypt.server_key(master, "hub-2")
    assert hub == tlscrypt.server_key(master, "hub-1") and hub != other  # derived, per hub
    client = tlscrypt.new_client_key(hub, tlscrypt.metadata("spoke-1", 4242))
    assert tlscrypt.unwrap(hub, client) == b"\x00vpcmesh spoke-1 4242"
    with pytest.raises(ValueError):
        tlscrypt.unwrap(other, client)


@needs_openvpn
def test_our_server_key_is_one_openvpn_wraps_client_keys_with(tmp_path: Path) -> None:
    server = tmp_path / "server.key"
    server.write_text(tlscrypt.server_key(tlscrypt.new_master(), "hub-1"))
    client = tmp_path / "client.key"
    meta = base64.b64encode(b"vpcmesh spoke-1 7").decode()
    subprocess.run(["openvpn", "--tls-crypt-v2", str(server), "--genkey",
                    "tls-crypt-v2-client", str(client), meta], check=True, capture_output=True)
    assert tlscrypt.unwrap(server.read_text(), client.read_text()) == b"\x00vpcmesh spoke-1 7"


@needs_openvpn
def test_openvpns_server_key_wraps_the_same_way_ours_does(tmp_path: Path) -> None:
    server = tmp_path / "server.key"
    subprocess.run(["openvpn", "--genkey", "tls-crypt-v2-server", str(server)], check=True,
                   capture_output=True)
    client = tmp_path / "client.key"
    subprocess.run(["openvpn", "--tls-crypt-v2", str(server), "--genkey",
                    "tls-crypt-v2-client", str(client)], check=True, capture_output=True)
    assert tlscrypt.unwrap(server.read_text(), client.read_text())[:1] == b"\x01"  # timestamp
    ours = tlscrypt.new_client_key(server.read_text(), b"x")
    assert tlscrypt.unwrap(server.read_text(), ours) == b"\x00x"
