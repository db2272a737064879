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


# Certificates in the fixtures were issued on 2026-11-25; a fixed clock keeps every test
# away from their renewal windows, whatever the date the suite runs on.
FIXED_NOW = "2026-12-01T00:00:00Z"
KEYS = FIXTURES / "example-keys"


@pytest.fixture(autouse=True)
def _environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("VPCMESH_NOW", FIXED_NOW)
    # No admin key unless a test asks for one, and none picked up from the host's home.
    for name in ("SOPS_AGE_KEY_FILE", "SOPS_AGE_KEY", "SOPS_AGE_KEY_CMD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


@pytest.fixture
def admin_key(monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(KEYS / "admin.agekey"))
    return KEYS / "admin.agekey"


@pytest.fixture
def base_repo(tmp_path: Path) -> Path:
    return Path(shutil.copytree(FIXTURES / "base", tmp_path / "repo"))


@pytest.fixture
def example_repo(tmp_path: Path) -> Path:
    return copy_example(tmp_path / "example")
