from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from vpcmesh.cli import main

TESTS = Path(__file__).parent
ROOT = TESTS.parent
FIXTURES = TESTS / "fixtures"


def invoke(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def copy_example(dest: Path) -> Path:
    """The repository's own example mesh, without build/ or tooling."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("mesh", "nodes", "secrets"):
        if (ROOT / name).exists():
            shutil.copytree(ROOT / name, dest / name)
    return dest


def install_fixture(repo: Path, fixture: Path, folder: str) -> None:
    """Drop one failure-case file into a repo; a first line '# replaces: PATH' removes PATH."""
    first = fixture.read_text().splitlines()[0]
    if first.startswith("# replaces: "):
        (repo / first.removeprefix("# replaces: ")).unlink()
    target = repo / folder / fixture.name if folder == "nodes" else repo / "mesh/mesh.yaml"
    shutil.copyfile(fixture, target)


@pytest.fixture
def base_repo(tmp_path: Path) -> Path:
    return Path(shutil.copytree(FIXTURES / "base", tmp_path / "repo"))


@pytest.fixture
def example_repo(tmp_path: Path) -> Path:
    return copy_example(tmp_path / "example")
