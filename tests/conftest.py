from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from vpcmesh.cli import main
from vpcmesh.model.cache import ParseCache
from vpcmesh.model.snapshot import Snapshot, read_snapshot
from vpcmesh.secrets import sops

TESTS = Path(__file__).parent
ROOT = TESTS.parent
FIXTURES = TESTS / "fixtures"
# The example mesh the tests and the docs read; the repository's own mesh (mesh/, nodes/,
# secrets/ at the top) is its user's, and no test depends on it.
EXAMPLE = ROOT / "examples/hangzhou"


def invoke(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def modules_loaded(prefixes: tuple[str, ...], *args: str | Path) -> list[str]:
    """The modules starting with one of `prefixes` that `vpcmesh ARGS` loads, in a fresh
    interpreter (the command must exit 0)."""
    script = (
        "import json, runpy, sys\n"
        f"sys.argv = ['vpcmesh', *{[str(a) for a in args]!r}]\n"
        "try:\n    runpy.run_module('vpcmesh', run_name='__main__')\n"
        "except SystemExit as exc:\n    assert exc.code == 0, exc.code\n"
        f"print(json.dumps([m for m in sorted(sys.modules) if m.startswith({prefixes!r})]))\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    loaded: list[str] = json.loads(proc.stdout.splitlines()[-1])
    return loaded


def snap(repo: Path) -> Snapshot:
    """The repository's inputs, read as a command reads them (no cache kept)."""
    return read_snapshot(repo, ParseCache(None))


def copy_example(dest: Path) -> Path:
    """The repository's own example mesh, without build/ or tooling."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("mesh", "nodes", "secrets"):
        if (EXAMPLE / name).exists():
            shutil.copytree(EXAMPLE / name, dest / name)
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


# The fixtures every lab test asks for, directly or through another fixture.
LAB_FIXTURES = frozenset({"lab_root", "debian_tun"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the lab tests, so `-m "not lab"` runs the rest alone (make test-pythons does,
    under the newest Python: what differs between Pythons is vpcmesh's code, not OpenVPN's
    or the kernel's, and the full suite already runs twice in CI)."""
    for item in items:
        if LAB_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.lab)


@pytest.fixture(autouse=True)
def _environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("VPCMESH_NOW", FIXED_NOW)
    # No admin key unless a test asks for one, and none picked up from the host's home.
    for name in ("SOPS_AGE_KEY_FILE", "SOPS_AGE_KEY", "SOPS_AGE_KEY_CMD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


@pytest.fixture
def debian_tun() -> Iterator[None]:
    """/dev/net/tun as on a VM (0666), for the tests that run real OpenVPN (meshlab)."""
    from meshlab import debian_tun_mode

    with debian_tun_mode():
        yield


@pytest.fixture
def lab_root() -> Iterator[Path]:
    """A world-readable folder for a lab's VMs (OpenVPN reads it as nobody)."""
    from meshlab import lab_folder

    with lab_folder() as root:
        yield root


@pytest.fixture(scope="session")
def runbook_pki() -> Iterator[Path]:
    """The runbook's easy-rsa PKI and ta.key (tests/runbook.py), made once a session."""
    from runbook import made_once

    with made_once() as folder:
        yield folder


@pytest.fixture
def runbook(runbook_pki: Path, tmp_path: Path) -> Path:
    """A copy of the runbook's manual setup: pki/, ta.key, server.conf, ccd/, ipp.txt,
    client.conf and the import mapping."""
    from runbook import setup

    return setup(runbook_pki, tmp_path / "runbook")


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


@pytest.fixture
def repo(example_repo: Path) -> Path:
    """The example mesh as a git repository, committed on main (for plan and graph --base)."""
    for args in (["init", "-q", "-b", "main"], ["add", "-A"],
                 ["-c", "user.email=ci@example.com", "-c", "user.name=ci", "commit", "-q", "-m",
                  "the example"]):
        subprocess.run(["git", "-C", str(example_repo), *args], check=True, capture_output=True)
    return example_repo


@pytest.fixture
def build(example_repo: Path) -> Path:
    """The example mesh rendered and signed: a build/ a node can pull from."""
    assert invoke("render", "--repo", example_repo).exit_code == 0
    return example_repo / "build"


@pytest.fixture
def node(tmp_path: Path) -> Path:
    """An empty root for a node's agent (--root), with an /etc/hosts of its own."""
    root = tmp_path / "node"
    (root / "etc").mkdir(parents=True)
    (root / "etc/hosts").write_text("127.0.0.1 localhost\n")
    return root


def age_recipient(name: str) -> str:
    """The recipient of a demo key in tests/fixtures/example-keys (its '# public key' line)."""
    for line in (KEYS / f"{name}.agekey").read_text().splitlines():
        if line.startswith("# public key: "):
            return line.removeprefix("# public key: ")
    raise AssertionError(f"no public key line in {name}.agekey")


def add_spoke(repo: Path, name: str, subnet: str, key: str = "tencent-hz-1") -> Path:
    path = repo / "nodes" / f"{name}.yaml"
    path.write_text(
        f"hostname: {name}\ncloud: huawei\nregion: cn-east-3\nrole: spoke\n"
        f"private_address: {subnet.split('/')[0][:-1]}10\nsubnets: [{subnet}]\n"
        f"age_recipient: {age_recipient(key)}\n")
    return path


class SopsCalls:
    """Counts real sops calls through a logging shim (VPCMESH_SOPS)."""

    def __init__(self, log: Path) -> None:
        self.log = log

    def commands(self) -> list[str]:
        if not self.log.exists():
            return []
        words = [line.split() for line in self.log.read_text().splitlines()]
        return [w[2] if w[0] == "--config" else w[0] for w in words]  # the subcommand

    def reset(self) -> None:
        self.log.unlink(missing_ok=True)


@pytest.fixture
def sops_calls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SopsCalls]:
    real = sops.binary()
    log = tmp_path / "sops-calls.log"
    shim = tmp_path / "sops-shim"
    shim.write_text(f'#!/bin/sh\necho "$@" >> {log}\nexec {real} "$@"\n')
    shim.chmod(0o755)
    monkeypatch.setenv("VPCMESH_SOPS", str(shim))
    yield SopsCalls(log)
