"""`vpcmesh pull` against real sources: a folder, a git repository, an https server."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from vpcmesh.fsio import read_tree

from bundlekit import bump, git_bundles, https_server, resign, signing_key
from conftest import KEYS, invoke

HOST = "tencent-hz-1"


def pull(source: str | Path, root: Path, *extra: str, key: str = HOST,
         trust: Path | None = None, host: str = HOST) -> tuple[int, str]:
    trust_key = trust or (Path(str(source)).parent / "mesh/signing.pub")
    result = invoke("pull", "--hostname", host, "--source", source, "--root", root,
                    "--age-key", KEYS / f"{key}.agekey", "--trust-key", trust_key, "--once",
                    "--restart-cmd", f"echo restarted >> {root}/restarts", "--health-cmd",
                    "true", *extra)
    return result.exit_code, result.stderr


def _conf_size(build: Path) -> int:
    """What the manifest says the spoke's config weighs."""
    manifest = json.loads((build / HOST / "manifest.json").read_bytes())
    return int(manifest["files"]["openvpn/example.conf"]["size"])


def version(build: Path, host: str = HOST) -> int:
    return int(json.loads((build / host / "manifest.json").read_bytes())["version"])


def installed(root: Path) -> dict[str, bytes]:
    """The installed bundle; not the agent's state, nor its report to the hub (which says
    how the last pull went, so a refused bundle changes it)."""
    return {k: v for k, v in read_tree(root).items()
            if not k.startswith("var/") and k not in ("restarts", "stops")
            and not k.endswith("/vpcmesh-report.conf")}


def restarts(root: Path) -> int:
    return len((root / "restarts").read_text().splitlines()) if (root / "restarts").exists() else 0


def test_pull_from_a_folder_installs_and_then_does_nothing(build: Path, node: Path) -> None:
    assert pull(build, node) == (0, f"installed version {version(build)} and restarted OpenVPN\n")
    files = installed(node)
    assert sorted(files) == [
        "etc/hosts", "etc/openvpn/client/ca.crt", "etc/openvpn/client/crl.pem",
            "etc/openvpn/client/example.conf",
        "etc/openvpn/client/tencent-hz-1.crt", "etc/openvpn/client/tencent-hz-1.key",
        "etc/openvpn/client/tls.key", "etc/sysctl.d/60-vpcmesh-example.conf",
        "etc/systemd/system/openvpn-client@example.service.d/vpcmesh.conf",
        "etc/vpcmesh/firewall-example.nft"]
    assert (node / "etc/openvpn/client/tencent-hz-1.key").stat().st_mode & 0o777 == 0o600
    assert files["etc/hosts"].startswith(b"127.0.0.1 localhost\n# BEGIN vpcmesh example\n")
    assert pull(build, node) == (0, "")
    assert installed(node) == files and restarts(node) == 1
    status = invoke("pull", "--status", "--root", node).stdout
    assert f"version: {version(build)}\n" in status and "hostname: tencent-hz-1\n" in status


def test_pull_from_git(build: Path, node: Path, tmp_path: Path) -> None:
    remote = git_bundles(build, tmp_path / "remote")
    trust = build.parent / "mesh/signing.pub"
    assert pull(remote, node, trust=trust)[0] == 0
    assert (node / "etc/openvpn/client/example.conf").read_bytes() == (
        build / HOST / "openvpn/example.conf").read_bytes()
    assert pull(remote, node, trust=trust) == (0, "")


def test_pull_from_https_transfers_only_the_manifest_when_nothing_is_new(
        build: Path, node: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with https_server(build, tmp_path) as (server, url, ca):
        monkeypatch.setenv("SSL_CERT_FILE", str(ca))
        trust = build.parent / "mesh/signing.pub"
        assert pull(url, node, trust=trust)[0] == 0
        server.requests.clear()
        server.sent = 0
        assert pull(url, node, trust=trust) == (0, "")
        assert server.requests == [f"/{HOST}/manifest.json"]
        assert server.sent == 0  # 304 Not Modified: the ETag matched


def _reject(source: str | Path, node: Path, expected: str, **kwargs: object) -> None:
    before = installed(node)
    code, stderr = pull(source, node, **kwargs)  # type: ignore[arg-type]
    assert (code, stderr.splitlines()[0]) == (1, expected)
    assert installed(node) == before
    state = json.loads((node / "var/lib/vpcmesh/state.json").read_bytes())
    assert state["last_error"] == expected


@pytest.fixture
def installed_node(build: Path, node: Path) -> Path:
    assert pull(build, node)[0] == 0
    return node


def test_bad_signature(build: Path, installed_node: Path) -> None:
    manifest = build / HOST / "manifest.json"
    current = f'"version":{version(build)}'.encode()
    tampered = manifest.read_bytes().replace(current, b'"version":99')
    assert tampered != manifest.read_bytes()
    manifest.write_bytes(tampered)
    _reject(build, installed_node, f"{build}: manifest signature does not verify with"
                                   f" {build.parent}/mesh/signing.pub; refusing the bundle")


def test_tampered_file(build: Path, installed_node: Path) -> None:
    key = signing_key(build.parent)
    resign(build / HOST, key, bump)
    (build / HOST / "openvpn/example.conf").write_text("script-security 2\nup /bin/sh\n")
    _reject(build, installed_node, f"{build}/{HOST}/openvpn/example.conf: does not match the"
                                   f" manifest (29 of {_conf_size(build)} bytes, or another"
                                   " SHA-256); refusing the bundle")


def test_older_version(build: Path, node: Path, tmp_path: Path) -> None:
    old = shutil.copytree(build, tmp_path / "old")
    resign(build / HOST, signing_key(build.parent), bump)
    assert pull(build, node)[0] == 0
    v = version(old)
    _reject(old, node, f"{old}: version {v} is older than the installed {v + 1}; refusing a"
                       " rollback", trust=build.parent / "mesh/signing.pub")


def test_expired_manifest(build: Path, node: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    expires = json.loads((build / HOST / "manifest.json").read_bytes())["expires"]
    monkeypatch.setenv("VPCMESH_NOW", expires)
    _reject(build, node, f"{build}: the manifest expired on {expires}; the source may be"
                         " frozen or stale")


def test_another_nodes_bundle(build: Path, installed_node: Path) -> None:
    shutil.rmtree(build / HOST)
    shutil.copytree(build / "huawei-hz-1", build / HOST)
    _reject(build, installed_node, f"{build}: the manifest is for 'huawei-hz-1', not"
                                   f" '{HOST}'; refusing another node's bundle")


def test_undecryptable_secrets(build: Path, installed_node: Path) -> None:
    resign(build / HOST, signing_key(build.parent), bump)
    _reject(build, installed_node, f"{HOST}/secrets.sops.yaml: cannot decrypt it: the age key"
                                   f" in {KEYS}/huawei-hz-1.agekey is not one of its recipients",
            key="huawei-hz-1")


def test_truncated_download(build: Path, installed_node: Path, tmp_path: Path,
                            monkeypatch: pytest.MonkeyPatch) -> None:
    resign(build / HOST, signing_key(build.parent), bump)
    trust = build.parent / "mesh/signing.pub"
    with https_server(build, tmp_path) as (server, url, ca):
        monkeypatch.setenv("SSL_CERT_FILE", str(ca))
        server.truncate.add(f"/{HOST}/openvpn/example.conf")
        size = _conf_size(build)
        _reject(url, installed_node, f"{url}/{HOST}/openvpn/example.conf: truncated:"
                                     f" {size // 2} of {size}"
                                     " bytes arrived", trust=trust)


def test_source_unreachable(build: Path, installed_node: Path, tmp_path: Path) -> None:
    trust = build.parent / "mesh/signing.pub"
    _reject("https://127.0.0.1:9/", installed_node,
            f"https://127.0.0.1:9/{HOST}/manifest.json: cannot fetch: [Errno 111] Connection"
            " refused", trust=trust)
    missing = tmp_path / "no-such-remote"
    code, stderr = pull(str(missing), installed_node, trust=trust)
    assert code == 1 and stderr.startswith(f"{missing}: cannot fetch branch 'bundles':")


def test_a_version_that_cannot_start_is_rolled_back_and_retried_with_backoff(
        build: Path, node: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert pull(build, node)[0] == 0
    before, v = installed(node), version(build)
    mesh_conf = build / HOST / "openvpn/example.conf"
    resign(build / HOST, signing_key(build.parent), bump,
           {"openvpn/example.conf": mesh_conf.read_bytes() + b"verb 4\n"})
    code, stderr = pull(build, node, "--health-cmd", "false", "--health-timeout", "0")
    assert (code, stderr.splitlines()) == (1, [
        f"{node}/etc/openvpn/client: version {v + 1} did not start within 0s; restored"
        f" version {v} and restarted it; trying it again after 2026-12-01T00:02:00Z"])
    assert installed(node) == before
    assert restarts(node) == 3  # install, the failed version, the restored one
    # Not before its time: the next timer run leaves it alone...
    assert pull(build, node) == (1, f"{build}: version {v + 1} failed its health check (1"
                                    " time(s)); trying it again after 2026-12-01T00:02:00Z\n")
    assert restarts(node) == 3
    # ... then tries again, and waits twice as long after a second failure ...
    monkeypatch.setenv("VPCMESH_NOW", "2026-12-01T00:02:00Z")
    code, stderr = pull(build, node, "--health-cmd", "false", "--health-timeout", "0")
    assert code == 1 and stderr.endswith("; trying it again after 2026-12-01T00:06:00Z\n")
    status = json.loads(invoke("pull", "--status", "--json", "--root", node).stdout)
    assert (status["version"], status["failed_version"], status["attempts"],
            status["next_retry"]) == (v, v + 1, 2, "2026-12-01T00:06:00Z")
    # ... and never gives up: once the cause is gone, the version goes in.
    monkeypatch.setenv("VPCMESH_NOW", "2026-12-01T00:06:00Z")
    assert pull(build, node) == (0, f"installed version {v + 1} and restarted OpenVPN\n")
    status = json.loads(invoke("pull", "--status", "--json", "--root", node).stdout)
    assert (status["version"], status["failed_version"], status["attempts"]) == (v + 1, None, 0)


def test_backoff_is_capped_at_thirty_minutes() -> None:
    from vpcmesh.agent.pull import retry_after

    assert [int(retry_after(n).total_seconds() // 60) for n in range(1, 8)] == [
        2, 4, 8, 16, 30, 30, 30]


def test_a_first_install_that_cannot_start_stops_the_unit(build: Path, node: Path) -> None:
    code, stderr = pull(build, node, "--health-cmd", "false", "--health-timeout", "0",
                        "--stop-cmd", f"echo stopped >> {node}/stops")
    assert (code, stderr.splitlines()) == (1, [
        f"{node}/etc/openvpn/client: version {version(build)} did not start within 0s; nothing"
        " was installed before, so OpenVPN is stopped; trying it again after"
        " 2026-12-01T00:02:00Z"])
    assert installed(node) == {"etc/hosts": b"127.0.0.1 localhost\n"}
    assert (node / "stops").read_text() == "stopped\n" and restarts(node) == 1


def test_a_tunnel_that_is_not_up_yet_keeps_the_new_version(build: Path, node: Path) -> None:
    code, stderr = pull(build, node, "--health-cmd", "exit 75", "--health-timeout", "0")
    assert (code, stderr) == (1, f"{node}/etc/openvpn/client: version {version(build)} is"
                                 " installed and OpenVPN runs, but its tunnel did not come up"
                                 " within 0s (has the hub pulled its bundle with this node?);"
                                 " keeping it, OpenVPN keeps trying\n")
    assert "etc/openvpn/client/example.conf" in installed(node)


def test_a_different_bundle_under_the_same_version_is_installed(build: Path,
                                                                installed_node: Path) -> None:
    # Versions cannot collide any more, but an agent must never sit on a stale bundle because
    # two differed only in content: it compares the manifest's digest too.
    conf = build / HOST / "openvpn/example.conf"
    resign(build / HOST, signing_key(build.parent), lambda m: None,
           {"openvpn/example.conf": conf.read_bytes() + b"verb 4\n"})
    assert pull(build, installed_node) == (
        0, f"installed version {version(build)} and restarted OpenVPN\n")
    assert (installed_node / "etc/openvpn/client/example.conf").read_bytes().endswith(
        b"verb 4\n")


def test_overlapping_runs_are_safe(build: Path, node: Path) -> None:
    import fcntl
    import os

    (node / "var/lib/vpcmesh").mkdir(parents=True)
    fd = os.open(node / "var/lib/vpcmesh/lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        assert pull(build, node) == (0, "")
        assert installed(node) == {"etc/hosts": b"127.0.0.1 localhost\n"}
    finally:
        os.close(fd)


def test_removed_files_are_removed(build: Path, node: Path) -> None:
    bundle = build / "aliyun-hz-1"
    assert pull(build, node, key="aliyun-hz-1", host="aliyun-hz-1")[0] == 0
    assert (node / "etc/openvpn/server/ccd/ucloud-hz-1").exists()
    (bundle / "openvpn/ccd/ucloud-hz-1").unlink()

    def drop(manifest: dict[str, object]) -> None:
        bump(manifest)
        del manifest["files"]["openvpn/ccd/ucloud-hz-1"]  # type: ignore[attr-defined]

    resign(bundle, signing_key(build.parent), drop)
    assert pull(build, node, key="aliyun-hz-1", host="aliyun-hz-1")[0] == 0
    assert not (node / "etc/openvpn/server/ccd/ucloud-hz-1").exists()
    assert (node / "etc/openvpn/server/ccd/huawei-hz-1").exists()


def test_a_noop_pull_loads_no_compiler_code(build: Path, node: Path) -> None:
    # Every VM runs this every two minutes: it must not pay for the compiler's imports.
    assert pull(build, node)[0] == 0
    script = (
        "import runpy, sys\n"
        f"sys.argv = ['vpcmesh', 'pull', '--once', '--hostname', '{HOST}', '--source',"
        f" '{build}', '--age-key', '{KEYS / (HOST + '.agekey')}', '--trust-key',"
        f" '{build.parent / 'mesh/signing.pub'}', '--root', '{node}']\n"
        "try:\n    runpy.run_module('vpcmesh', run_name='__main__')\n"
        "except SystemExit as exc:\n    assert exc.code == 0, exc.code\n"
        "heavy = ('jinja2', 'jsonschema', 'ruamel', 'git', 'vpcmesh.pki', 'vpcmesh.model',"
        " 'vpcmesh.planning', 'vpcmesh.rendering', 'vpcmesh.compiler', 'vpcmesh.authoring',"
        " 'vpcmesh.secrets.sops')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy"
        " or m.startswith(tuple(h + '.' for h in heavy)) or m in heavy))\n")
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True).stdout
    assert out == "[]\n"


@pytest.mark.parametrize(("step", "left"), [
    ("_write", []),  # interrupted while staging: nothing was installed yet
    ("put_file", ["a.key"]),  # between two renames: the renamed key is in place, 0600
])
def test_an_interrupted_install_leaves_no_staged_key(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     step: str, left: list[str]) -> None:
    from vpcmesh.agent import install

    root = tmp_path / "root"
    target = root / "etc/openvpn/client"
    desired = {target / "a.key": (b"-----BEGIN PRIVATE KEY-----\nsecret\n", 0o600),
               target / "b.conf": (b"verb 3\n", 0o644)}
    real, calls = getattr(install, step), []

    def interrupted(*args: object) -> object:
        calls.append(args)
        if len(calls) == 2:
            raise KeyboardInterrupt  # Ctrl-C, or SIGTERM unwound as one
        return real(*args)

    monkeypatch.setattr(install, step, interrupted)
    with pytest.raises(KeyboardInterrupt):
        install.Installer(root, desired, []).install()
    assert sorted(p.name for p in target.iterdir()) == left


def test_a_new_crl_alone_restarts_no_spoke(build: Path, node: Path, admin_key: Path) -> None:
    # Spokes check their hub against the CRL, which OpenVPN re-reads at each handshake.
    assert pull(build, node)[0] == 0 and restarts(node) == 1
    repo = build.parent
    assert invoke("pki", "revoke", "ucloud-hz-1", "--repo", repo).exit_code == 0
    assert invoke("render", "--repo", repo).exit_code == 0
    assert pull(build, node) == (0, f"installed version {version(build)} without a restart\n")
    assert restarts(node) == 1
    crl = (node / "etc/openvpn/client/crl.pem").read_bytes()
    assert crl == (build / HOST / "openvpn/crl.pem").read_bytes()
