"""A team's day with vpcmesh, in temporary git repositories: init, a pull request that adds
a node, its plan, the merge, a publish, a node pulling, and a publish that changes nothing."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from conftest import KEYS, age_recipient, invoke


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          text=True).stdout.strip()


def ok(*args: str | Path) -> str:
    result = invoke(*args)
    assert result.exit_code == 0, result.stderr
    return result.stdout


def test_a_day_in_the_life(tmp_path: Path, admin_key: Path) -> None:
    repo, published = tmp_path / "mesh", tmp_path / "bundles.git"
    ok("init", "--repo", repo, "--name", "acme", "--domain", "inner.acme.example",
       "--network", "10.9.0.0/24", "--admin-recipient", age_recipient("admin"))
    ok("node", "add", "hub-1", "--repo", repo, "--role", "hub", "--cloud", "aliyun", "--region",
       "cn-hangzhou", "--public-ip", "203.0.113.9", "--private-ip", "172.16.0.10", "--subnet",
       "172.16.0.0/24", "--age-recipient", age_recipient("aliyun-hz-1"), "--service",
       "redis:6379")
    ok("render", "--repo", repo)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.email", "ops@example.com")
    git(repo, "config", "user.name", "ops")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "a mesh with its hub")
    origin = tmp_path / "origin.git"  # where the team pushes: GitHub or Gitea
    subprocess.run(["git", "init", "-q", "--bare", str(origin)], check=True)
    git(repo, "remote", "add", "origin", str(origin))
    git(repo, "push", "-q", "origin", "main")
    subprocess.run(["git", "init", "-q", "--bare", str(published)], check=True)

    # a pull request adds a spoke
    git(repo, "checkout", "-q", "-b", "add-spoke")
    ok("node", "add", "spoke-1", "--repo", repo, "--cloud", "tencent", "--region",
       "ap-guangzhou", "--private-ip", "172.17.0.10", "--subnet", "172.17.0.0/24",
       "--age-recipient", age_recipient("tencent-hz-1"))
    git(repo, "add", "nodes/spoke-1.yaml")
    git(repo, "commit", "-q", "-m", "add spoke-1")
    plan = json.loads(ok("plan", "--repo", repo, "--json"))
    assert {n["hostname"]: (n["change"], n["files"], n["restart"]) for n in plan["nodes"]} == {
        "hub-1": ("changed", {"fleet.json": "changed", "openvpn/acme.conf": "changed",
                              "openvpn/ccd/spoke-1": "added"}, True),
        "spoke-1": ("new", {f: "added" for f in [
            "firewall.nft", "hosts", "openvpn/acme.conf", "openvpn/ca.crt", "openvpn/crl.pem",
            "openvpn/spoke-1.crt", "secrets.sops.yaml", "sysctl.conf",
            "systemd/vpcmesh.conf"]}, False)}
    assert plan["certificates"] == {"issue": {"spoke-1": "new node"}, "revoke": {}}
    assert plan["dns"] == [{"op": "+", "name": "spoke-1.inner.acme.example",
                            "value": "172.17.0.10"}]
    assert git(repo, "status", "--porcelain") == ""  # plan writes nothing

    # merged; main signs, records what it issued, then publishes that commit
    git(repo, "checkout", "-q", "main")
    git(repo, "merge", "-q", "--ff-only", "add-spoke")
    ok("sign", "--repo", repo)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "record issued certificates")
    git(repo, "push", "-q", "origin", "main")
    ok("publish", "--repo", repo, "--to", published)
    assert git(published, "log", "--format=%s", "bundles").splitlines() == [
        f"Publish bundles from {git(repo, 'rev-parse', 'HEAD')[:12]}"]

    # the new VM's timer pulls its bundle
    node = tmp_path / "spoke-1-root"
    result = invoke("pull", "--once", "--hostname", "spoke-1", "--source", published,
                    "--age-key", KEYS / "tencent-hz-1.agekey", "--trust-key",
                    repo / "mesh/signing.pub", "--root", node, "--restart-cmd", "true",
                    "--health-cmd", "true")
    assert (result.exit_code, result.stderr) == (0, "installed version 1 and restarted"
                                                    " OpenVPN\n")
    assert "remote 203.0.113.9 1194" in (node / "etc/openvpn/client/acme.conf").read_text()

    # publishing the same input again creates no commit
    before = git(published, "rev-parse", "bundles")
    result = invoke("publish", "--repo", repo, "--to", published)
    assert (result.exit_code, result.stderr) == (0, f"{published} bundles: already up to date\n")
    assert git(published, "rev-parse", "bundles") == before
