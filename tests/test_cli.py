from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from ruamel.yaml import YAML

from conftest import EXAMPLE, invoke

REPO_COMMANDS = [["validate"], ["render"], ["sign"], ["schema"], ["init"], ["plan"],
                 ["publish"], ["guard"], ["pki", "status"], ["pki", "revoke"], ["pki", "renew"],
                 ["pki", "rotate"],
                 ["node", "add"], ["node", "remove"], ["graph"], ["import"], ["cloud"]]
NODE_COMMANDS = [["pull"], ["agent", "install"], ["agent", "key"], ["agent", "uninstall"],
                 ["status"], ["doctor"]]  # they run on a VM, not in the repository


@pytest.mark.parametrize("command", REPO_COMMANDS)
def test_every_repository_command_has_help_and_repo(command: list[str]) -> None:
    result = invoke(*command, "--help")
    assert result.exit_code == 0
    assert "--repo DIRECTORY" in result.stdout


@pytest.mark.parametrize("command", [*NODE_COMMANDS, ["pki"], ["node"], ["agent"]])
def test_every_other_command_has_help(command: list[str]) -> None:
    assert invoke(*command, "--help").exit_code == 0


def test_every_command_is_listed() -> None:
    from vpcmesh.cli import main

    listed = {(name,) for name in main.commands} | {
        (group, sub) for group, cmd in main.commands.items()
        for sub in getattr(cmd, "commands", {})}
    groups = {g for g, cmd in main.commands.items() if getattr(cmd, "commands", None)}
    assert listed - {(g,) for g in groups} == {tuple(c) for c in REPO_COMMANDS + NODE_COMMANDS}


def test_usage_error_exits_2() -> None:
    result = invoke("validate", "--no-such-flag")
    assert result.exit_code == 2
    assert "No such option" in result.stderr


def test_missing_repository_files_are_user_errors(tmp_path: Path) -> None:
    result = invoke("render", "--repo", tmp_path)
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "mesh/mesh.yaml: missing file: run 'vpcmesh init' or create mesh/mesh.yaml",
        "nodes: missing folder: a mesh keeps one file per VM in nodes/<hostname>.yaml",
    ]
    assert not (tmp_path / "build").exists()


def test_stray_file_in_nodes(base_repo: Path) -> None:
    (base_repo / "nodes/notes.txt").write_text("hello")
    result = invoke("validate", "--repo", base_repo)
    assert (result.exit_code, result.stderr.splitlines()) == (
        1, ["nodes/notes.txt: not a node file; nodes/ holds only <hostname>.yaml files"])


def test_validate_ok_is_quiet_on_stdout(base_repo: Path) -> None:
    result = invoke("validate", "--repo", base_repo)
    assert result.exit_code == 0
    assert result.stdout == ""
    assert result.stderr == "ok: 3 nodes, hub hub-1\n"


def test_validate_json(base_repo: Path) -> None:
    (base_repo / "nodes/spoke-1.yaml").write_text(
        (base_repo / "nodes/spoke-1.yaml").read_text().replace("role: spoke", "role: hubb"))
    result = invoke("validate", "--repo", base_repo, "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout) == {"ok": False, "problems": [{
        "path": "nodes/spoke-1.yaml", "line": 4, "col": 7, "severity": "error",
        "message": "role: 'hubb' is not one of: hub, spoke"}]}


def test_warnings_do_not_fail(base_repo: Path) -> None:
    node = base_repo / "nodes/spoke-1.yaml"
    node.write_text(node.read_text().replace("private_address: 172.21.0.10",
                                             "private_address: 172.29.0.10"))
    result = invoke("validate", "--repo", base_repo, "--json")
    assert result.exit_code == 0
    assert [p["severity"] for p in json.loads(result.stdout)["problems"]] == ["warning"]


@pytest.mark.parametrize("name", ["mesh", "node"])
def test_schema_validates_the_example(name: str) -> None:
    result = invoke("schema", name)
    schema = json.loads(result.stdout)
    Draft202012Validator.check_schema(schema)
    files = [EXAMPLE / "mesh/mesh.yaml"] if name == "mesh" else sorted((EXAMPLE / "nodes").glob("*"))
    for path in files:
        Draft202012Validator(schema).validate(YAML(typ="safe").load(path.read_text()))


def test_verbose_render_reports_what_it_did(base_repo: Path) -> None:
    result = invoke("-v", "render", "--repo", base_repo)
    assert result.exit_code == 0
    assert result.stderr.splitlines() == ["wrote build/ for 3 nodes"]


def test_cli_constants_match_the_package() -> None:
    from vpcmesh import cli
    from vpcmesh.model import schema
    from vpcmesh.pki import x509 as pki

    assert cli.ALGORITHMS == pki.ALGORITHMS
    assert cli.SCHEMA_NAMES == schema.SCHEMA_NAMES


def test_a_garbage_clock_is_a_clear_error_in_render_too(example_repo: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    # render asks the clock before anything else (the stamp); that too goes through the
    # error handler, not a traceback
    monkeypatch.setenv("VPCMESH_NOW", "yesterday")
    result = invoke("render", "--repo", example_repo)
    assert (result.exit_code, result.stderr) == (
        1, "VPCMESH_NOW: 'yesterday' is not an ISO 8601 time such as 2027-01-31T00:00:00Z\n")


def test_an_older_python_runs_the_node_commands_and_names_what_the_compiler_needs(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(sys, "version_info", (3, 9, 2, "final", 0))
    result = invoke("validate", "--repo", tmp_path)
    assert result.exit_code == 1
    assert result.stderr.startswith("error: vpcmesh validate compiles a mesh and needs Python"
                                    " 3.11 or newer (this is 3.9.2)")
    result = invoke("pull", "--status", "--root", tmp_path)
    assert "needs Python" not in result.stderr
