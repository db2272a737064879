"""`vpcmesh cloud` and the cloud side of `plan`: what each VPC needs, from the node files."""

from __future__ import annotations

import json
import re
from pathlib import Path

from conftest import invoke


def _cloud(repo: Path) -> dict[str, dict[str, object]]:
    result = invoke("cloud", "--repo", repo, "--json")
    assert result.exit_code == 0, result.stderr
    return {v["node"]: v for v in json.loads(result.stdout)["vpcs"]}


def test_every_vpc_routes_the_others_and_the_tunnel_network_to_its_mesh_vm(
        example_repo: Path) -> None:
    vpcs = _cloud(example_repo)
    tencent = vpcs["tencent-hz-1"]
    assert [(r["destination"], r["next_hop"]) for r in tencent["routes"]] == [
        ("10.8.0.0/24", "172.17.0.10"), ("172.16.0.0/24", "172.17.0.10"),
        ("172.18.0.0/24", "172.17.0.10"), ("172.19.0.0/24", "172.17.0.10"),
        ("192.168.50.0/24", "172.17.0.10")]
    # The hub's port, from spokes whose public address nobody wrote down: anywhere, and said.
    hub = vpcs["aliyun-hz-1"]
    openvpn = [r for r in hub["ingress"] if r["port"] == 1194]
    assert [(r["protocol"], r["source"]) for r in openvpn] == [("udp", "0.0.0.0/0")]
    assert "no public_address" in openvpn[0]["why"]
    # Services: their ports from every remote subnet and the tunnel network.
    assert {r["source"] for r in hub["ingress"] if r["port"] == 5432} == {
        "10.8.0.0/24", "172.17.0.0/24", "172.18.0.0/24", "172.19.0.0/24", "192.168.50.0/24"}
    assert "Source/Destination Check" in vpcs["huawei-hz-1"]["source_dest_check"]
    assert "if this cloud checks" in vpcs["ucloud-hz-1"]["source_dest_check"]


def test_a_spoke_with_a_public_address_narrows_the_hubs_rule(example_repo: Path) -> None:
    node = example_repo / "nodes/tencent-hz-1.yaml"
    node.write_text(node.read_text().replace("private_address:",
                                             "public_address: 198.51.100.7\nprivate_address:"))
    openvpn = [(r["source"], r["why"]) for r in _cloud(example_repo)["aliyun-hz-1"]["ingress"]
               if r["port"] == 1194]
    assert [s for s, _ in openvpn] == ["0.0.0.0/0", "198.51.100.7/32"]
    assert "tencent" not in openvpn[0][1]


def test_terraform_json_declares_every_variable_it_uses(example_repo: Path,
                                                        tmp_path: Path) -> None:
    out = tmp_path / "tf"
    result = invoke("cloud", "--repo", example_repo, "--terraform", out)
    assert result.exit_code == 0, result.stderr
    assert "no Terraform provider written for ucloud" in result.stderr
    files = sorted(p.name for p in out.iterdir())
    assert files == ["alicloud.tf.json", "huaweicloud.tf.json", "tencentcloud.tf.json"]
    kinds = {}
    for name in files:
        text = (out / name).read_text()
        doc = json.loads(text)
        used = set(re.findall(r"\$\{var\.([A-Za-z0-9_-]+)\}", text))
        assert used == set(doc["variable"]), name
        kinds[name] = {k: len(v) for k, v in doc["resource"].items()}
    assert kinds == {
        "alicloud.tf.json": {"alicloud_route_entry": 5, "alicloud_security_group_rule": 11},
        "huaweicloud.tf.json": {"huaweicloud_vpc_route": 4,
                                "huaweicloud_networking_secgroup_rule": 4},
        "tencentcloud.tf.json": {"tencentcloud_route_table_entry": 5}}
    # Deterministic: the same input writes the same bytes.
    again = tmp_path / "again"
    invoke("cloud", "--repo", example_repo, "--terraform", again)
    assert all((out / n).read_bytes() == (again / n).read_bytes() for n in files)


def test_plan_lists_what_a_pull_request_asks_of_the_clouds(repo: Path) -> None:
    node = repo / "nodes/tencent-hz-1.yaml"
    node.write_text(node.read_text().replace("  - 172.17.0.0/24\n",
                                             "  - 172.17.0.0/24\n  - 192.168.61.0/24\n"))
    result = invoke("plan", "--repo", repo, "--base", "main")
    assert result.exit_code == 0, result.stderr
    cloud = [line.strip() for line in result.stdout.splitlines() if "cloud:" in line]
    # A route to tencent's new subnet in every other VPC; the services' ports open to it.
    assert cloud == [
        "cloud: aliyun-hz-1's VPC: + allow tcp/5432 from 192.168.61.0/24",
        "cloud: aliyun-hz-1's VPC: + allow tcp/6379 from 192.168.61.0/24",
        "cloud: aliyun-hz-1's VPC: + route 192.168.61.0/24 -> 172.16.0.10",
        "cloud: huawei-hz-1's VPC: + allow tcp/9200 from 192.168.61.0/24",
        "cloud: huawei-hz-1's VPC: + route 192.168.61.0/24 -> 172.18.0.10",
        "cloud: ucloud-hz-1's VPC: + route 192.168.61.0/24 -> 172.19.0.10"]
    assert "6 cloud-side change(s), 0 ACL change(s)." in result.stdout


def test_an_allow_list_narrows_the_services_security_group(example_repo: Path) -> None:
    hub = example_repo / "nodes/aliyun-hz-1.yaml"
    hub.write_text(hub.read_text().replace(
        "{name: postgres, port: 5432}",
        "{name: postgres, port: 5432, allow: ['node:tencent-hz-1', 192.168.77.0/24]}"))
    result = invoke("cloud", "--repo", example_repo)
    assert result.exit_code == 0, result.stderr
    postgres = [line.split() for line in result.stdout.splitlines()
                if line.strip().startswith("tcp/5432")]
    assert [words[:3] for words in postgres] == [["tcp/5432", "from", "10.8.0.3/32"],
                                                 ["tcp/5432", "from", "172.17.0.0/24"],
                                                 ["tcp/5432", "from", "192.168.77.0/24"]]
    assert " ".join(postgres[0][3:]) == "postgres from node:tencent-hz-1, 192.168.77.0/24"
