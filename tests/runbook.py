"""The runbook's manual setup, made the way the runbook makes it: a PKI by Debian's
easy-rsa (init-pki, build-ca nopass, build-server-full, build-client-full, revoke, gen-crl),
`openvpn --genkey secret ta.key`, and its server.conf, client.conf, ccd/ and ipp.txt
(tests/fixtures/runbook). What `vpcmesh import` reads."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from conftest import FIXTURES

EASYRSA = Path("/usr/share/easy-rsa/easyrsa")
RUNBOOK = FIXTURES / "runbook"
CLIENTS = ("tencent-hz-1", "huawei-hz-1", "old-laptop")
REVOKED = "old-laptop"


def _easyrsa(pki: Path, *args: str) -> None:
    env = {**os.environ, "EASYRSA_BATCH": "1", "EASYRSA_PKI": str(pki)}
    proc = subprocess.run([str(EASYRSA), *args], env=env, capture_output=True, text=True,
                          cwd=pki.parent, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _make(folder: Path) -> None:
    pki = folder / "pki"
    _easyrsa(pki, "init-pki")
    _easyrsa(pki, "--req-cn=runbook-ca", "build-ca", "nopass")
    _easyrsa(pki, "build-server-full", "server", "nopass")
    for client in CLIENTS:
        _easyrsa(pki, "build-client-full", client, "nopass")
    _easyrsa(pki, "revoke", REVOKED)
    _easyrsa(pki, "gen-crl")
    subprocess.run(["openvpn", "--genkey", "secret", str(folder / "ta.key")], check=True,
                   capture_output=True)


@contextmanager
def made_once() -> Iterator[Path]:
    """The PKI and ta.key, made once a session (RSA keys take a while) and removed after."""
    if not EASYRSA.exists():
        pytest.skip("easy-rsa is not installed (scripts/install-system-deps.sh installs it)")
    folder = Path(tempfile.mkdtemp(prefix="vpcmesh-runbook-"))
    try:
        _make(folder)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def setup(made: Path, dest: Path) -> Path:
    """A copy of the runbook's setup in `dest`: pki/, ta.key and the fixture's files."""
    shutil.copytree(RUNBOOK, dest, dirs_exist_ok=True)
    shutil.copytree(made, dest, dirs_exist_ok=True)
    return dest


def import_args(folder: Path, repo: Path) -> list[str | Path]:
    return ["import", "--repo", repo, "--from-easyrsa", folder / "pki",
            "--server-conf", folder / "server.conf", "--mapping", folder / "mapping.yaml"]
