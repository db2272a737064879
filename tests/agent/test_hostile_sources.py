"""A node's agent against sources that lie, stall or misdirect, and a node in a bad state:
every case ends in a clear error (or a recovery) and leaves the installed files alone."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from vpcmesh.agent.sources import HttpsSource

from bundlekit import https_server
from conftest import EXAMPLE, KEYS, invoke

HOST = "tencent-hz-1"


def pull(source: str | Path, root: Path, trust: Path, *extra: str) -> tuple[int, str]:
    result = invoke("pull", "--once", "--hostname", HOST, "--source", source, "--root", root,
                    "--age-key", KEYS / f"{HOST}.agekey", "--trust-key", trust,
                    "--restart-cmd", "true", "--health-cmd", "true", *extra)
    return result.exit_code, result.stderr


def installed(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*")
            if p.is_file() and "var" not in p.parts}


def test_an_option_like_source_never_reaches_git(build: Path, node: Path) -> None:
    code, stderr = pull("--upload-pack=touch /tmp/pwned", node, build.parent / "mesh/signing.pub")
    assert (code, stderr) == (1, "--upload-pack=touch /tmp/pwned: not a source: it starts with"
                                 " '-' or has a control character\n")
    assert not Path("/tmp/pwned").exists()


def test_a_redirect_off_https_is_refused(build: Path, node: Path, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    with https_server(build, tmp_path) as (server, url, ca):
        monkeypatch.setenv("SSL_CERT_FILE", str(ca))
        server.redirects[f"/{HOST}/manifest.json"] = "http://127.0.0.1:9/manifest.json"
        code, stderr = pull(url, node, build.parent / "mesh/signing.pub")
    assert (code, stderr) == (1, f"{url}/{HOST}/manifest.json: redirected to"
                                 " http://127.0.0.1:9/manifest.json, which is not https;"
                                 " refusing it\n")
    assert installed(node) == {"etc/hosts": b"127.0.0.1 localhost\n"}


def test_a_source_that_drips_is_cut_off(build: Path, node: Path, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(HttpsSource, "DEADLINE", 1)
    with https_server(build, tmp_path) as (server, url, ca):
        monkeypatch.setenv("SSL_CERT_FILE", str(ca))
        server.drip.add(f"/{HOST}/manifest.json")
        code, stderr = pull(url, node, build.parent / "mesh/signing.pub")
    assert code == 1 and stderr.startswith(f"{url}/{HOST}/manifest.json: too slow: ")


def test_a_frozen_source_is_an_error_once_the_manifest_expires(
        build: Path, node: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    trust = build.parent / "mesh/signing.pub"
    assert pull(build, node, trust)[0] == 0
    expires = json.loads((build / HOST / "manifest.json").read_bytes())["expires"]
    assert pull(build, node, trust) == (0, "")
    monkeypatch.setenv("VPCMESH_NOW", "2030-01-01T00:00:00Z")
    version = json.loads((build / HOST / "manifest.json").read_bytes())["version"]
    assert pull(build, node, trust) == (1, f"{build}: still serves version {version}, whose"
                                           f" manifest expired on {expires}: the source may be"
                                           " frozen (is the publish job running?)\n")


def test_a_corrupt_state_file_is_recovered_from(build: Path, node: Path) -> None:
    trust = build.parent / "mesh/signing.pub"
    assert pull(build, node, trust)[0] == 0
    before = installed(node)
    state = node / "var/lib/vpcmesh/state.json"
    state.write_text('{"version": "seven"')  # a full disk, mid-write
    result = invoke("-v", "pull", "--once", "--hostname", HOST, "--source", build, "--root",
                    node, "--age-key", KEYS / f"{HOST}.agekey", "--trust-key", trust,
                    "--restart-cmd", "true", "--health-cmd", "true")
    assert result.exit_code == 0, result.stderr
    assert "unreadable" in result.stderr and "moved to state.json.corrupt" in result.stderr
    assert installed(node) == before
    assert json.loads(state.read_text())["version"] > 0


def test_sigterm_unwinds_like_ctrl_c(tmp_path: Path) -> None:
    """systemd stops a pull with SIGTERM: it must unwind (and clean up) like Ctrl-C."""
    from vpcmesh.agent.pull import PullOptions
    from vpcmesh.commands import pull as pull_command
    from vpcmesh.errors import VpcmeshError

    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGHUP)}
    opts = PullOptions(HOST, KEYS / f"{HOST}.agekey", EXAMPLE / "mesh/signing.pub", tmp_path)
    try:
        with pytest.raises(VpcmeshError):
            pull_command.run("--x", "bundles", opts, True, 1)
        assert signal.getsignal(signal.SIGTERM) is pull_command._interrupted
    finally:
        for sig, old in saved.items():
            signal.signal(sig, old)
    with pytest.raises(KeyboardInterrupt):
        pull_command._interrupted(signal.SIGTERM, None)


@pytest.mark.skipif(os.geteuid() != 0, reason="bind mounts need root")
def test_a_bind_mounted_hosts_file_is_edited_in_place(build: Path, node: Path) -> None:
    hosts = node / "etc/hosts"
    subprocess.run(["mount", "--bind", str(hosts), str(hosts)], check=True)
    try:
        code, stderr = pull(build, node, build.parent / "mesh/signing.pub")
        assert code == 0, stderr
        assert b"# BEGIN vpcmesh example" in hosts.read_bytes()
        assert not [p for p in (node / "etc").iterdir() if p.name.startswith(".hosts")]
    finally:
        subprocess.run(["umount", str(hosts)], check=True)


def test_agent_install_refuses_lines_for_the_unit_and_a_wrong_trust_key(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    result = invoke("agent", "install", "--hostname", HOST, "--source",
                    "https://x.example/m\nExecStartPre=/bin/sh -c evil", "--trust-key",
                    EXAMPLE / "mesh/signing.pub", "--root", tmp_path / "a")
    assert (result.exit_code, result.stderr) == (
        1, "--source: has a control character (a newline would add a line to the unit or the"
           " crontab)\n")
    ec_pub = tmp_path / "ec.pub"
    ec_pub.write_bytes(ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    result = invoke("agent", "install", "--hostname", HOST, "--source", "https://x.example/m",
                    "--trust-key", ec_pub, "--root", tmp_path / "b")
    assert (result.exit_code, result.stderr) == (
        1, f"{ec_pub}: not an Ed25519 public key; use the mesh's mesh/signing.pub\n")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_agent_install_escapes_what_systemd_and_cron_would_expand(tmp_path: Path) -> None:
    for cron in (False, True):
        root = tmp_path / str(cron)
        result = invoke("agent", "install", "--hostname", HOST, "--source",
                        "https://x.example/a%20b", "--restart-cmd", "kill $MAINPID",
                        "--trust-key", EXAMPLE / "mesh/signing.pub", "--root", root,
                        *(["--cron"] if cron else []))
        assert result.exit_code == 0, result.stderr
        if cron:
            line = (root / "etc/cron.d/vpcmesh-pull").read_text().splitlines()[-1]
            assert "https://x.example/a\\%20b" in line and "kill $MAINPID" in line
        else:
            unit = (root / "etc/systemd/system/vpcmesh-pull.service").read_text()
            assert "https://x.example/a%%20b" in unit and "kill $$MAINPID" in unit


def test_a_broken_pipe_exits_quietly() -> None:
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "vpcmesh", "schema", "mesh"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # `| head`, gone before anything is written
    stderr = proc.stderr.read()
    assert (proc.wait(), stderr) == (141, b"")
