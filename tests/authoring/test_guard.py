from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from vpcmesh.pki import x509 as pki

from conftest import EXAMPLE, KEYS, invoke


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
    assert _guard(EXAMPLE) == (0, [])


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
    (repo / "secrets/mesh.sops.yaml").write_bytes((EXAMPLE / "secrets/mesh.sops.yaml").read_bytes())
    assert _guard(repo) == (1, [
        "secrets/db.yaml: not encrypted by sops; secrets/ holds SOPS-encrypted files only"])


def test_demo_keys_under_tests_are_allowed(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    (repo / "tests").mkdir()
    (repo / "tests/demo.agekey").write_text((KEYS / "admin.agekey").read_text())
    assert _guard(repo) == (0, [])


@pytest.mark.parametrize("output_type", ["yaml", "json", "dotenv"])
def test_decrypted_sops_output_is_refused_in_every_format(tmp_path: Path,
                                                          output_type: str) -> None:
    from vpcmesh.secrets import sops

    repo = _repo(tmp_path)
    plain = subprocess.run([sops.binary(), "decrypt", "--output-type", output_type,
                            str(EXAMPLE / "secrets/mesh.sops.yaml")], check=True,
                           capture_output=True,
                           env={"SOPS_AGE_KEY_FILE": str(KEYS / "admin.agekey")}).stdout
    (repo / f"backup.{output_type}").write_bytes(plain)
    code, lines = _guard(repo)
    assert code == 1 and len(lines) == 1
    assert lines[0].startswith(f"backup.{output_type}:")
    assert lines[0].endswith("a private key in plaintext; keep it only encrypted under"
                             " secrets/ (vpcmesh does that)")


def test_a_plaintext_file_with_a_fake_sops_block_is_refused(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    (repo / "secrets/db.sops.yaml").write_text("password: hunter2\nsops:\n  version: 3.9.0\n"
                                                "  mac: ENC[AES256_GCM,data:AA==,iv:AA==,"
                                                "tag:AA==,type:str]\n  age:\n"
                                                "    - recipient: age1x\n      enc: |\n"
                                                "        -----BEGIN AGE ENCRYPTED FILE-----\n")
    assert _guard(repo) == (1, ["secrets/db.sops.yaml: not encrypted by sops ('password' is"
                                " not encrypted); secrets/ holds SOPS-encrypted files only"])
