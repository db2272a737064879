from __future__ import annotations

import subprocess
from pathlib import Path

from vpcmesh.secrets import sops

from conftest import ROOT, age_recipient, invoke

ARGS = ["--name", "acme", "--domain", "inner.acme.example", "--network", "10.20.0.0/24"]


def _init(repo: Path, *extra: str) -> tuple[int, list[str]]:
    result = invoke("init", "--repo", repo, *ARGS, "--admin-recipient", age_recipient("admin"),
                    *extra)
    return result.exit_code, result.stderr.splitlines()


def test_init_creates_a_mesh_that_renders(tmp_path: Path, admin_key: Path) -> None:
    repo = tmp_path / "acme"
    assert _init(repo) == (0, [])
    files = sorted(p.relative_to(repo).as_posix() for p in repo.rglob("*") if p.is_file())
    assert files == [".gitignore", ".sops.yaml", "mesh/mesh.yaml", "mesh/pki/ca.crt",
                     "mesh/pki/crl.pem", "mesh/signing.pub", "nodes/.gitkeep",
                     "secrets/mesh.sops.yaml", "secrets/nodes/.gitkeep"]
    result = invoke("validate", "--repo", repo)
    assert (result.exit_code, result.stderr) == (
        1, "nodes: no nodes yet: add the hub as nodes/<hostname>.yaml with role: hub\n")
    (repo / "nodes/hub.yaml").write_text(
        (ROOT / "nodes/aliyun-hz-1.yaml").read_text().replace("aliyun-hz-1", "hub"))
    result = invoke("render", "--repo", repo)
    assert result.exit_code == 0, result.stderr
    assert (repo / "build/hub/openvpn/acme.conf").is_file()
    secrets = sops.decrypt((repo / "secrets/mesh.sops.yaml").read_bytes(), "x")
    assert sorted(secrets) == ["ca_key", "signing_key", "tls_key"]
    assert secrets["tls_key"].splitlines()[3] == "-----BEGIN OpenVPN Static key V1-----"


def test_no_private_key_in_plaintext(tmp_path: Path) -> None:
    repo = tmp_path / "acme"
    _init(repo)
    leaks = subprocess.run(["grep", "-rlE", "BEGIN [A-Z ]*PRIVATE KEY|Static key V1|AGE-SECRET",
                            str(repo)], capture_output=True, text=True, check=False)
    assert leaks.stdout == ""


def test_refuses_to_overwrite_a_mesh(tmp_path: Path) -> None:
    repo = tmp_path / "acme"
    _init(repo)
    before = {p: p.read_bytes() for p in repo.rglob("*") if p.is_file()}
    assert _init(repo) == (1, [
        "mesh/mesh.yaml: already exists: this repository has a mesh; vpcmesh init never"
        " overwrites one",
        "mesh/pki/ca.crt: already exists: this repository has a mesh; vpcmesh init never"
        " overwrites one",
        "secrets/mesh.sops.yaml: already exists: this repository has a mesh; vpcmesh init never"
        " overwrites one"])
    assert {p: p.read_bytes() for p in repo.rglob("*") if p.is_file()} == before


def test_bad_options_name_the_option(tmp_path: Path) -> None:
    result = invoke("init", "--repo", tmp_path / "x", "--name", "../etc", "--domain", "a..b",
                    "--network", "10.0.0.0/33", "--admin-recipient", "age1nope")
    assert (result.exit_code, result.stderr.splitlines()) == (1, [
        "--admin-recipient: admins[0]: 'age1nope' is not an age X25519 recipient: 'age1' and"
        " 58 bech32 characters, as printed by age-keygen -y",
        "--domain: domain: 'a..b' is not a DNS domain of lowercase labels separated by dots,"
        " such as inner.example.com",
        "--name: name: '../etc' is not a mesh name: 2-32 lowercase letters, digits and '-',"
        " starting with a letter (it names <name>.conf and the systemd unit)",
        "--network: vpn.network: '10.0.0.0/33' is not an IPv4 network in CIDR form, such as"
        " 172.16.0.0/24 (a host is /32)"])
    assert not (tmp_path / "x").exists()


def test_options_go_together(tmp_path: Path) -> None:
    result = invoke("init", "--repo", tmp_path, "--name", "acme")
    assert result.exit_code == 2
    assert "--name, --domain, --network and --admin-recipient go together" in result.stderr


def test_ed25519_mesh(tmp_path: Path, admin_key: Path) -> None:
    repo = tmp_path / "acme"
    assert _init(repo, "--algorithm", "ed25519") == (0, [])
    assert "algorithm: ed25519" in (repo / "mesh/mesh.yaml").read_text()
