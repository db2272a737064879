"""Test helpers for agent tests: a signed build, re-signing a tampered bundle, an https
server with ETags on loopback, and a git repository holding bundles."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import http.server
import json
import shutil
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from vpcmesh.bundle.manifest import canonical
from vpcmesh.pki import x509 as pki
from vpcmesh.secrets import sops

from conftest import KEYS


def signing_key(repo: Path) -> pki.PrivateKey:
    data = sops.decrypt((repo / "secrets/mesh.sops.yaml").read_bytes(), "x", age_key_file=KEYS / "admin.agekey")
    return pki.load_key(data["signing_key"])


def resign(bundle: Path, key: pki.PrivateKey, change: Callable[[dict[str, object]], None],
           files: dict[str, bytes] | None = None) -> None:
    """Rewrite a bundle's files and manifest, and sign it as the compiler would."""
    for rel, data in (files or {}).items():
        (bundle / rel).write_bytes(data)
    manifest = json.loads((bundle / "manifest.json").read_bytes())
    change(manifest)
    for rel in manifest["files"]:
        data = (bundle / rel).read_bytes()
        manifest["files"][rel] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    raw = canonical(manifest)
    (bundle / "manifest.json").write_bytes(raw)
    signature = key.sign(raw)  # type: ignore[call-arg, union-attr]
    (bundle / "manifest.json.sig").write_text(base64.b64encode(signature).decode() + "\n")


def bump(manifest: dict[str, object]) -> None:
    manifest["version"] = int(manifest["version"]) + 1  # type: ignore[call-overload]


def git_bundles(build: Path, repo: Path) -> Path:
    """A git repository whose branch 'bundles' holds build/ at its root."""
    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)

    if not repo.exists():
        repo.mkdir(parents=True)
        git("init", "-q", "-b", "bundles")
        git("config", "user.email", "ci@example.com")
        git("config", "user.name", "ci")
    for child in repo.iterdir():
        if child.name != ".git":
            shutil.rmtree(child) if child.is_dir() else child.unlink()
    shutil.copytree(build, repo, dirs_exist_ok=True)
    git("add", "-A")
    git("commit", "-q", "--allow-empty", "-m", "publish")
    return repo


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        self.server.requests.append(self.path)
        self.server.headers.append(dict(self.headers))
        if self.path in self.server.redirects:  # a source that sends the agent elsewhere
            self.send_response(301)
            self.send_header("Location", self.server.redirects[self.path])
            self.end_headers()
            return
        path = self.server.folder / self.path.lstrip("/")
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        etag = '"' + hashlib.sha256(data).hexdigest()[:16] + '"'
        if self.headers.get("If-None-Match") == etag:
            self.send_response(304)
            self.send_header("ETag", etag)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("ETag", etag)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.path in self.server.truncate:
            data = data[: len(data) // 2]  # the connection drops half way
        if self.path in self.server.drip:  # a byte at a time, never quite silent
            try:
                for byte in data:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(0.2)
            except OSError:
                pass  # the agent hung up: what the test wanted
            return
        self.wfile.write(data)
        self.server.sent += len(data)

    def log_message(self, *args: object) -> None:
        pass


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True  # a dripping handler must not hold up the test's end
    block_on_close = False

    folder: Path
    requests: list[str]
    headers: list[dict[str, str]]
    truncate: set[str]
    drip: set[str]
    redirects: dict[str, str]
    sent: int


def tls_files(folder: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1 signed by it, well-formed enough for
    Python 3.13's strict X.509 checks: (CA file, certificate file, key file)."""
    import ipaddress

    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "vpcmesh test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - dt.timedelta(hours=1))
          .not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False,
                                       False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                         critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "127.0.0.1")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(ca_name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    ca_file, cert_file, key_file = folder / "ca.crt", folder / "server.crt", folder / "server.key"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return ca_file, cert_file, key_file


@contextmanager
def https_server(folder: Path, tls_dir: Path) -> Iterator[tuple[_Server, str, Path]]:
    """Serves `folder` on loopback over TLS; yields (server, base URL, CA file to trust)."""
    ca, cert, key = tls_files(tls_dir)
    server = _Server(("127.0.0.1", 0), _Handler)
    server.folder, server.requests, server.truncate, server.sent = folder, [], set(), 0
    server.drip, server.redirects, server.headers = set(), {}, []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server, f"https://127.0.0.1:{server.server_address[1]}", ca
    finally:
        server.shutdown()
        server.server_close()
