"""mesh/state.yaml, the lock file: never silently reset or trusted after a hand edit."""

from __future__ import annotations

from pathlib import Path

from conftest import invoke


def _validate(repo: Path) -> tuple[int, str]:
    result = invoke("validate", "--repo", repo)
    return result.exit_code, result.stderr


def test_a_lost_state_file_is_explained_not_reset(example_repo: Path) -> None:
    (example_repo / "mesh/state.yaml").unlink()
    assert _validate(example_repo) == (
        1, "mesh/state.yaml: missing, but mesh/pki/issued holds 4 certificate(s), so this mesh"
           " has rendered before: restore it from git (git checkout -- mesh/state.yaml);"
           " without it, tunnel addresses and bundle versions start over\n")
    assert invoke("render", "--repo", example_repo).exit_code == 1
    assert not (example_repo / "mesh/state.yaml").exists()


def test_a_hand_edited_state_file_is_refused(example_repo: Path) -> None:
    state = example_repo / "mesh/state.yaml"
    state.write_text(state.read_text().replace("10.8.0.3", "10.8.0.9"))
    assert _validate(example_repo) == (
        1, "mesh/state.yaml: edited by hand: its checksum does not match; vpcmesh alone writes"
           " it; restore it from git (deleting it renumbers tunnel addresses and bundle"
           " versions)\n")


def test_a_state_file_from_before_checksums_is_read_and_given_one(example_repo: Path) -> None:
    state = example_repo / "mesh/state.yaml"
    lines = state.read_text().splitlines(keepends=True)
    assert lines[-1].startswith("# checksum sha256:")
    state.write_text("".join(lines[:-1]))
    assert _validate(example_repo)[0] == 0
    assert invoke("render", "--repo", example_repo).exit_code == 0
    assert state.read_text() == "".join(lines)
