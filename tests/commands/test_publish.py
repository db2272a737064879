"""Publish cannot diverge: it takes a clean, pushed commit, and refuses anything that would
make the bundles differ from it or collide with what was published before."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import invoke


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), "-c", "user.email=ci@example.com", "-c",
                           "user.name=ci", *args], check=True, capture_output=True,
                          text=True).stdout.strip()


@pytest.fixture
def repo(example_repo: Path, tmp_path: Path, admin_key: Path) -> Path:
    """The example as a team has it: signed, committed, pushed to its origin."""
    origin = tmp_path / "origin.git"
    subprocess.run(["git", "init", "-q", "--bare", str(origin)], check=True)
    # as a mesh made before the lock file existed ignores it: publish must not trip on it
    (example_repo / ".gitignore").write_text("/build/\n/.vpcmesh-stamp.json\n"
                                             "/.vpcmesh-cache.json\n")
    git(example_repo, "init", "-q", "-b", "main")
    git(example_repo, "remote", "add", "origin", str(origin))
    git(example_repo, "add", "-A")
    git(example_repo, "commit", "-q", "-m", "the example")
    # Its manifests name commits of another history: this sign signs them again.
    assert invoke("sign", "--repo", example_repo).exit_code == 0
    git(example_repo, "add", "-A")
    git(example_repo, "commit", "-qm", "signed")
    git(example_repo, "push", "-q", "origin", "main")
    return example_repo


def publish(repo: Path, *extra: str) -> tuple[int, str]:
    result = invoke("publish", "--repo", repo, "--to", repo.parent / "bundles.git", *extra)
    return result.exit_code, result.stderr


@pytest.fixture
def published(repo: Path) -> Path:
    bundles = repo.parent / "bundles.git"
    subprocess.run(["git", "init", "-q", "--bare", str(bundles)], check=True)
    assert publish(repo)[0] == 0
    return bundles


def _tip(bundles: Path) -> str:
    return git(bundles, "rev-parse", "bundles")


def test_a_clean_pushed_commit_is_published(repo: Path, published: Path) -> None:
    head = git(repo, "rev-parse", "HEAD")
    assert git(published, "log", "--format=%s", "bundles") == f"Publish bundles from {head[:12]}"
    manifest = json.loads(git(published, "show", "bundles:tencent-hz-1/manifest.json"))
    assert git(repo, "merge-base", "--is-ancestor", manifest["commit"], head) == ""


def test_uncommitted_changes_are_refused(repo: Path, published: Path) -> None:
    tip = _tip(published)
    node = repo / "nodes/huawei-hz-1.yaml"
    node.write_text(node.read_text().replace("cn-east-hz", "cn-east-3"))
    assert publish(repo) == (1, "nodes/huawei-hz-1.yaml: uncommitted changes"
                                " (nodes/huawei-hz-1.yaml): publish takes a commit; commit or"
                                " stash them (or --allow-dirty, to publish anyway)\n")
    assert _tip(published) == tip


def test_a_commit_no_remote_has_is_refused(repo: Path, published: Path) -> None:
    git(repo, "commit", "-q", "--allow-empty", "-m", "not pushed")
    head = git(repo, "rev-parse", "HEAD")
    assert publish(repo) == (1, f"{repo}: HEAD {head[:12]} is on no remote branch: push it"
                                " first, so that the commit the bundles come from exists for"
                                " everyone (or --allow-dirty, to publish anyway)\n")


def test_a_change_that_was_never_signed_and_committed_is_refused(repo: Path,
                                                                 published: Path) -> None:
    tip = _tip(published)
    node = repo / "nodes/huawei-hz-1.yaml"
    node.write_text(node.read_text().replace("cn-east-hz", "cn-east-3"))
    git(repo, "commit", "-qam", "a region, merged without CI's sign")
    git(repo, "push", "-q", "origin", "main")
    code, stderr = publish(repo)
    assert (code, stderr.splitlines()[0]) == (
        1, "mesh/state.yaml: written by this publish's render: the repository was not signed"
           " and committed; run 'vpcmesh sign', commit and push what it writes, and publish"
           " again (or --allow-dirty, to publish anyway)")
    assert _tip(published) == tip


def test_a_state_file_behind_what_was_published_is_refused(repo: Path,
                                                           published: Path) -> None:
    before = git(repo, "rev-parse", "HEAD")
    node = repo / "nodes/huawei-hz-1.yaml"
    node.write_text(node.read_text().replace("cn-east-hz", "cn-east-3"))
    git(repo, "commit", "-qam", "a region")
    assert invoke("sign", "--repo", repo).exit_code == 0
    git(repo, "commit", "-qam", "signed")
    git(repo, "push", "-q", "origin", "main")
    assert publish(repo)[0] == 0
    # Someone reverts the state file (and signs again with an old sequence).
    git(repo, "checkout", "-q", before, "--", "mesh/state.yaml")
    git(repo, "commit", "-qam", "an old state file")
    git(repo, "push", "-q", "origin", "main")
    tip = _tip(published)
    code, stderr = publish(repo, "--allow-dirty")  # even the brave are stopped here
    assert code == 1 and "is behind what was published (lost or reverted?)" in stderr
    assert _tip(published) == tip


def test_a_removed_node_that_comes_back_continues_its_versions(repo: Path) -> None:
    saved = repo.parent / "ucloud-hz-1.yaml"
    shutil.copyfile(repo / "nodes/ucloud-hz-1.yaml", saved)
    before = json.loads((repo / "build/ucloud-hz-1/manifest.json").read_bytes())["version"]
    assert invoke("node", "remove", "ucloud-hz-1", "--repo", repo).exit_code == 0
    assert invoke("sign", "--repo", repo).exit_code == 0
    assert "ucloud-hz-1: " in (repo / "mesh/state.yaml").read_text().split("retired:")[1]
    shutil.copyfile(saved, repo / "nodes/ucloud-hz-1.yaml")
    assert invoke("sign", "--repo", repo).exit_code == 0
    after = json.loads((repo / "build/ucloud-hz-1/manifest.json").read_bytes())["version"]
    assert after == before + 1  # not 1: its agent would refuse that as a rollback


def test_a_bundle_signed_from_uncommitted_changes_says_so(repo: Path) -> None:
    node = repo / "nodes/huawei-hz-1.yaml"
    node.write_text(node.read_text().replace("cn-east-hz", "cn-east-3"))
    assert invoke("sign", "--repo", repo).exit_code == 0
    commit = json.loads((repo / "build/aliyun-hz-1/manifest.json").read_bytes())["commit"]
    assert commit == git(repo, "rev-parse", "HEAD") + "-dirty"
    git(repo, "commit", "-qam", "a region")
    git(repo, "push", "-q", "origin", "main")
    # The next sign, on a clean checkout, signs it again with its real commit.
    assert invoke("sign", "--repo", repo).exit_code == 0
    commit = json.loads((repo / "build/aliyun-hz-1/manifest.json").read_bytes())["commit"]
    assert commit == git(repo, "rev-parse", "HEAD")


def test_a_shallow_clone_trusts_signatures_it_cannot_check_but_publish_asks_for_history(
        repo: Path, tmp_path: Path) -> None:
    git(repo, "commit", "-q", "--allow-empty", "-m", "one more")
    git(repo, "push", "-q", "origin", "main")
    shallow = tmp_path / "shallow"
    subprocess.run(["git", "clone", "-q", "--depth", "1", "-b", "main",
                    f"file://{tmp_path}/origin.git",
                    str(shallow)], check=True)
    result = invoke("-v", "render", "--repo", shallow)
    assert result.exit_code == 0 and "warning" not in result.stderr, result.stderr
    assert git(shallow, "status", "--porcelain") == ""  # nothing signed again
    bundles = tmp_path / "shallow-bundles.git"
    subprocess.run(["git", "init", "-q", "--bare", str(bundles)], check=True)
    result = invoke("publish", "--repo", shallow, "--to", bundles)
    assert result.exit_code == 1
    assert "which this shallow clone lacks: publish from a full clone (actions/checkout:" \
           " fetch-depth: 0) (or --allow-dirty, to publish anyway)" in result.stderr


def test_vpcmeshs_own_working_files_are_not_uncommitted_changes(repo: Path) -> None:
    # A mesh from before the lock file: .gitignore does not name it, git sees it untracked.
    if (repo / ".vpcmesh.lock").exists():
        git(repo, "rm", "-q", "--cached", "--ignore-unmatch", ".vpcmesh.lock")
    git(repo, "commit", "-q", "--allow-empty", "-m", "the lock is not tracked")
    git(repo, "push", "-q", "origin", "main")
    (repo / ".vpcmesh.lock").touch()
    assert "?? .vpcmesh.lock" in git(repo, "status", "--porcelain")
    subprocess.run(["git", "init", "-q", "--bare", str(repo.parent / "bundles.git")],
                   check=True)
    assert publish(repo) == (0, f"{repo.parent / 'bundles.git'} bundles: published"
                                f" {_tip(repo.parent / 'bundles.git')[:12]} from"
                                f" {git(repo, 'rev-parse', 'HEAD')[:12]}\n")
