"""`vpcmesh pki rotate signing-key`, as the agents on the VMs see it (real sops, real pulls)."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from vpcmesh.bundle import keychain

from bundlekit import bump, resign, signing_key
from conftest import KEYS, invoke

HOST = "tencent-hz-1"


def _pull(build: Path, root: Path, trust: Path) -> tuple[int, str]:
    result = invoke("pull", "--hostname", HOST, "--source", build, "--root", root,
                    "--age-key", KEYS / f"{HOST}.agekey", "--trust-key", trust, "--once",
                    "--restart-cmd", "true", "--health-cmd", "true")
    return result.exit_code, result.stderr


def _vm(build: Path, tmp_path: Path, name: str) -> tuple[Path, Path]:
    """A VM bootstrapped with the mesh's signing.pub as it is now, with the bundle installed."""
    root = tmp_path / name
    (root / "etc/vpcmesh").mkdir(parents=True)
    (root / "etc/hosts").write_text("127.0.0.1 localhost\n")
    trust = root / "etc/vpcmesh/signing.pub"
    shutil.copyfile(build.parent / "mesh/signing.pub", trust)
    assert _pull(build, root, trust)[0] == 0
    return root, trust


def _verifies(build: Path, host: str, pem: bytes) -> bool:
    key = keychain.load_keys(pem, "k")[0]
    try:
        key.verify(base64.b64decode((build / host / "manifest.json.sig").read_bytes()),
                   (build / host / "manifest.json").read_bytes())
    except Exception:
        return False
    return True


def test_every_vm_follows_a_rotation_at_its_next_pull(build: Path, admin_key: Path,
                                                        tmp_path: Path) -> None:
    repo = build.parent
    old_pub = (repo / "mesh/signing.pub").read_bytes()
    awake, awake_trust = _vm(build, tmp_path, "awake")
    asleep, asleep_trust = _vm(build, tmp_path, "asleep")
    versions = {h.name: json.loads((h / "manifest.json").read_bytes())["version"]
                for h in build.iterdir() if (h / "manifest.json").is_file()}

    result = invoke("pki", "rotate", "signing-key", "--repo", repo)
    assert result.exit_code == 0, result.stderr
    assert "rotated the bundle-signing key" in result.stderr
    new_pub = (repo / "mesh/signing.pub").read_bytes()
    assert new_pub != old_pub
    for host, before in versions.items():  # every manifest signed again, by the new key only
        assert json.loads((build / host / "manifest.json").read_bytes())["version"] == before + 1
        assert _verifies(build, host, new_pub) and not _verifies(build, host, old_pub)
        assert (build / host / "signing-keys.json").read_bytes() == (
            repo / "mesh/signing-keys.json").read_bytes()
    assert "signing_key:" in (repo / "mesh/state.yaml").read_text()
    assert b"PRIVATE" not in (repo / "mesh/signing-keys.json").read_bytes()

    code, err = _pull(build, awake, awake_trust)
    assert code == 0, err
    assert "trusting signing key(s)" in err
    assert awake_trust.read_bytes() == new_pub
    assert _pull(build, awake, awake_trust) == (0, "")  # and quiet from then on

    # Two more rotations: the VM that slept through all three follows them in one pull.
    for _ in range(2):
        assert invoke("pki", "rotate", "signing-key", "--repo", repo).exit_code == 0
    newest = (repo / "mesh/signing.pub").read_bytes()
    code, err = _pull(build, asleep, asleep_trust)
    assert code == 0, err
    assert "link 2, 3, 4" in err and asleep_trust.read_bytes() == newest

    # A render of unchanged input changes nothing, the signatures included.
    before = {p: p.read_bytes() for p in build.rglob("*") if p.is_file()}
    assert invoke("render", "--repo", repo).exit_code == 0
    assert {p: p.read_bytes() for p in build.rglob("*") if p.is_file()} == before


def test_a_retired_key_signs_nothing_a_moved_vm_accepts(build: Path, admin_key: Path,
                                                          tmp_path: Path) -> None:
    repo = build.parent
    stolen = signing_key(repo)  # the key that leaked, and why the admins rotate
    vm, trust = _vm(build, tmp_path, "vm")
    assert invoke("pki", "rotate", "signing-key", "--repo", repo).exit_code == 0
    assert _pull(build, vm, trust)[0] == 0
    resign(build / HOST, stolen, bump)
    code, err = _pull(build, vm, trust)
    assert code == 1 and "manifest signature does not verify" in err


def test_a_chain_the_thief_extends_moves_no_vm(build: Path, admin_key: Path,
                                               tmp_path: Path) -> None:
    """Whoever serves the bundles (or holds a retired key) cannot hand a VM a key of theirs."""
    vm, trust = _vm(build, tmp_path, "vm")
    before = trust.read_bytes()
    thief = Ed25519PrivateKey.generate()
    chain = keychain.Chain("example", ()).extend([thief.public_key()], "2026-12-01T00:00:00Z",
                                                 thief.sign)
    (build / HOST / "signing-keys.json").write_bytes(chain.to_bytes())
    resign(build / HOST, thief, bump)  # type: ignore[arg-type]
    code, err = _pull(build, vm, trust)
    assert code == 1 and "does not verify" in err
    assert trust.read_bytes() == before


def test_an_interrupted_rotation_signs_nothing(build: Path, admin_key: Path) -> None:
    """Cut short after the new secret was written: no bundle is signed with a key no VM
    would trust, and the message says how to start again."""
    repo = build.parent
    kept = {rel: (repo / rel).read_bytes() for rel in ("mesh/signing.pub",)}
    assert invoke("pki", "rotate", "signing-key", "--repo", repo).exit_code == 0
    for rel, data in kept.items():
        (repo / rel).write_bytes(data)
    (repo / "mesh/signing-keys.json").unlink()
    (repo / "nodes/tencent-hz-1.yaml").write_text(
        (repo / "nodes/tencent-hz-1.yaml").read_text() + "\n# a change to sign\n")
    result = invoke("sign", "--repo", repo)
    assert result.exit_code == 1
    assert "secrets/mesh.sops.yaml: its signing_key is not in mesh/signing.pub" in result.stderr
    assert "restore mesh/ and secrets/ from git" in result.stderr


def test_rotation_needs_the_admin_key(build: Path) -> None:
    result = invoke("pki", "rotate", "signing-key", "--repo", build.parent)
    assert result.exit_code == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith("secrets/mesh.sops.yaml")


def test_a_vm_removed_after_a_rotation_follows_the_chain_to_its_notice(
        build: Path, admin_key: Path, tmp_path: Path) -> None:
    repo = build.parent
    vm, trust = _vm(build, tmp_path, "vm")
    assert invoke("pki", "rotate", "signing-key", "--repo", repo).exit_code == 0
    for args in (("node", "remove", HOST), ("sign",)):
        assert invoke(*args, "--repo", repo).exit_code == 0
    assert sorted(p.name for p in (build / HOST).iterdir()) == [
        "removed.json", "removed.json.sig", "signing-keys.json"]
    code, err = _pull(build, vm, trust)
    assert code == 0 and "trusting signing key(s)" in err, err
    assert not (vm / "etc/openvpn/client/example.conf").exists()  # it left
