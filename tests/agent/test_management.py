"""The management client against a server that goes away: a located error, never an OSError
that would end the agent's pull."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest

from vpcmesh.agent.management import Management
from vpcmesh.errors import VpcmeshError


def test_openvpn_gone_mid_conversation_is_a_located_error(tmp_path: Path) -> None:
    path = tmp_path / "example.mgmt"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)

    def banner_then_exit() -> None:
        conn, _ = server.accept()
        conn.sendall(b">INFO:OpenVPN Management Interface Version 5\r\n")
        conn.close()  # OpenVPN restarted, or was killed

    thread = threading.Thread(target=banner_then_exit)
    thread.start()
    try:
        with Management(path) as management:
            thread.join()
            with pytest.raises(VpcmeshError) as caught:
                management.drop("tencent-hz-1")  # writes to a socket nobody reads: EPIPE
        assert str(caught.value).startswith(f"{path}: management interface: ")
    finally:
        thread.join()
        server.close()
