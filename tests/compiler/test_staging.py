from __future__ import annotations

from pathlib import Path

import pytest

from vpcmesh.compiler.staging import Staging, replace_tree
from vpcmesh.fsio import read_tree, replace_file


def test_replace_tree_creates_then_swaps(tmp_path: Path) -> None:
    target = tmp_path / "build"
    assert replace_tree(target, {"a/x": b"1", "b": b"2"})
    assert read_tree(target) == {"a/x": b"1", "b": b"2"}
    assert replace_tree(target, {"c": b"3"})
    assert read_tree(target) == {"c": b"3"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["build"]


def test_replace_tree_unchanged_is_a_no_op(tmp_path: Path) -> None:
    target = tmp_path / "build"
    replace_tree(target, {"a": b"1"})
    inode = (target / "a").stat().st_ino
    assert not replace_tree(target, {"a": b"1"})
    assert (target / "a").stat().st_ino == inode


def test_failure_while_writing_keeps_the_old_tree(tmp_path: Path) -> None:
    target = tmp_path / "build"
    replace_tree(target, {"a": b"old"})
    broken = {"a": b"new", "b": "not bytes"}
    with pytest.raises(TypeError):
        replace_tree(target, broken)  # type: ignore[arg-type]
    assert read_tree(target) == {"a": b"old"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["build"]


def test_private_files_get_mode_0600(tmp_path: Path) -> None:
    replace_tree(tmp_path / "b", {"k": b"s", "p": b"x"}, private=frozenset({"k"}))
    assert (tmp_path / "b/k").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "b/p").stat().st_mode & 0o777 == 0o644


def test_replace_file(tmp_path: Path) -> None:
    path = tmp_path / "d/f"
    assert replace_file(path, b"1")
    assert not replace_file(path, b"1")
    assert replace_file(path, b"2", mode=0o600)
    assert path.read_bytes() == b"2" and path.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == ["f"]


def test_staging_early_cannot_change_the_result(tmp_path: Path) -> None:
    target = tmp_path / "build"
    replace_tree(target, {"a/x": b"1", "b/y": b"2"})
    with Staging(target) as staging:
        # staged early: one right, one with other bytes, one not wanted in the end
        staging.put({"a/x": b"1", "b/y": b"old guess", "c/z": b"dropped"})
        assert staging.finish({"a/x": b"1", "b/y": b"3"})
    assert read_tree(target) == {"a/x": b"1", "b/y": b"3"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["build"]


def test_staging_left_unfinished_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "build"
    replace_tree(target, {"a/x": b"1"})
    with pytest.raises(RuntimeError), Staging(target) as staging:
        staging.put({"a/x": b"2"})
        raise RuntimeError("a later step failed")
    assert read_tree(target) == {"a/x": b"1"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["build"]
