"""`vpcmesh pki rotate tls-crypt-v2`: its three steps, which nodes each re-issues and
restarts, and which server key unwraps which client key at each (as the hub would)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vpcmesh.pki import tlscrypt
from vpcmesh.secrets import sops

from conftest import KEYS, invoke
from meshlab import compile_example

SPOKE, HUB = "tencent-hz-1", "aliyun-hz-1"
LATER = ("2026-11-25T16:00:00Z", "2026-11-25T18:00:00Z", "2026-11-25T20:00:00Z")
KEY, NEXT = f"tc2-{HUB}.key", f"tc2-{HUB}.next.key"


def _pull(repo: Path, host: str, root: Path) -> tuple[str, int]:
    """What the agent said, and how many restarts it has made so far."""
    result = invoke("pull", "--hostname", host, "--source", repo / "build", "--root", root,
                    "--age-key", KEYS / f"{host}.agekey", "--trust-key",
                    repo / "mesh/signing.pub", "--once",
                    "--restart-cmd", f"echo x >> {root}/restarts", "--health-cmd", "true")
    assert result.exit_code == 0, result.stderr
    restarts = root / "restarts"
    return result.stderr, len(restarts.read_text().splitlines()) if restarts.exists() else 0


def _step(repo: Path, monkeypatch: pytest.MonkeyPatch, when: str) -> str:
    monkeypatch.setenv("VPCMESH_NOW", when)
    result = invoke("pki", "rotate", "tls-crypt-v2", "--repo", repo)
    assert result.exit_code == 0, result.stderr
    return result.stderr


def _unwraps(server: Path, client: Path) -> bool:
    try:
        tlscrypt.unwrap(server.read_text(), client.read_text())
    except ValueError:
        return False
    return True


def _admin(repo: Path) -> dict[str, object]:
    return sops.decrypt((repo / "secrets/mesh.sops.yaml").read_bytes(), "mesh.sops.yaml")


def _blocks(config: str) -> list[str]:
    return [line for line in config.splitlines() if line.startswith("tls-crypt-v2 ")]


def test_three_steps_move_every_node_to_the_next_server_keys(
        tmp_path: Path, admin_key: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = compile_example(tmp_path, vpn_extra="  tls_crypt_v2: true\n")
    spoke, hub = tmp_path / "spoke", tmp_path / "hub"
    for root in (spoke, hub):
        (root / "etc").mkdir(parents=True)
    assert _pull(repo, SPOKE, spoke)[1] == _pull(repo, HUB, hub)[1] == 1
    conf, server = spoke / "etc/openvpn/client", hub / "etc/openvpn/server/tc2-server.key"
    config = repo / f"build/{SPOKE}/openvpn/example.conf"
    assert _blocks(config.read_text()) == [f"tls-crypt-v2 {KEY}"]
    first_secret = _admin(repo)["tls_crypt_v2_key"]

    # 1. Introduce: every spoke gets a key for the next server key, in a second block.
    said = _step(repo, monkeypatch, LATER[0])
    assert f"issued {SPOKE} (its tls-crypt-v2 keys are missing" in said
    assert f"issued {HUB}" not in said and "introduced the hubs' next" in said
    text = config.read_text()
    assert _blocks(text) == [f"tls-crypt-v2 {KEY}", f"tls-crypt-v2 {NEXT}"]
    assert text.count("\n<connection>\n") == 2
    assert "\nremote " not in text.split("\n<connection>\n")[0]
    assert _pull(repo, SPOKE, spoke)[1] == 2 and _pull(repo, HUB, hub)[1] == 1
    assert _unwraps(server, conf / KEY) and not _unwraps(server, conf / NEXT)

    too_soon = invoke("pki", "rotate", "tls-crypt-v2", "--repo", repo)
    assert too_soon.exit_code == 1
    assert too_soon.stderr.startswith("mesh/pki/tls-crypt-v2.json: the tls-crypt-v2 rotation"
                                      " became 'introduced' at 2026-11-25T16:00:00Z, less than"
                                      " 1 hour ago")

    # 2. Switch: the hub alone, one restart; its new key takes the spokes' next keys.
    said = _step(repo, monkeypatch, LATER[1])
    assert f"issued {HUB}" in said and f"issued {SPOKE}" not in said
    assert _pull(repo, SPOKE, spoke)[1] == 2
    out, restarts = _pull(repo, HUB, hub)
    # (No OpenVPN here to tell: the lab test sees the clients move at once.)
    assert restarts == 2 and "clients move to their next key" in out, out
    assert _unwraps(server, conf / NEXT) and not _unwraps(server, conf / KEY)

    # 3. Retire: the spokes keep only the new key, in one block; the hub runs on.
    said = _step(repo, monkeypatch, LATER[2])
    assert f"issued {SPOKE}" in said and f"issued {HUB}" not in said
    assert _blocks(config.read_text()) == [f"tls-crypt-v2 {KEY}"]
    assert "\n<connection>\n" not in config.read_text()
    assert _pull(repo, SPOKE, spoke)[1] == 3 and _pull(repo, HUB, hub)[1] == 2
    assert _unwraps(server, conf / KEY) and not (conf / NEXT).exists()
    # The new keys derive from a new secret: whoever read the first one cannot make them.
    assert "next_tls_crypt_v2_key" not in _admin(repo)
    assert _admin(repo)["tls_crypt_v2_key"] != first_secret
    assert server.read_text() != tlscrypt.server_key(first_secret, HUB, 1)
    assert json.loads((repo / "mesh/pki/tls-crypt-v2.json").read_text()) == {
        "generation": 1, "since": LATER[2]}

    status = invoke("pki", "status", "--repo", repo, "--json")
    row = next(r for r in json.loads(status.stdout) if r["name"].startswith("tls-crypt-v2"))
    assert (row["name"], row["issued"], row["status"]) == ("tls-crypt-v2 (gen 1)",
                                                          "2026-11-25", "ok")
    before = {p: p.read_bytes() for p in (repo / "build").rglob("*") if p.is_file()}
    assert invoke("render", "--repo", repo).exit_code == 0
    assert before == {p: p.read_bytes() for p in (repo / "build").rglob("*") if p.is_file()}


def test_a_mesh_without_tls_crypt_v2_has_nothing_to_rotate(
        tmp_path: Path, admin_key: Path) -> None:
    repo = compile_example(tmp_path)
    result = invoke("pki", "rotate", "tls-crypt-v2", "--repo", repo)
    assert (result.exit_code, result.stderr) == (
        1, f"{repo}/mesh/mesh.yaml: vpn.tls_crypt_v2 is off: this mesh has no tls-crypt-v2"
           " server keys to rotate (turn it on first: README, 'Least privilege')\n")
    assert not (repo / "mesh/pki/tls-crypt-v2.json").exists()


def test_a_state_file_that_is_not_one_is_named(tmp_path: Path, admin_key: Path) -> None:
    repo = compile_example(tmp_path, vpn_extra="  tls_crypt_v2: true\n")
    (repo / "mesh/pki/tls-crypt-v2.json").write_text('{"generation": -1, "since": "x"}')
    result = invoke("render", "--repo", repo)
    assert (result.exit_code, result.stderr) == (
        1, "mesh/pki/tls-crypt-v2.json: not a vpcmesh tls-crypt-v2 rotation state (generation,"
           " step, since); restore it from git\n")


def test_a_rotation_cut_short_is_named(tmp_path: Path, admin_key: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    # The state file says introduced, the secrets are from before (a bad merge, a revert of
    # one file): no render issues keys for a secret that is not there.
    repo = compile_example(tmp_path, vpn_extra="  tls_crypt_v2: true\n")
    secrets = repo / "secrets/mesh.sops.yaml"
    old = secrets.read_bytes()
    _step(repo, monkeypatch, LATER[0])
    secrets.write_bytes(old)
    result = invoke("pki", "renew", "--repo", repo)
    assert (result.exit_code, result.stderr) == (
        1, "secrets/mesh.sops.yaml: its next_tls_crypt_v2_key does not go with"
           " mesh/pki/tls-crypt-v2.json (an interrupted 'vpcmesh pki rotate tls-crypt-v2'?);"
           " restore mesh/ and secrets/ from git\n")
