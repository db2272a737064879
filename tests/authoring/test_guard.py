from __future__ import annotations

import subprocess
from pathlib import Path

from vpcmesh.pki import x509 as pki

from conftest import KEYS, ROOT, invoke


def _repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    (repo / "secrets").mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "secrets/.gitkeep").write_text("")
    return repo


def _guard(repo: Path) -> tuple[int, list[str]]:
    result = invoke("guard", "--repo", repo)
    return result.exit_code, result.stderr.splitlines()


def test_this_repository_is_clean() -> None:
    assert _guard(ROOT) == (0, [])


def test_every_kind_of_plaintext_key_is_refused(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    key = pki.generate_key("ec-p256")
    (repo / "ca.key").write_text("note\n" + pki.key_pem(key))
    (repo / "node.agekey").write_text((KEYS / "admin.agekey").read_text())
    (repo / "tls.key").write_text(pki.openvpn_static_key())
    (repo / "README.md").write_text("keys look like -----BEGIN PRIVATE KEY----- (not one)\n")
    fix = "a private key in plaintext; keep it only encrypted under secrets/ (vpcmesh does that)"
    assert _guard(repo) == (1, [f"ca.key:2:1: {fix}", f"node.agekey:3:1: {fix}",
                                f"tls.key:4:1: {fix}"])


def test_secrets_must_be_sops_files(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    (repo / "secrets/db.yaml").write_text("password: hunter2\n")
    (repo / "secrets/mesh.sops.yaml").write_bytes((ROOT / "secrets/mesh.sops.yaml").read_bytes())
    assert _guard(repo) == (1, [
        "secrets/db.yaml: not encrypted by sops; secrets/ holds SOPS-encrypted files only"])


def test_demo_keys_under_tests_are_allowed(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    (repo / "tests").mkdir()
    (repo / "tests/demo.agekey").write_text((KEYS / "admin.agekey").read_text())
    assert _guard(repo) == (0, [])
