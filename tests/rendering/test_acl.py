"""Service ACLs as compiled: which node gets which rules, in a form nft accepts and the
agent's grammar check lets through."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from vpcmesh.agent import acl
from vpcmesh.errors import VpcmeshError

from conftest import invoke

HUB, HUAWEI, TENCENT, UCLOUD = "aliyun-hz-1", "huawei-hz-1", "tencent-hz-1", "ucloud-hz-1"


def _edit(repo: Path, rel: str, old: str, new: str) -> None:
    path = repo / rel
    text = path.read_text()
    assert old in text, (rel, old)
    path.write_text(text.replace(old, new))


def restrict_postgres(repo: Path) -> None:
    """postgres on the hub: only the group app (tencent-hz-1) and one office network."""
    _edit(repo, f"nodes/{HUB}.yaml", "{name: postgres, port: 5432}",
          "{name: postgres, port: 5432, allow: ['group:app', 192.168.77.0/24]}")
    _edit(repo, f"nodes/{TENCENT}.yaml", "subnets:", "groups: [app]\nsubnets:")


def _render(repo: Path) -> dict[str, str]:
    result = invoke("render", "--repo", repo)
    assert result.exit_code == 0, result.stderr
    return {p.parent.name: p.read_text() for p in sorted((repo / "build").glob("*/acl.nft"))}


def _rules(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if "comment" in line]


def test_an_open_mesh_without_allow_lists_has_no_acl_file(example_repo: Path) -> None:
    assert _render(example_repo) == {}


def test_an_allow_list_is_enforced_by_its_host_and_the_hub(example_repo: Path) -> None:
    restrict_postgres(example_repo)
    files = _render(example_repo)
    # The hub hosts it (input) and forwards between spokes; the spokes have nothing to enforce.
    assert sorted(files) == [HUB]
    assert _rules(files[HUB]) == [
        'ct original ip daddr { 10.8.0.1, 172.16.0.10 } meta l4proto tcp ct original proto-dst'
        ' 5432 ip saddr { 10.8.0.3, 172.17.0.0/24, 192.168.77.0/24 } counter accept comment'
        ' "postgres on aliyun-hz-1: allowed"',
        'ct original ip daddr { 10.8.0.1, 172.16.0.10 } meta l4proto tcp ct original proto-dst'
        ' 5432 counter drop comment "postgres on aliyun-hz-1: denied"']


def test_deny_by_default_lets_through_only_the_declared_services(example_repo: Path) -> None:
    _edit(example_repo, "mesh/mesh.yaml", "admins:", "dns:\n  resolver: true\nacl:\n"
          "  default: deny\nadmins:")
    files = _render(example_repo)
    assert sorted(files) == [HUB, HUAWEI, TENCENT, UCLOUD]
    hub = [r.rpartition("comment ")[2] for r in _rules(files[HUB])]
    assert hub == ['"postgres on aliyun-hz-1: allowed"', '"redis on aliyun-hz-1: allowed"',
                   '"elasticsearch on huawei-hz-1: allowed"', '"acl.default deny"']
    assert "ip daddr { 10.8.0.1 } meta l4proto { tcp, udp } th dport 53 accept" in files[HUB]
    assert _rules(files[HUAWEI]) == [
        'ct original ip daddr { 10.8.0.2, 172.18.0.10 } meta l4proto tcp ct original proto-dst'
        ' 9200 counter accept comment "elasticsearch on huawei-hz-1: allowed"',
        'counter drop comment "acl.default deny"']
    assert _rules(files[TENCENT]) == ['counter drop comment "acl.default deny"']


def test_every_rendered_file_passes_the_agents_check_and_nft(example_repo: Path) -> None:
    restrict_postgres(example_repo)
    _edit(example_repo, "mesh/mesh.yaml", "admins:", "acl:\n  default: deny\nadmins:")
    files = _render(example_repo)
    for host, text in files.items():
        assert acl.check(text, "example", host) == text
        if os.geteuid() == 0 and shutil.which("nft"):  # -c: parsed and checked, not loaded
            done = subprocess.run(["nft", "-c", "-f", "-"], input=text, text=True,
                                  capture_output=True)
            assert done.returncode == 0, (host, done.stderr)


@pytest.mark.parametrize("line", [
    "flush ruleset",
    "table inet filter {",
    "delete table inet vpcmesh-other",
    "include \"/etc/nftables.conf\"",
    'ip daddr { 0.0.0.0/0 } counter accept; flush ruleset',
    "type filter hook output priority filter - 10; policy drop;",
])
def test_the_agent_refuses_a_line_the_compiler_does_not_write(line: str) -> None:
    text = "table inet vpcmesh-example\n" + line + "\n"
    with pytest.raises(VpcmeshError) as caught:
        acl.check(text, "example", "/etc/vpcmesh/acl-example.nft")
    assert str(caught.value).startswith("/etc/vpcmesh/acl-example.nft:2: not a service ACL"
                                        " line vpcmesh writes:")
