"""`vpcmesh agent uninstall`: after an install and a pull, nothing of vpcmesh is left but
the VM's age key (and that too with --purge); the rest of /etc/hosts is kept."""

from __future__ import annotations

import shutil
from pathlib import Path

from conftest import KEYS, invoke

HOST = "tencent-hz-1"
HOSTS = "127.0.0.1 localhost\n10.0.0.5 db.internal\n"


def _everything(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def _installed(build: Path, root: Path) -> None:
    (root / "etc").mkdir(parents=True)
    (root / "etc/hosts").write_text(HOSTS)
    result = invoke("agent", "install", "--hostname", HOST, "--source", build, "--trust-key",
                    build.parent / "mesh/signing.pub", "--root", root,
                    "--metrics", "/var/lib/metrics/vpcmesh.prom")
    assert result.exit_code == 0, result.stderr
    shutil.copy2(KEYS / f"{HOST}.agekey", root / "etc/vpcmesh/age.key")  # its recipient
    result = invoke("pull", "--once", "--hostname", HOST, "--source", build, "--root", root,
                    "--age-key", root / "etc/vpcmesh/age.key", "--trust-key",
                    root / "etc/vpcmesh/signing.pub", "--restart-cmd", "true",
                    "--health-cmd", "true", "--metrics", root / "var/lib/metrics/vpcmesh.prom")
    assert result.exit_code == 0, result.stderr
    assert "# BEGIN vpcmesh example" in (root / "etc/hosts").read_text()


def test_uninstall_leaves_the_age_key_and_the_rest_of_hosts(build: Path, tmp_path: Path) -> None:
    root = tmp_path / "vm"
    _installed(build, root)
    stopped = tmp_path / "stopped"
    result = invoke("agent", "uninstall", "--root", root, "--metrics",
                    "/var/lib/metrics/vpcmesh.prom",
                    "--stop-cmd", f'echo "$VPCMESH_UNIT" > {stopped}')
    assert result.exit_code == 0, result.stderr
    assert stopped.read_text() == "openvpn-client@example\n"
    assert _everything(root) == ["etc/hosts", "etc/vpcmesh/age.key"]
    assert (root / "etc/hosts").read_text() == HOSTS
    assert "stopped and disabled openvpn-client@example\n" in result.stderr
    assert result.stderr.endswith(f"kept {root}/etc/vpcmesh/age.key (this VM's identity;"
                                  " --purge removes it)\n")
    again = invoke("agent", "uninstall", "--root", root, "--purge")
    assert (again.exit_code, _everything(root)) == (0, ["etc/hosts"])


def test_uninstall_where_nothing_is_installed(tmp_path: Path) -> None:
    result = invoke("agent", "uninstall", "--root", tmp_path)
    assert (result.exit_code, result.stderr) == (0, "nothing of vpcmesh is installed here\n")


def test_a_removed_node_is_told_how_to_leave(build: Path, tmp_path: Path) -> None:
    root = tmp_path / "vm"
    _installed(build, root)
    shutil.rmtree(build / HOST)  # what publish does when the node file is removed
    result = invoke("pull", "--once", "--hostname", HOST, "--source", build, "--root", root,
                    "--age-key", root / "etc/vpcmesh/age.key", "--trust-key",
                    root / "etc/vpcmesh/signing.pub", "--restart-cmd", "true")
    assert (result.exit_code, result.stderr) == (
        1, f"{build}/{HOST}/manifest.json: missing from the source; if this node was removed"
           " from the mesh, run 'vpcmesh agent uninstall' on it\n")
