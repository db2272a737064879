"""Signed manifests: one version per change, reproducible without the key."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from vpcmesh.fsio import read_tree

from conftest import copy_example, invoke


def _manifest(repo: Path, host: str) -> dict[str, object]:
    loaded: dict[str, object] = json.loads((repo / f"build/{host}/manifest.json").read_bytes())
    return loaded


def _versions(repo: Path) -> dict[str, object]:
    return {p.parent.name: json.loads(p.read_bytes())["version"]
            for p in sorted((repo / "build").glob("*/manifest.json"))}


def test_manifest_is_signed_by_the_mesh_signing_key(example_repo: Path) -> None:
    invoke("render", "--repo", example_repo)
    key = load_pem_public_key((example_repo / "mesh/signing.pub").read_bytes())
    assert isinstance(key, Ed25519PublicKey)
    for host in ("aliyun-hz-1", "tencent-hz-1"):
        data = (example_repo / f"build/{host}/manifest.json").read_bytes()
        key.verify(base64.b64decode((example_repo / f"build/{host}/manifest.json.sig")
                                    .read_text()), data)
        files = read_tree(example_repo / f"build/{host}")
        listed = json.loads(data)["files"]
        assert sorted(listed) == sorted(set(files) - {"manifest.json", "manifest.json.sig"})


def test_a_change_bumps_only_the_nodes_it_touches(example_repo: Path, admin_key: Path) -> None:
    invoke("render", "--repo", example_repo)
    before = _versions(example_repo)
    node = example_repo / "nodes/huawei-hz-1.yaml"
    node.write_text(node.read_text().replace("192.168.50.0/24", "192.168.51.0/24"))
    assert invoke("render", "--repo", example_repo).exit_code == 0
    after = _versions(example_repo)
    # the hub's config and ccd change, and huawei's forwarding rules (not its OpenVPN
    # files: its routes are pushed); every node's hosts file is unchanged, since no DNS
    # record moved, and the other spokes' bundles are untouched
    assert {h: after[h] != before[h] for h in after} == {
        "aliyun-hz-1": True, "huawei-hz-1": True, "tencent-hz-1": False, "ucloud-hz-1": False}


def test_a_fresh_checkout_continues_the_sequence(example_repo: Path, admin_key: Path,
                                                 tmp_path: Path) -> None:
    mesh = example_repo / "mesh/mesh.yaml"
    mesh.write_text(mesh.read_text().replace("max_clients: 50", "max_clients: 60"))
    invoke("render", "--repo", example_repo)
    first = _versions(example_repo)["aliyun-hz-1"]
    fresh = copy_example(tmp_path / "fresh")
    for rel in ("mesh/mesh.yaml", "mesh/state.yaml"):
        (fresh / rel).write_bytes((example_repo / rel).read_bytes())
    (fresh / "mesh/mesh.yaml").write_text(mesh.read_text().replace("60", "70"))
    assert invoke("render", "--repo", fresh).exit_code == 0
    assert _versions(fresh)["aliyun-hz-1"] == first + 1  # type: ignore[operator]


def test_without_the_key_a_changed_bundle_has_no_manifest(example_repo: Path) -> None:
    mesh = example_repo / "mesh/mesh.yaml"
    mesh.write_text(mesh.read_text().replace("max_clients: 50", "max_clients: 60"))
    result = invoke("render", "--repo", example_repo)
    assert result.exit_code == 0
    assert result.stderr == (
        "secrets/mesh.sops.yaml: warning: not signed (no admin age key set): aliyun-hz-1;"
        " their manifests are left out until 'vpcmesh sign' runs with the key\n")
    assert not (example_repo / "build/aliyun-hz-1/manifest.json").exists()
    assert (example_repo / "build/tencent-hz-1/manifest.json").exists()
    result = invoke("sign", "--repo", example_repo)
    assert (result.exit_code, result.stderr) == (1, (
        "secrets/mesh.sops.yaml: signing bundles needs the admin age key; set SOPS_AGE_KEY_FILE"
        " to the age key file of one of the admins in mesh/mesh.yaml\n"))


def test_sign_with_the_key(example_repo: Path, admin_key: Path) -> None:
    invoke("render", "--repo", example_repo)
    before = _versions(example_repo)["aliyun-hz-1"]
    mesh = example_repo / "mesh/mesh.yaml"
    mesh.write_text(mesh.read_text().replace("max_clients: 50", "max_clients: 60"))
    assert invoke("sign", "--repo", example_repo).exit_code == 0
    assert _manifest(example_repo, "aliyun-hz-1")["version"] == before + 1  # type: ignore[operator]


def test_manifests_are_resigned_in_the_last_third(example_repo: Path, admin_key: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    invoke("render", "--repo", example_repo)
    before = _versions(example_repo)
    expires = _manifest(example_repo, "tencent-hz-1")["expires"]
    monkeypatch.setenv("VPCMESH_NOW", "2026-12-20T00:00:00Z")  # signed 11-25 for 30 days
    assert invoke("render", "--repo", example_repo).exit_code == 0
    assert _versions(example_repo) == {h: v + 1 for h, v in before.items()}  # type: ignore[operator]
    assert _manifest(example_repo, "tencent-hz-1")["expires"] != expires
