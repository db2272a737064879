"""Hostile input: paths that leave the repository, links, and names that are not names.
Each is refused with its place and a reason, exit 1 (2 for usage), and nothing changes."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from conftest import invoke


@pytest.mark.parametrize("args", [
    ["node", "remove", "../mesh/mesh"],
    ["node", "remove", "../../outside"],
    ["pki", "revoke", "../mesh/pki/ca"],
    ["pki", "renew", "../x"],
])
def test_a_name_that_is_a_path_is_a_usage_error(base_repo: Path, args: list[str]) -> None:
    before = {p: p.read_bytes() for p in base_repo.rglob("*") if p.is_file()}
    result = invoke(*args, "--repo", base_repo)
    assert result.exit_code == 2
    assert "is not a node's hostname" in result.stderr
    assert {p: p.read_bytes() for p in base_repo.rglob("*") if p.is_file()} == before


def test_links_among_the_inputs_are_refused_not_followed(base_repo: Path) -> None:
    os.symlink("/etc/shadow", base_repo / "nodes/evil.yaml")
    os.symlink("/dev/zero", base_repo / "secrets/nodes/zero.sops.yaml")
    for command in ("validate", "render"):
        result = invoke(command, "--repo", base_repo)
        assert (result.exit_code, result.stderr.splitlines()) == (1, [
            "nodes/evil.yaml: a symbolic link, not a regular file: vpcmesh reads only regular"
            " files in the repository (a link could point anywhere on this machine)",
            "secrets/nodes/zero.sops.yaml: a symbolic link, not a regular file: vpcmesh reads"
            " only regular files in the repository (a link could point anywhere on this"
            " machine)"])
    assert not (base_repo / "build").exists()


def test_the_guard_follows_no_link_and_stays_in_the_repository(base_repo: Path) -> None:
    subprocess.run(["git", "init", "-q", str(base_repo)], check=True)
    os.symlink("/dev/zero", base_repo / "secrets/nodes/zero.sops.yaml")
    os.symlink("/dev/zero", base_repo / "zero")
    result = invoke("guard", "--repo", base_repo)
    assert (result.exit_code, result.stderr) == (
        1, "secrets/nodes/zero.sops.yaml: a symbolic link under secrets/, which holds"
           " SOPS-encrypted files only\n")
    result = invoke("guard", "--repo", base_repo, "../../etc/passwd")
    assert (result.exit_code, result.stderr) == (
        1, "../../etc/passwd: outside the repository; name files inside it\n")
