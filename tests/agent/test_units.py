"""The units besides OpenVPN (mesh.yaml dns.resolver): the --restart-cmd, --stop-cmd and
--health-cmd contract runs once per unit, a unit that does not come up rolls the whole
version back, a unit the mesh drops is stopped, and a reboot finds every unit enabled."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest

from vpcmesh.agent import system, upkeep
from vpcmesh.agent.pull import PullOptions
from vpcmesh.agent.service import ServiceOptions
from vpcmesh.agent.state import AgentState, write_agent_state

from conftest import KEYS, invoke

pytestmark = pytest.mark.usefixtures("admin_key")  # render signs the bundles
HOST = "tencent-hz-1"
UNIT = "vpcmesh-resolver@example"
# Each call says which unit, with which files: what a lab's script (or a VM's) goes by.
LOG = 'echo "$VPCMESH_UNIT $VPCMESH_CONF_DIR $VPCMESH_CONFIG" >> {root}/{what}'


def _resolver(repo: Path, on: bool = True) -> Path:
    mesh = repo / "mesh/mesh.yaml"
    text = mesh.read_text().replace("\ndns:\n  resolver: true\n", "")
    mesh.write_text(text + ("\ndns:\n  resolver: true\n" if on else ""))
    result = invoke("render", "--repo", repo)
    assert result.exit_code == 0, result.stderr
    return repo / "build"


def _pull(build: Path, root: Path, health: str = "true") -> tuple[int, str]:
    result = invoke("pull", "--hostname", HOST, "--source", build, "--root", root,
                    "--age-key", KEYS / f"{HOST}.agekey", "--trust-key",
                    build.parent / "mesh/signing.pub", "--once", "--health-timeout", "0",
                    "--restart-cmd", LOG.format(root=root, what="restarts"),
                    "--stop-cmd", LOG.format(root=root, what="stops"), "--health-cmd", health)
    return result.exit_code, result.stderr


def _version(build: Path) -> int:
    return int(json.loads((build / HOST / "manifest.json").read_text())["version"])


def _lines(root: Path, what: str) -> list[str]:
    path = root / what
    return path.read_text().splitlines() if path.exists() else []


def _state(root: Path) -> dict[str, object]:
    return dict(json.loads((root / "var/lib/vpcmesh/state.json").read_text()))


def test_each_unit_is_restarted_through_the_contract_and_stopped_when_dropped(
        example_repo: Path, node: Path) -> None:
    build = _resolver(example_repo)
    code, stderr = _pull(build, node)
    assert (code, stderr) == (0, f"installed version {_version(build)} and restarted OpenVPN;"
                                 f" (re)started {UNIT}\n")
    assert _lines(node, "restarts") == [
        f"openvpn-client@example {node}/etc/openvpn/client example.conf",
        f"{UNIT} {node}/etc/vpcmesh/resolver-example unbound.conf"]
    assert (node / "etc/vpcmesh/resolver-example/unbound.conf").exists()
    assert (node / "etc/systemd/system/vpcmesh-resolver@.service").exists()
    assert _state(node)["units"] == [UNIT]
    # Nothing new: nothing restarted.
    assert _pull(build, node) == (0, "")
    assert len(_lines(node, "restarts")) == 2

    build = _resolver(example_repo, on=False)
    code, stderr = _pull(build, node)
    assert code == 0, stderr
    assert _lines(node, "stops") == [f"{UNIT} {node}/etc/vpcmesh/resolver-example unbound.conf"]
    assert not (node / "etc/vpcmesh/resolver-example").exists() or not any(
        (node / "etc/vpcmesh/resolver-example").iterdir())
    assert not (node / "etc/systemd/system/vpcmesh-resolver@.service").exists()
    assert _state(node)["units"] == []


def test_a_resolver_that_does_not_come_up_rolls_the_version_back(example_repo: Path,
                                                                 node: Path) -> None:
    build = _resolver(example_repo)
    code, stderr = _pull(build, node, health=f'test "$VPCMESH_UNIT" != {UNIT}')
    assert code == 1
    assert f"version {_version(build)} ({UNIT}) did not start within 0s; nothing was installed before, so" \
           f" openvpn-client@example, {UNIT} are stopped; trying it again after" in stderr
    assert _lines(node, "stops") == [
        f"openvpn-client@example {node}/etc/openvpn/client example.conf",
        f"{UNIT} {node}/etc/vpcmesh/resolver-example unbound.conf"]
    assert not (node / "etc/vpcmesh/resolver-example/unbound.conf").exists()
    assert not (node / "etc/openvpn/client/example.conf").exists()
    assert _state(node)["failed_version"] == _version(build)


def test_without_unbound_the_bundle_is_refused_before_anything_changes(
        example_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On the real / under systemd: the pull says what to install instead of failing a
    health check. (The root here is a folder standing in for /.)"""
    build = _resolver(example_repo)
    root = tmp_path / "vm"
    (root / "etc").mkdir(parents=True)
    monkeypatch.setattr(system, "REAL_ROOT", root)
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr("vpcmesh.agent.resolver.SBIN", str(root / "usr/sbin"))
    result = invoke("pull", "--hostname", HOST, "--source", build, "--root", root,
                    "--age-key", KEYS / f"{HOST}.agekey", "--trust-key",
                    build.parent / "mesh/signing.pub", "--once", "--no-firewall")
    assert result.exit_code == 1
    assert result.stderr == (
        f"{root}/etc/vpcmesh/resolver-example: this bundle runs vpcmesh's resolver (mesh.yaml"
        " dns.resolver), but unbound is not installed: apt install unbound (or dnf install"
        " unbound), then pull again\n")
    assert not (root / "etc/openvpn").exists()


def test_every_installed_unit_is_enabled_for_the_next_boot(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A VM rebooted for a kernel update must come back into the mesh by itself: the pull
    enables the units it runs (systemd itself cannot run here; its calls are recorded)."""
    calls: list[tuple[str, ...]] = []

    def systemctl(*args: str) -> int:
        calls.append(args)
        return 1 if args[0] == "is-enabled" and args[-1] == UNIT else 0

    monkeypatch.setattr(system, "REAL_ROOT", tmp_path)
    monkeypatch.setattr(system, "has_systemd", lambda: True)
    monkeypatch.setattr(system, "systemctl", systemctl)
    write_agent_state(tmp_path, AgentState(mesh="example", version=1,
                                           unit="openvpn-client@example", units=(UNIT,)))
    opts = PullOptions(HOST, tmp_path / "age.key", tmp_path / "signing.pub", root=tmp_path)
    assert upkeep.ensure_enabled(opts) == (UNIT,)
    assert calls == [("is-enabled", "--quiet", "openvpn-client@example"),
                     ("is-enabled", "--quiet", UNIT), ("enable", UNIT)]
    # The operator's own --restart-cmd runs the units: systemd is left alone.
    calls.clear()
    custom = PullOptions(HOST, tmp_path / "age.key", tmp_path / "signing.pub", root=tmp_path,
                         service=ServiceOptions(restart_cmd="true"))
    assert upkeep.ensure_enabled(custom) == ()
    assert calls == []


def test_the_up_script_routes_only_the_inner_domain_to_the_hub(build_with_resolver: Path,
                                                              tmp_path: Path) -> None:
    """Where systemd-resolved runs (it cannot here: a stand-in resolvectl records its calls);
    where it does not, the script does nothing and never fails the tunnel."""
    script = build_with_resolver / HOST / "openvpn/vpcmesh-dns.sh"
    fake = tmp_path / "bin/resolvectl"
    fake.parent.mkdir()
    fake.write_text(f'#!/bin/sh\necho "$*" >> {tmp_path}/calls\n')
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    env = {**os.environ, "PATH": f"{fake.parent}:/usr/bin:/bin", "dev": "tun3"}
    done = subprocess.run(["/bin/sh", str(script), "tun3", "1500"], env=env, check=False)
    assert done.returncode == 0
    assert (tmp_path / "calls").read_text().splitlines() == [
        "status", "dns tun3 10.8.0.1", "domain tun3 ~inner.example.com",
        "default-route tun3 false"]
    # resolved not running: `resolvectl status` fails, and nothing else is asked.
    fake.write_text(f'#!/bin/sh\necho "$*" >> {tmp_path}/calls2\nexit 1\n')
    done = subprocess.run(["/bin/sh", str(script), "tun3", "1500"], env=env, check=False)
    assert done.returncode == 0
    assert (tmp_path / "calls2").read_text().splitlines() == ["status"]


@pytest.fixture
def build_with_resolver(example_repo: Path) -> Path:
    return _resolver(example_repo)
