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
    # Its certificate is revoked: every other node gets the new CRL, and none restarts.
    crl = "changed; no restart (a new CRL, read at its next handshake)"
    assert _impact(repo) == ["~ aliyun-hz-1: changed; hub reloads ccd: cuts off ucloud-hz-1",
                             f"~ huawei-hz-1: {crl}", f"~ tencent-hz-1: {crl}",
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


def _turn_on_resolver(repo: Path) -> None:
    mesh = repo / "mesh/mesh.yaml"
    mesh.write_text(mesh.read_text() + "\ndns:\n  resolver: true\n")
    subprocess.run(["git", "-C", str(repo), "-c", "user.email=ci@example.com", "-c",
                    "user.name=ci", "commit", "-qam", "the resolver"], check=True)


def test_turning_the_resolver_on_restarts_each_spoke_once(repo: Path) -> None:
    """The spokes' configs gain the up script that routes the inner domain (resolved)."""
    mesh = repo / "mesh/mesh.yaml"
    mesh.write_text(mesh.read_text() + "\ndns:\n  resolver: true\n")
    impact = _impact(repo)
    assert impact[0] == ("~ aliyun-hz-1: changed; restarts its resolver only, not OpenVPN"
                         " (fleet.json, resolver/unbound.conf, systemd/vpcmesh-resolver@.service)")
    assert impact[1:] == [f"~ {h}: changed; restarts its OpenVPN: only this node reconnects"
                          for h in ("huawei-hz-1", "tencent-hz-1", "ucloud-hz-1")]


def test_a_new_service_restarts_only_the_hubs_resolver(repo: Path) -> None:
    _turn_on_resolver(repo)
    node = repo / "nodes/tencent-hz-1.yaml"
    node.write_text(node.read_text() + "services:\n  - name: gitea\n    port: 3000\n")
    assert _impact(repo) == [
        "~ aliyun-hz-1: changed; restarts its resolver only, not OpenVPN (fleet.json, hosts,"
        " resolver/unbound.conf)", "~ huawei-hz-1: changed; no restart (hosts)",
        "~ tencent-hz-1: changed; no restart (hosts)",
        "~ ucloud-hz-1: changed; no restart (hosts)"]


def _acl_lines(repo: Path) -> list[str]:
    result = invoke("plan", "--repo", repo, "--base", "main")
    assert result.exit_code == 0, result.stderr
    return [line.strip() for line in result.stdout.splitlines() if "acl" in line.lower()]


def _commit(repo: Path) -> None:
    subprocess.run(["git", "-C", str(repo), "-c", "user.email=ci@example.com", "-c",
                    "user.name=ci", "commit", "-qam", "step"], check=True)


def test_plan_shows_acl_changes_and_applies_them_without_a_restart(repo: Path) -> None:
    hub, tencent = repo / "nodes/aliyun-hz-1.yaml", repo / "nodes/tencent-hz-1.yaml"
    hub.write_text(hub.read_text().replace("{name: postgres, port: 5432}",
                                           "{name: postgres, port: 5432, allow: ['group:app']}"))
    tencent.write_text(tencent.read_text() + "groups: [app]\n")
    assert _acl_lines(repo) == [
        "~ aliyun-hz-1: changed; no restart (acl.nft)", "+ acl.nft",
        "acl: + postgres on aliyun-hz-1 (tcp/5432): group:app",
        "1 node(s) change (0 new, 0 removed), 0 restart(s), 0 certificate(s) to issue, 0 to"
        " revoke, 0 DNS change(s), 5 cloud-side change(s), 1 ACL change(s)."]
    _commit(repo)
    # A node joining the group widens who may connect, though no allow list changed.
    ucloud = repo / "nodes/ucloud-hz-1.yaml"
    ucloud.write_text(ucloud.read_text() + "groups: [app]\n")
    mesh = repo / "mesh/mesh.yaml"
    mesh.write_text(mesh.read_text().replace("admins:", "acl:\n  default: deny\nadmins:"))
    lines = _acl_lines(repo)
    assert [line for line in lines if line.startswith("acl:")] == [
        "acl: ~ acl.default: deny (was open)",
        "acl: + elasticsearch on huawei-hz-1 (tcp/9200): every node",
        "acl: ~ postgres on aliyun-hz-1 (tcp/5432): group:app (now also 10.8.0.4/32,"
        " 172.19.0.0/24)",
        "acl: + redis on aliyun-hz-1 (tcp/6379): every node"]


def test_a_renewed_spoke_reconnects_once_by_itself_not_at_its_hubs_request(
        repo: Path, admin_key: Path) -> None:
    assert invoke("pki", "renew", "tencent-hz-1", "--repo", repo).exit_code == 0
    impact = {line.split(":")[0]: line for line in _impact(repo)}
    # Its ccd file on the hub carries the new serial (for a later revocation), nothing else.
    assert impact["~ aliyun-hz-1"] == "~ aliyun-hz-1: changed; hub reloads ccd: no disconnect"
    assert impact["~ tencent-hz-1"] == (
        "~ tencent-hz-1: changed; restarts its OpenVPN: only this node reconnects")
