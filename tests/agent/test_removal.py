"""A node removed from the mesh leaves on its own: the compiler publishes a notice signed
with the mesh's key in place of its bundle, and its agent uninstalls itself on the next
pull. Nothing else makes it leave: no notice, a forged one, or one from an older life of
the node."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from vpcmesh.fsio import read_tree

from conftest import EXAMPLE, KEYS, invoke

HOST = "tencent-hz-1"
HOSTS = "127.0.0.1 localhost\n"


def pull(build: Path, root: Path) -> tuple[int, str]:
    result = invoke("pull", "--once", "--hostname", HOST, "--source", build, "--root", root,
                    "--age-key", KEYS / f"{HOST}.agekey", "--trust-key",
                    build.parent / "mesh/signing.pub", "--restart-cmd", "true",
                    "--health-cmd", "true", "--stop-cmd", "true")
    return result.exit_code, result.stderr


def installed(build: Path, node: Path) -> None:
    code, stderr = pull(build, node)
    assert code == 0, stderr
    assert (node / "etc/openvpn/client/example.conf").exists()


def remove(repo: Path) -> None:
    for args in (("node", "remove", HOST), ("sign",)):
        result = invoke(*args, "--repo", repo)
        assert result.exit_code == 0, result.stderr


def serve_only(bundle: Path, files: dict[str, bytes]) -> None:
    """The source's folder for this node holds `files` and nothing else."""
    shutil.rmtree(bundle)
    bundle.mkdir()
    for name, data in files.items():
        (bundle / name).write_bytes(data)


def test_a_removed_node_uninstalls_itself(build: Path, node: Path, admin_key: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    repo = build.parent
    last = json.loads((build / HOST / "manifest.json").read_bytes())["version"]
    installed(build, node)
    remove(repo)
    assert sorted(p.name for p in (build / HOST).iterdir()) == ["removed.json",
                                                                "removed.json.sig"]
    notice = json.loads((build / HOST / "removed.json").read_text())
    assert notice == {"after_version": last, "format": 1, "hostname": HOST,
                      "kind": "vpcmesh-removal", "mesh": "example"}
    assert f"removals:\n  tencent-hz-1:\n    after_version: {last}\n" in \
        (repo / "mesh/state.yaml").read_text()
    # Without the key, a render reproduces the notice byte for byte from the state.
    before = read_tree(build)
    monkeypatch.delenv("SOPS_AGE_KEY_FILE")
    assert invoke("render", "--repo", repo).exit_code == 0
    assert read_tree(build) == before

    code, stderr = pull(build, node)
    assert (code, stderr) == (0, f"{HOST} was removed from the mesh (a notice signed with the"
                                 f" mesh's key, after version {last}): stopped OpenVPN and the"
                                 " timer, removed the installed files; the age key stays\n")
    left = sorted(p.relative_to(node).as_posix() for p in node.rglob("*") if p.is_file())
    assert left == ["etc/hosts"]
    assert (node / "etc/hosts").read_text() == HOSTS


def test_a_forged_notice_changes_nothing(build: Path, node: Path) -> None:
    installed(build, node)
    notice = (b'{"after_version":99,"format":1,"hostname":"tencent-hz-1",'
              b'"kind":"vpcmesh-removal","mesh":"example"}\n')
    other = Ed25519PrivateKey.generate()
    serve_only(build / HOST, {"removed.json": notice, "removed.json.sig":
                              base64.b64encode(other.sign(notice)) + b"\n"})
    code, stderr = pull(build, node)
    assert (code, stderr) == (1, f"{build}/{HOST}/removed.json: removal notice signature does"
                                 f" not verify with {build.parent}/mesh/signing.pub; refusing"
                                 " it\n")
    assert (node / "etc/openvpn/client/example.conf").exists()


def test_a_notice_from_an_older_life_of_the_node_is_ignored(
        build: Path, node: Path, admin_key: Path) -> None:
    repo = build.parent
    remove(repo)
    notice_files = {p.name: p.read_bytes() for p in (build / HOST).iterdir()}
    # The node comes back: its versions continue above the notice's.
    (repo / "nodes" / f"{HOST}.yaml").write_bytes((EXAMPLE / "nodes" / f"{HOST}.yaml"
                                                   ).read_bytes())
    result = invoke("sign", "--repo", repo)
    assert result.exit_code == 0, result.stderr
    installed(build, node)
    version = json.loads((build / HOST / "manifest.json").read_text())["version"]
    assert version > 8
    serve_only(build / HOST, notice_files)  # a source that serves the old notice
    code, stderr = pull(build, node)
    assert (code, stderr) == (1, f"{build}/{HOST}/manifest.json: missing from the source; if"
                                 " this node was removed from the mesh, run 'vpcmesh agent"
                                 " uninstall' on it\n")
    assert (node / "etc/openvpn/client/example.conf").exists()


def test_sign_takes_the_admin_key_from_the_environment_as_the_publish_workflow_gives_it(
        build: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """publish.yml hands the key to sops as SOPS_AGE_KEY: no file is written."""
    key = "\n".join(line for line in (KEYS / "admin.agekey").read_text().splitlines()
                    if line.startswith("AGE-SECRET-KEY-"))
    monkeypatch.setenv("SOPS_AGE_KEY", key)
    remove(build.parent)
    assert (build / HOST / "removed.json.sig").exists()
