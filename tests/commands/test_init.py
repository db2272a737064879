from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from ruamel.yaml import YAML

from vpcmesh.secrets import sops

from conftest import EXAMPLE, ROOT, age_recipient, copy_example, invoke

ARGS = ["--name", "acme", "--domain", "inner.acme.example", "--network", "10.20.0.0/24"]


def _init(repo: Path, *extra: str) -> tuple[int, list[str]]:
    result = invoke("init", "--repo", repo, *ARGS, "--admin-recipient", age_recipient("admin"),
                    *extra)
    return result.exit_code, result.stderr.splitlines()


def _files(repo: Path) -> list[str]:
    return sorted(p.relative_to(repo).as_posix() for p in repo.rglob("*")
                  if p.is_file() and ".git" not in p.relative_to(repo).parts)


def test_init_creates_a_mesh_that_renders(tmp_path: Path, admin_key: Path) -> None:
    repo = tmp_path / "acme"
    code, stderr = _init(repo)
    assert code == 0 and stderr[0].startswith(f"created the git repository {repo} (branch main")
    assert _files(repo) == [
        ".github/workflows/publish.yml", ".github/workflows/pull-request.yml", ".gitignore",
        ".pre-commit-config.yaml", ".sops.yaml", "Makefile", "README.md", "mesh/mesh.yaml",
        "mesh/pki/ca.crt", "mesh/pki/crl.pem", "mesh/signing.pub", "nodes/.gitkeep",
        "requirements.txt", "schemas/mesh.schema.json", "schemas/node.schema.json",
        "secrets/mesh.sops.yaml", "secrets/nodes/.gitkeep"]
    result = invoke("validate", "--repo", repo)
    assert (result.exit_code, result.stderr) == (
        1, "nodes: no nodes yet: add the hub as nodes/<hostname>.yaml with role: hub\n")
    (repo / "nodes/hub.yaml").write_text(
        (EXAMPLE / "nodes/aliyun-hz-1.yaml").read_text().replace("aliyun-hz-1", "hub"))
    result = invoke("render", "--repo", repo)
    assert result.exit_code == 0, result.stderr
    # A new mesh runs tls-crypt-v2: the hub's own server key, no shared key in its secrets.
    assert "\ntls-crypt-v2 tc2-server.key\n" in (repo / "build/hub/openvpn/acme.conf").read_text()
    hub = sops.decrypt((repo / "secrets/nodes/hub.sops.yaml").read_bytes(), "x")
    assert sorted(hub["files"]) == ["hub.key", "tc2-server.key"]
    secrets = sops.decrypt((repo / "secrets/mesh.sops.yaml").read_bytes(), "x")
    assert sorted(secrets) == ["ca_key", "signing_key", "tls_crypt_v2_key", "tls_key"]
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
    assert _init(repo, "--algorithm", "ed25519")[0] == 0
    assert "algorithm: ed25519" in (repo / "mesh/mesh.yaml").read_text()


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                          check=True).stdout


def test_a_new_folder_becomes_a_mesh_repository_of_its_own(tmp_path: Path) -> None:
    repo = tmp_path / "acme"
    assert _init(repo, "--tool-repo", "https://git.example.com/ops/vpcmesh",
                 "--tool-rev", "v9.9.9")[0] == 0
    assert _git(repo, "log", "--format=%s").splitlines() == ["vpcmesh init: the mesh acme"]
    assert _git(repo, "status", "--porcelain") == ""
    assert _git(repo, "symbolic-ref", "--short", "HEAD") == "main\n"
    assert "\nvpcmesh @ git+https://git.example.com/ops/vpcmesh@v9.9.9\n" in \
        (repo / "requirements.txt").read_text()
    hooks = (repo / ".pre-commit-config.yaml").read_text()
    assert "repo: https://git.example.com/ops/vpcmesh\n    rev: v9.9.9\n" in hooks
    published = {h["id"] for h in YAML(typ="safe").load(ROOT / ".pre-commit-hooks.yaml")}
    assert set(re.findall(r"- id: (\S+)", hooks)) <= published
    # Every $schema comment resolves, in the new repository as in this one's example.
    for yaml_file in [repo / "mesh/mesh.yaml", *EXAMPLE.glob("*/*.yaml")]:
        found = re.search(r"\$schema=(\S+)", yaml_file.read_text())
        if found:
            assert (yaml_file.parent / found[1]).resolve().is_file(), yaml_file
    for name in ("pull-request.yml", "publish.yml"):  # the same on both kinds of repository
        assert (repo / ".github/workflows" / name).read_bytes() == \
            (ROOT / ".github/workflows" / name).read_bytes()


def test_node_add_names_the_schema_where_the_repository_keeps_it(tmp_path: Path) -> None:
    repo = tmp_path / "acme"
    _init(repo)
    result = invoke("node", "add", "--repo", repo, "hub", "--role", "hub", "--cloud", "aliyun",
                    "--region", "cn-hangzhou", "--public-ip", "198.51.100.10",
                    "--private-ip", "172.16.0.10", "--subnet", "172.16.0.0/24",
                    "--age-recipient", age_recipient("aliyun-hz-1"), "--os", "rhel")
    assert result.exit_code == 0, result.stderr
    text = (repo / "nodes/hub.yaml").read_text()
    assert text.startswith("# yaml-language-server: $schema=../schemas/node.schema.json\n")
    assert "\nos: rhel\n" in text


def _template_copy(dest: Path) -> Path:
    """This repository as a user's copy of it has it: its tracked files, committed."""
    tracked = _git(ROOT, "ls-files", "-z").split("\0")
    for rel in filter(None, tracked):
        if (ROOT / rel).is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, dest / rel)
    for args in (["init", "-q", "-b", "main"], ["add", "-A"],
                 ["-c", "user.email=u@example.com", "-c", "user.name=u", "commit", "-q", "-m",
                  "from the template"]):
        subprocess.run(["git", "-C", str(dest), *args], check=True, capture_output=True)
    return dest


def test_a_copy_of_this_repository_replaces_the_example_with_its_own_mesh(
        tmp_path: Path, admin_key: Path) -> None:
    fork = _template_copy(tmp_path / "fork")
    (fork / "nodes/aliyun-hz-1.yaml").write_text("edited\n")
    code, stderr = _init(fork, "--replace")
    assert (code, stderr) == (1, ["nodes/aliyun-hz-1.yaml: not committed: --replace would lose"
                                  " it; commit or stash it first"])
    _git(fork, "checkout", "--", "nodes")
    code, stderr = _init(fork, "--replace")
    assert (code, stderr) == (0, [])
    assert (fork / "mesh/mesh.yaml").read_text().startswith(
        "# yaml-language-server: $schema=../tools/vpcmesh/schemas/mesh.schema.json\n")
    assert "name: acme\n" in (fork / "mesh/mesh.yaml").read_text()
    assert sorted(p.name for p in (fork / "nodes").iterdir()) == [".gitkeep"]
    assert not (fork / "requirements.txt").exists()  # the template keeps its own tooling
    assert _git(fork, "status", "--porcelain", "--", "examples", ".github", "Makefile") == ""
    (fork / "nodes/hub.yaml").write_text(
        (EXAMPLE / "nodes/aliyun-hz-1.yaml").read_text().replace("aliyun-hz-1", "hub"))
    for command in ("guard", "validate"):  # what its pull-request workflow runs
        result = invoke(command, "--repo", fork)
        assert result.exit_code == 0, (command, result.stderr)
    _git(fork, "add", "-A")
    result = invoke("plan", "--repo", fork, "--base", "main")
    assert result.exit_code == 0, result.stderr
    assert "  + hub: new node, tunnel address 10.20.0.1\n" in result.stdout
    assert "  - aliyun-hz-1: removed" in result.stdout


def test_plan_against_a_base_before_the_mesh_existed(tmp_path: Path) -> None:
    repo = tmp_path / "r"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "-c", "user.email=u@example.com", "-c", "user.name=u", "commit", "-q",
         "--allow-empty", "-m", "empty")
    copy_example(repo)
    result = invoke("plan", "--repo", repo, "--base", "main")
    assert result.exit_code == 0, result.stderr
    assert "4 node(s) change (4 new, 0 removed)" in result.stdout
