from __future__ import annotations

from pathlib import Path

from conftest import age_recipient, invoke

ADD = ["--cloud", "tencent", "--region", "ap-guangzhou", "--age-recipient"]


def _add(repo: Path, host: str, *extra: str) -> tuple[int, list[str]]:
    result = invoke("node", "add", host, "--repo", repo, *ADD, age_recipient("ucloud-hz-1"),
                    *extra)
    return result.exit_code, result.stderr.splitlines()


def test_add_writes_a_valid_node_file_with_a_schema_line(base_repo: Path) -> None:
    assert _add(base_repo, "spoke-3", "--private-ip", "172.23.0.10", "--subnet",
                "172.23.0.0/24", "--service", "web:80") == (
        0, ["wrote nodes/spoke-3.yaml; 'vpcmesh plan' shows what it changes"])
    text = (base_repo / "nodes/spoke-3.yaml").read_text()
    # A mesh repository of its own keeps the schemas in schemas/ (vpcmesh init writes them).
    assert text.startswith("# yaml-language-server: $schema=../schemas/node.schema.json\n")
    assert "  - {name: web, port: 80}\n" in text
    assert invoke("validate", "--repo", base_repo).exit_code == 0


def test_add_refuses_a_name_in_use(base_repo: Path) -> None:
    before = (base_repo / "nodes/spoke-1.yaml").read_bytes()
    assert _add(base_repo, "spoke-1", "--private-ip", "172.23.0.10", "--subnet",
                "172.23.0.0/24") == (1, [
        "nodes/spoke-1.yaml: already exists: 'spoke-1' is in the mesh; edit the file or remove"
        " it with 'vpcmesh node remove'"])
    assert (base_repo / "nodes/spoke-1.yaml").read_bytes() == before


def test_add_refuses_addresses_in_use(base_repo: Path) -> None:
    assert _add(base_repo, "spoke-3", "--private-ip", "172.21.0.99", "--subnet",
                "172.21.0.0/24") == (1, [
        "nodes/spoke-3.yaml:9:5: subnet 172.21.0.0/24 of spoke-3 overlaps subnet 172.21.0.0/24"
        " of spoke-1 (nodes/spoke-1.yaml:6:11); routes must not overlap"])
    assert _add(base_repo, "spoke-3", "--private-ip", "172.23.0.10", "--subnet",
                "172.23.0.0/24", "--vpn-ip", "10.8.0.2") == (1, [
        "nodes/spoke-3.yaml:10:14: vpn_address 10.8.0.2 is allocated to 'spoke-1' in"
        " mesh/state.yaml; pick a free address"])
    assert not (base_repo / "nodes/spoke-3.yaml").exists()


def test_add_names_the_bad_option(base_repo: Path) -> None:
    assert _add(base_repo, "Bad_Host", "--private-ip", "172.23.0.300", "--subnet",
                "172.23.0.0/24") == (1, [
        "--private-ip: private_address: '172.23.0.300' is not an IPv4 address in dotted-quad"
        " form, such as 172.16.0.10",
        "HOST: hostname: 'Bad_Host' is not a DNS label: 1-63 lowercase letters, digits and"
        " '-', not starting or ending with '-'"])


def test_remove(base_repo: Path) -> None:
    result = invoke("node", "remove", "spoke-2", "--repo", base_repo)
    assert (result.exit_code, result.stderr) == (
        0, "removed nodes/spoke-2.yaml; the next render revokes its certificate\n")
    assert not (base_repo / "nodes/spoke-2.yaml").exists()
    result = invoke("node", "remove", "hub-1", "--repo", base_repo)
    assert (result.exit_code, result.stderr) == (
        1, "nodes/hub-1.yaml: 'hub-1' is the hub; make another node the hub first\n")
    result = invoke("node", "remove", "nope", "--repo", base_repo)
    assert (result.exit_code, result.stderr) == (1, "nodes/nope.yaml: no such node 'nope'\n")
