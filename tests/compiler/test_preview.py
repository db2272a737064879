"""`vpcmesh plan` says, before a merge, what each change does to the running mesh, by the
same rule the agent applies when it installs the bundle."""

from __future__ import annotations

import subprocess
from pathlib import Path

from conftest import age_recipient, invoke


def _impact(repo: Path) -> list[str]:
    result = invoke("plan", "--repo", repo, "--base", "main")
    assert result.exit_code == 0, result.stderr
    return [line.strip() for line in result.stdout.splitlines()
            if line.startswith(("  ~ ", "  + ", "  - "))]


def test_a_changed_subnet_reconnects_only_its_spoke(repo: Path) -> None:
    node = repo / "nodes/tencent-hz-1.yaml"
    node.write_text(node.read_text().replace("  - 172.17.0.0/24\n",
                                             "  - 172.17.0.0/24\n  - 192.168.61.0/24\n"))
    # tencent's own bundle changes too (its forwarding rules name its subnets), in place.
    assert _impact(repo) == ["~ aliyun-hz-1: changed; hub reloads ccd: reconnects tencent-hz-1",
                             "~ tencent-hz-1: changed; no restart (firewall.nft)"]


def test_a_new_spoke_disconnects_nobody(repo: Path) -> None:
    assert invoke("node", "add", "qcloud-hz-2", "--repo", repo, "--cloud", "qcloud", "--region",
                  "cn-hz", "--private-ip", "172.20.0.10", "--subnet", "172.20.0.0/24",
                  "--age-recipient", age_recipient("admin")).exit_code == 0
    assert _impact(repo) == ["~ aliyun-hz-1: changed; hub reloads ccd: no disconnect",
                             "+ qcloud-hz-2: new node, tunnel address 10.8.0.5"]


def test_a_removed_spoke_is_cut_off(repo: Path) -> None:
    assert invoke("node", "remove", "ucloud-hz-1", "--repo", repo).exit_code == 0
    assert _impact(repo) == ["~ aliyun-hz-1: changed; hub reloads ccd: cuts off ucloud-hz-1",
                             "- ucloud-hz-1: removed"]


def test_a_server_setting_restarts_the_hub_and_says_who_reconnects(repo: Path) -> None:
    mesh = repo / "mesh/mesh.yaml"
    mesh.write_text(mesh.read_text().replace("port: 1194", "port: 1195"))
    assert _impact(repo)[0] == "~ aliyun-hz-1: changed; hub restarts: 3 spoke(s) reconnect"


def test_without_an_address_space_a_new_subnet_restarts_the_hub(repo: Path) -> None:
    mesh = repo / "mesh/mesh.yaml"
    text = mesh.read_text()
    mesh.write_text(text[:text.index("  address_space:")] + text[text.index("  port:"):])
    subprocess.run(["git", "-C", str(repo), "-c", "user.email=ci@example.com", "-c",
                    "user.name=ci", "commit", "-qam", "no address space"], check=True)
    node = repo / "nodes/tencent-hz-1.yaml"
    node.write_text(node.read_text().replace("  - 172.17.0.0/24\n",
                                             "  - 172.17.0.0/24\n  - 192.168.61.0/24\n"))
    assert _impact(repo) == ["~ aliyun-hz-1: changed; hub restarts: 3 spoke(s) reconnect",
                             "~ tencent-hz-1: changed; no restart (firewall.nft)"]
