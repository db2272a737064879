"""A mesh repository of one's own, end to end, as a new user makes it: `vpcmesh init` of a
new folder pins this repository's vpcmesh at HEAD; its Makefile installs exactly that from
the package index, its pre-commit hooks come from this repository's .pre-commit-hooks.yaml,
and its first pull request's plan shows every node as new."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import EXAMPLE, ROOT, age_recipient, invoke
from netlab import skip_or_fail


def run(repo: Path, *args: str, env: dict[str, str] | None = None
        ) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(list(args), cwd=repo, capture_output=True, text=True, check=False,
                          env={**os.environ, **(env or {})}, timeout=600)
    assert proc.returncode == 0, f"{' '.join(args)}:\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.fixture
def head() -> str:
    proc = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True,
                          text=True, check=False)
    if proc.returncode != 0:
        skip_or_fail("this test installs vpcmesh from this repository's git HEAD")
    return proc.stdout.strip()


def test_a_new_mesh_repository_installs_its_pinned_vpcmesh_and_plans_its_first_nodes(
        tmp_path: Path, head: str, admin_key: Path) -> None:
    repo = tmp_path / "acme"
    result = invoke("init", "--repo", repo, "--name", "acme", "--domain", "inner.acme.com",
                    "--network", "10.9.0.0/24", "--admin-recipient", age_recipient("admin"),
                    "--tool-repo", f"file://{ROOT}", "--tool-rev", head)
    assert result.exit_code == 0, result.stderr
    # The README's flow in the new repository, with nothing of this checkout but its commit.
    run(repo, "make", "install", f"PYTHON={sys.executable}")
    vpcmesh = repo / ".venv/bin/vpcmesh"
    assert run(repo, str(vpcmesh), "--version").stdout == "vpcmesh, version 0.1.0\n"
    run(repo, "git", "checkout", "-q", "-b", "first-nodes")
    for name, role, extra in (("aliyun-hz-1", "hub", ["--public-ip", "198.51.100.10"]),
                              ("tencent-hz-1", "spoke", [])):
        node = (EXAMPLE / f"nodes/{name}.yaml").read_text()
        private = next(line.split()[1] for line in node.splitlines()
                       if line.startswith("private_address:"))
        run(repo, str(vpcmesh), "node", "add", name, "--role", role, "--cloud", "aliyun",
            "--region", "cn-hangzhou", "--private-ip", private, "--subnet",
            private.rsplit(".", 1)[0] + ".0/24", "--age-recipient", age_recipient(name), *extra)
    run(repo, "make", "test")  # guard and validate, as its pull-request workflow runs them
    run(repo, "git", "add", "-A")
    run(repo, "git", "-c", "user.email=u@example.com", "-c", "user.name=u", "commit", "-qm",
        "the first nodes")
    plan = run(repo, "make", "-s", "plan").stdout
    assert "  + aliyun-hz-1: new node, tunnel address 10.9.0.1\n" in plan
    assert "  + tencent-hz-1: new node, tunnel address 10.9.0.2\n" in plan
    assert "2 node(s) change (2 new, 0 removed)" in plan
    # pre-commit, from the hooks this repository publishes, at the pinned commit.
    pre_commit = shutil.which("pre-commit", path=str(Path(sys.executable).parent))
    assert pre_commit, "pre-commit is a dev dependency"
    hooks = run(repo, pre_commit, "run", "--all-files",
                env={"PRE_COMMIT_HOME": str(tmp_path / "pre-commit")})
    assert "vpcmesh guard" in hooks.stdout and "vpcmesh validate" in hooks.stdout
    (repo / "nodes/tencent-hz-1.yaml").write_text("hostname: [\n")
    proc = subprocess.run([pre_commit, "run", "--all-files"], cwd=repo, capture_output=True,
                          text=True, env={**os.environ, "PRE_COMMIT_HOME": str(tmp_path /
                                                                               "pre-commit")},
                          check=False)
    assert proc.returncode == 1 and "nodes/tencent-hz-1.yaml:" in proc.stdout
