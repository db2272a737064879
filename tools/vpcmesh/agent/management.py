"""OpenVPN's management interface on a unix socket: who is connected, and disconnecting a
client so that it reconnects with what changed (its ccd file, or a revoked certificate).

The server config binds it as `management <mesh>.mgmt unix` with `management-client-user
root`; OpenVPN creates the socket with mode 0777, so that user check is what keeps other
users out."""

from __future__ import annotations

import contextlib
import re
import socket
from dataclasses import dataclass
from pathlib import Path

from vpcmesh.errors import VpcmeshError

TIMEOUT = 5.0
MAX_REPLY = 1 << 20


@dataclass(frozen=True)
class Client:
    common_name: str
    real_address: str
    virtual_address: str
    bytes_received: int
    bytes_sent: int
    connected_since: int  # time_t
    client_id: str


class Management:
    """One short conversation: connect, ask, quit. Every reply is read with a deadline."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(TIMEOUT)
        self.buffer = b""

    def __enter__(self) -> Management:
        try:
            self.sock.connect(str(self.path))
            self._line()  # the ">INFO:OpenVPN Management Interface ..." banner
        except OSError as exc:
            self.sock.close()
            raise VpcmeshError.at(str(self.path), "cannot reach OpenVPN's management"
                                                  f" interface: {exc.strerror or exc}") from None
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(OSError):
            self.sock.sendall(b"quit\n")
        self.sock.close()

    def _line(self) -> str:
        while b"\n" not in self.buffer:
            try:
                chunk = self.sock.recv(65536)
            except OSError as exc:
                raise VpcmeshError.at(str(self.path), f"management interface: {exc}") from None
            if not chunk:
                raise VpcmeshError.at(str(self.path), "the management interface closed the"
                                                      " connection")
            self.buffer += chunk
            if len(self.buffer) > MAX_REPLY:
                raise VpcmeshError.at(str(self.path), "management reply too large")
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line.decode(errors="replace").rstrip("\r")

    def _send(self, command: str) -> None:
        try:
            self.sock.sendall(command.encode() + b"\n")
        except OSError as exc:  # OpenVPN went away mid-conversation
            raise VpcmeshError.at(str(self.path), f"management interface: {exc}") from None

    def _ask(self, command: str) -> list[str]:
        """The reply lines of a multi-line command, up to END; real-time notifications
        (lines starting with '>') are skipped."""
        self._send(command)
        lines: list[str] = []
        while True:
            line = self._line()
            if line.startswith(">"):
                continue
            if line == "END":
                return lines
            if line.startswith("ERROR:"):
                raise VpcmeshError.at(str(self.path), f"'{command}': {line}")
            lines.append(line)

    def _command(self, command: str) -> str:
        """The SUCCESS/ERROR line of a one-line command."""
        self._send(command)
        while True:
            line = self._line()
            if line.startswith(("SUCCESS:", "ERROR:")):
                return line

    def clients(self) -> list[Client]:
        header: list[str] = []
        out = []
        for line in self._ask("status 3"):
            fields = line.split("\t")
            if fields[:2] == ["HEADER", "CLIENT_LIST"]:
                header = fields[1:]
            elif fields[0] == "CLIENT_LIST" and header:
                row = dict(zip(header, fields))
                out.append(Client(row.get("Common Name", ""), row.get("Real Address", ""),
                                  row.get("Virtual Address", ""),
                                  _int(row.get("Bytes Received")), _int(row.get("Bytes Sent")),
                                  _int(row.get("Connected Since (time_t)")),
                                  row.get("Client ID", "")))
        return out

    def disconnect(self, common_name: str) -> int:
        """Tell every session of `common_name` to restart (it reconnects at once, and is
        refused if its certificate was revoked or its ccd file removed); how many there were."""
        count = 0
        for client in self.clients():
            if (client.common_name == common_name and client.client_id.isdigit()
                    and self._command(f"client-kill {client.client_id}").startswith("SUCCESS:")):
                count += 1
        return count

    def advance_all(self) -> int:
        """Tell every client to reconnect through its next <connection> block (OpenVPN's
        RESTART,[N]); how many were told."""
        return sum(self._command(f"client-kill {c.client_id} RESTART,[N]").startswith("SUCCESS:")
                   for c in self.clients() if c.client_id.isdigit())

    def drop(self, common_name: str) -> int:
        """Close every session of `common_name` now, without telling the client (OpenVPN's
        `kill`): for a spoke that is no longer welcome."""
        line = self._command(f"kill {common_name}")
        found = re.search(r"(\d+) client\(s\) killed", line)
        return int(found[1]) if found else 0


def _int(text: str | None) -> int:
    return int(text) if text and text.isdigit() else 0
