from __future__ import annotations

import subprocess
from pathlib import Path

from conftest import EXAMPLE, invoke


def _install(root: Path, *extra: str) -> tuple[int, str, str]:
    result = invoke("agent", "install", "--hostname", "tencent-hz-1", "--source",
                    "https://bundles.example.com/mesh", "--trust-key", EXAMPLE / "mesh/signing.pub",
                    "--root", root, *extra)
    return result.exit_code, result.stdout, result.stderr


def test_install_writes_a_key_a_timer_and_shows_the_recipient(tmp_path: Path) -> None:
    code, out, _ = _install(tmp_path)
    assert code == 0
    key = tmp_path / "etc/vpcmesh/age.key"
    assert key.stat().st_mode & 0o777 == 0o600
    recipient = subprocess.run(["age-keygen", "-y", str(key)], capture_output=True, text=True,
                               check=True).stdout.strip()
    assert out == f"age_recipient: {recipient}\n"
    timer = (tmp_path / "etc/systemd/system/vpcmesh-pull.timer").read_text()
    assert "OnUnitActiveSec=2min\n" in timer and "RandomizedDelaySec=30s\n" in timer
    service = (tmp_path / "etc/systemd/system/vpcmesh-pull.service").read_text()
    assert " pull --once --hostname tencent-hz-1 --source https://bundles.example.com/mesh" \
           " --ref bundles --age-key /etc/vpcmesh/age.key --trust-key" \
           " /etc/vpcmesh/signing.pub --metrics" \
           " /var/lib/prometheus/node-exporter/vpcmesh.prom\n" in service
    assert (tmp_path / "etc/vpcmesh/signing.pub").read_bytes() == (
        EXAMPLE / "mesh/signing.pub").read_bytes()


def test_a_second_install_keeps_the_key(tmp_path: Path) -> None:
    first = _install(tmp_path)[1]
    assert _install(tmp_path)[1] == first


def test_agent_key_gives_the_recipient_before_anything_is_installed(tmp_path: Path) -> None:
    """What a VM of an existing setup runs before `vpcmesh import` (which needs every
    recipient): a key and nothing else; the later install keeps it."""
    result = invoke("agent", "key", "--root", tmp_path)
    assert result.exit_code == 0, result.stderr
    key = tmp_path / "etc/vpcmesh/age.key"
    assert key.stat().st_mode & 0o777 == 0o600
    recipient = subprocess.run(["age-keygen", "-y", str(key)], capture_output=True, text=True,
                               check=True).stdout.strip()
    assert result.stdout == f"age_recipient: {recipient}\n"
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["age.key"]
    assert invoke("agent", "key", "--root", tmp_path).stdout == result.stdout
    assert _install(tmp_path)[1] == result.stdout


def test_cron(tmp_path: Path) -> None:
    assert _install(tmp_path, "--cron")[0] == 0
    line = (tmp_path / "etc/cron.d/vpcmesh-pull").read_text().splitlines()[-1]
    assert line.startswith("*/2 * * * * root sleep $((RANDOM \\% 30)); ")
    assert not (tmp_path / "etc/systemd").exists()


def test_trust_key_must_be_a_public_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pub"
    bad.write_text("hello")
    result = invoke("agent", "install", "--hostname", "h", "--source", "x", "--trust-key", bad,
                    "--root", tmp_path / "r")
    assert (result.exit_code, result.stderr) == (
        1, f"{bad}: not a PEM public key; use the mesh's mesh/signing.pub\n")
    assert not (tmp_path / "r").exists()


def test_the_metrics_file_can_move_or_be_left_out(tmp_path: Path) -> None:
    def unit(root: Path, *extra: str) -> str:
        assert _install(root, *extra)[0] == 0
        return (root / "etc/systemd/system/vpcmesh-pull.service").read_text()

    assert " --metrics /srv/vpcmesh.prom\n" in unit(tmp_path / "a", "--metrics",
                                                     "/srv/vpcmesh.prom")
    assert "--metrics" not in unit(tmp_path / "b", "--metrics", "")
