"""Issuing through `vpcmesh render` with real sops and age: what is (re)encrypted, when."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from cryptography import x509

from vpcmesh.fsio import read_tree
from vpcmesh.secrets import sops

from conftest import KEYS, SopsCalls, add_spoke, age_recipient, invoke


def _tree(repo: Path) -> dict[str, bytes]:
    return {f"{d}/{k}": v for d in ("secrets", "mesh", "build") for k, v in
            read_tree(repo / d).items()}


def _decrypt(path: Path, key: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sops.binary(), "decrypt", "--output-type", "json", str(path)],
                          env={"SOPS_AGE_KEY_FILE": str(KEYS / f"{key}.agekey"),
                               "SOPS_DISABLE_VERSION_CHECK": "1", "HOME": "/nonexistent"},
                          capture_output=True, check=False)


def test_new_node_is_issued_with_one_sops_call(base_repo: Path, admin_key: Path,
                                               sops_calls: SopsCalls) -> None:
    add_spoke(base_repo, "spoke-3", "172.23.0.0/24", key="huawei-hz-1")
    result = invoke("render", "--repo", base_repo)
    assert result.exit_code == 0, result.stderr
    # one to read the CA key, one to encrypt the new node's secrets
    assert sops_calls.commands() == ["decrypt", "encrypt"]
    cert = x509.load_pem_x509_certificate(
        (base_repo / "build/spoke-3/openvpn/spoke-3.crt").read_bytes())
    assert cert.subject.rfc4514_string() == "CN=spoke-3"
    bundle = base_repo / "build/spoke-3/secrets.sops.yaml"
    assert bundle.read_bytes() == (base_repo / "secrets/nodes/spoke-3.sops.yaml").read_bytes()
    opened = _decrypt(bundle, "huawei-hz-1")
    assert opened.returncode == 0, opened.stderr
    files = json.loads(opened.stdout)["files"]
    assert sorted(files) == ["spoke-3.key", "tls.key"]
    assert files["spoke-3.key"].startswith("-----BEGIN PRIVATE KEY-----")


def test_a_node_cannot_read_another_nodes_secrets(base_repo: Path) -> None:
    # spoke-1's file is encrypted to tencent-hz-1's key and the admin, not to huawei's
    assert _decrypt(base_repo / "secrets/nodes/spoke-1.sops.yaml", "huawei-hz-1").returncode != 0
    assert _decrypt(base_repo / "secrets/nodes/spoke-1.sops.yaml", "tencent-hz-1").returncode == 0
    assert _decrypt(base_repo / "secrets/mesh.sops.yaml", "tencent-hz-1").returncode != 0


def test_rerender_changes_no_byte_and_calls_no_sops(base_repo: Path, admin_key: Path,
                                                    sops_calls: SopsCalls) -> None:
    invoke("render", "--repo", base_repo)
    before = _tree(base_repo)
    sops_calls.reset()
    assert invoke("render", "--repo", base_repo).exit_code == 0
    assert _tree(base_repo) == before
    assert sops_calls.commands() == []


def test_subnet_change_needs_no_key_and_touches_no_secret(base_repo: Path,
                                                          sops_calls: SopsCalls) -> None:
    invoke("render", "--repo", base_repo)
    before = read_tree(base_repo / "secrets")
    node = base_repo / "nodes/spoke-1.yaml"
    node.write_text(node.read_text().replace("[172.21.0.0/24]", "[172.21.0.0/24, 172.29.1.0/24]"))
    assert invoke("render", "--repo", base_repo).exit_code == 0
    assert sops_calls.commands() == []
    assert read_tree(base_repo / "secrets") == before
    assert "iroute 172.29.1.0 255.255.255.0" in (
        base_repo / "build/hub-1/openvpn/ccd/spoke-1").read_text()


def test_changing_a_nodes_age_key_reencrypts_only_that_node(base_repo: Path, admin_key: Path,
                                                            sops_calls: SopsCalls) -> None:
    before = read_tree(base_repo / "secrets")
    node = base_repo / "nodes/spoke-2.yaml"
    node.write_text(node.read_text().replace(age_recipient("tencent-hz-1"),
                                             age_recipient("ucloud-hz-1")))
    assert invoke("render", "--repo", base_repo).exit_code == 0, sops_calls.commands()
    after = read_tree(base_repo / "secrets")
    assert [k for k in after if after[k] != before.get(k)] == ["nodes/spoke-2.sops.yaml"]
    assert sops_calls.commands() == ["decrypt", "rotate"]
    assert _decrypt(base_repo / "secrets/nodes/spoke-2.sops.yaml", "ucloud-hz-1").returncode == 0
    assert _decrypt(base_repo / "secrets/nodes/spoke-2.sops.yaml", "tencent-hz-1").returncode != 0


def test_removing_a_node_revokes_it_in_the_hubs_crl(base_repo: Path, admin_key: Path) -> None:
    serial = x509.load_pem_x509_certificate(
        (base_repo / "mesh/pki/issued/spoke-2.crt").read_bytes()).serial_number
    (base_repo / "nodes/spoke-2.yaml").unlink()
    result = invoke("-v", "render", "--repo", base_repo)
    assert result.exit_code == 0, result.stderr
    assert "revoked the certificate of spoke-2: node removed" in result.stderr
    crl = x509.load_pem_x509_crl((base_repo / "build/hub-1/openvpn/crl.pem").read_bytes())
    assert crl.get_revoked_certificate_by_serial_number(serial) is not None
    assert not (base_repo / "mesh/pki/issued/spoke-2.crt").exists()
    assert not (base_repo / "secrets/nodes/spoke-2.sops.yaml").exists()
    assert not (base_repo / "build/hub-1/openvpn/ccd/spoke-2").exists()


def test_role_change_reissues_with_the_server_usage(base_repo: Path, admin_key: Path) -> None:
    (base_repo / "nodes/hub-1.yaml").write_text(
        (base_repo / "nodes/hub-1.yaml").read_text().replace("role: hub", "role: spoke"))
    node = base_repo / "nodes/spoke-1.yaml"
    node.write_text(node.read_text().replace("role: spoke", "role: hub\npublic_address: 1.2.3.4"))
    result = invoke("-v", "render", "--repo", base_repo)
    assert result.exit_code == 0, result.stderr
    assert "issued a certificate for spoke-1: role changed to hub" in result.stderr
    assert "issued a certificate for hub-1: role changed to spoke" in result.stderr


def test_missing_admin_key_says_so_and_writes_nothing(base_repo: Path) -> None:
    add_spoke(base_repo, "spoke-3", "172.23.0.0/24")
    before = _tree(base_repo)
    result = invoke("render", "--repo", base_repo)
    assert (result.exit_code, result.stderr.splitlines()) == (1, [
        "secrets/mesh.sops.yaml: the admin age key is needed to update spoke-3 (new node); set"
        " SOPS_AGE_KEY_FILE to the age key file of one of the admins in mesh/mesh.yaml"])
    assert _tree(base_repo) == before


def test_wrong_admin_key_names_the_key_file(base_repo: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    add_spoke(base_repo, "spoke-3", "172.23.0.0/24")
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(KEYS / "huawei-hz-1.agekey"))
    result = invoke("render", "--repo", base_repo)
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0] == (
        f"secrets/mesh.sops.yaml: cannot decrypt it: the age key in {KEYS}/huawei-hz-1.agekey"
        " is not one of its recipients")


def test_corrupted_secret_file(base_repo: Path, admin_key: Path) -> None:
    path = base_repo / "secrets/mesh.sops.yaml"
    text = path.read_text()
    path.write_text(text.replace("ca_key: ENC[AES256_GCM,data:", "ca_key: ENC[AES256_GCM,data:AA"))
    add_spoke(base_repo, "spoke-3", "172.23.0.0/24")
    result = invoke("render", "--repo", base_repo)
    assert result.exit_code == 1
    assert result.stderr.startswith(
        "secrets/mesh.sops.yaml: sops could not decrypt it (exit 25); is the file corrupted?\n")
    assert not (base_repo / "mesh/pki/issued/spoke-3.crt").exists()


def test_not_a_sops_file(base_repo: Path) -> None:
    (base_repo / "secrets/nodes/spoke-1.sops.yaml").write_text("key: plaintext\n")
    result = invoke("render", "--repo", base_repo)
    assert (result.exit_code, result.stderr.splitlines()) == (1, [
        "secrets/nodes/spoke-1.sops.yaml: not a SOPS-encrypted file (no 'sops' metadata);"
        " restore it from git"])


def test_certificate_from_another_ca(base_repo: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    result = invoke("init", "--repo", other, "--name", "other", "--domain", "x.example.org",
                    "--network", "10.9.0.0/24", "--admin-recipient", age_recipient("admin"))
    assert result.exit_code == 0, result.stderr
    (base_repo / "mesh/pki/ca.crt").write_bytes((other / "mesh/pki/ca.crt").read_bytes())
    result = invoke("validate", "--repo", base_repo)
    assert (result.exit_code, result.stderr.splitlines()) == (1, [
        "mesh/pki/crl.pem: not signed by mesh/pki/ca.crt; run 'vpcmesh pki renew'"] + [
        f"mesh/pki/issued/{h}.crt: not signed by mesh/pki/ca.crt (the CA changed?);"
        f" run 'vpcmesh pki renew {h}'" for h in ("hub-1", "spoke-1", "spoke-2")])


def test_renew_replaces_a_certificate_of_another_ca(base_repo: Path, admin_key: Path,
                                                    tmp_path: Path) -> None:
    other = tmp_path / "other"
    invoke("init", "--repo", other, "--name", "other", "--domain", "x.example.org",
           "--network", "10.9.0.0/24", "--admin-recipient", age_recipient("admin"))
    add_spoke(other, "spoke-1", "172.21.0.0/24")
    (other / "nodes/hub.yaml").write_text((base_repo / "nodes/hub-1.yaml").read_text()
                                          .replace("hub-1", "hub"))
    assert invoke("render", "--repo", other).exit_code == 0
    foreign = (other / "mesh/pki/issued/spoke-1.crt").read_bytes()
    (base_repo / "mesh/pki/issued/spoke-1.crt").write_bytes(foreign)
    assert invoke("render", "--repo", base_repo).exit_code == 1
    result = invoke("pki", "renew", "spoke-1", "--repo", base_repo)
    assert (result.exit_code, result.stderr.splitlines()) == (0, [
        "issued spoke-1 (renewal requested)", "issued a new CRL (renewal requested)"])
    assert invoke("validate", "--repo", base_repo).exit_code == 0


def test_new_admin_gets_a_new_data_key_and_the_old_one_loses_access(
        base_repo: Path, admin_key: Path, sops_calls: SopsCalls) -> None:
    mesh = base_repo / "mesh/mesh.yaml"
    mesh.write_text(mesh.read_text().replace(age_recipient("admin"), age_recipient("ucloud-hz-1")))
    result = invoke("render", "--repo", base_repo)
    assert result.exit_code == 0, result.stderr
    assert sorted(sops_calls.commands()) == ["decrypt"] + ["rotate"] * 4
    for rel in ("mesh.sops.yaml", "nodes/spoke-1.sops.yaml"):
        assert _decrypt(base_repo / "secrets" / rel, "ucloud-hz-1").returncode == 0
        assert _decrypt(base_repo / "secrets" / rel, "admin").returncode != 0
