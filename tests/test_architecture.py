"""Two programs: what runs on every VM (`pull`, `agent install`) loads none of the compiler."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import EXAMPLE, KEYS, ROOT, invoke, modules_loaded

COMPILER = ("vpcmesh.model", "vpcmesh.planning", "vpcmesh.pki", "vpcmesh.rendering",
            "vpcmesh.compiler", "vpcmesh.authoring", "jsonschema", "ruamel", "jinja2")


def _loaded(*args: str | Path) -> list[str]:
    return modules_loaded(COMPILER, *args)


def test_agent_install_loads_no_compiler_module(tmp_path: Path) -> None:
    assert _loaded("agent", "install", "--hostname", "tencent-hz-1", "--source",
                   "https://bundles.example.com/mesh", "--trust-key", EXAMPLE / "mesh/signing.pub",
                   "--root", tmp_path) == []


def test_a_pull_that_installs_loads_no_compiler_module(example_repo: Path,
                                                       tmp_path: Path) -> None:
    assert invoke("render", "--repo", example_repo).exit_code == 0
    root = tmp_path / "node"
    (root / "etc").mkdir(parents=True)
    assert _loaded("pull", "--once", "--hostname", "tencent-hz-1", "--source",
                   example_repo / "build", "--age-key", KEYS / "tencent-hz-1.agekey",
                   "--trust-key", example_repo / "mesh/signing.pub", "--root", root,
                   "--restart-cmd", "true", "--health-cmd", "true") == []
    assert (root / "etc/openvpn/client/tencent-hz-1.key").exists()


def test_the_import_contracts_hold() -> None:
    """import-linter's contracts in pyproject.toml (also run by `make lint`)."""
    linter = Path(sys.executable).parent / "lint-imports"
    if not linter.exists():
        pytest.skip("import-linter is not installed (pip install -e '.[dev]')")
    proc = subprocess.run([str(linter), "--no-cache"], cwd=ROOT, capture_output=True,
                          text=True, check=False)
    assert proc.returncode == 0, proc.stdout
