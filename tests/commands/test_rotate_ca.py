"""`vpcmesh pki rotate ca`: its three steps, what each does to a VM, and OpenSSL's verdict
on every pairing of a node's trust (before and after each step) with a peer's certificate."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509

from conftest import KEYS, invoke

HOST = "tencent-hz-1"
HUB = "aliyun-hz-1"
LATER = ("2026-11-25T16:00:00Z", "2026-11-25T18:00:00Z", "2026-11-25T20:00:00Z")


def _pull(build: Path, root: Path) -> tuple[int, str, int]:
    result = invoke("pull", "--hostname", HOST, "--source", build, "--root", root,
                    "--age-key", KEYS / f"{HOST}.agekey", "--trust-key",
                    build.parent / "mesh/signing.pub", "--once",
                    "--restart-cmd", f"echo x >> {root}/restarts", "--health-cmd", "true")
    restarts = root / "restarts"
    count = len(restarts.read_text().splitlines()) if restarts.exists() else 0
    return result.exit_code, result.stderr, count


def _step(repo: Path, monkeypatch: pytest.MonkeyPatch, when: str, *extra: str) -> str:
    monkeypatch.setenv("VPCMESH_NOW", when)
    result = invoke("pki", "rotate", "ca", "--repo", repo, *extra)
    assert result.exit_code == 0, result.stderr
    return result.stderr


def _pems(path: Path, kind: str = "CERTIFICATE") -> list[bytes]:
    data = path.read_bytes()
    end = f"-----END {kind}-----\n".encode()
    return [part + end for part in data.split(end) if part.strip()]


def test_three_steps_each_restarting_a_node_at_most_once(
        build: Path, node: Path, admin_key: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo, files = build.parent, build / HOST / "openvpn"
    old_ca = (repo / "mesh/pki/ca.crt").read_bytes()
    assert _pull(build, node)[::2] == (0, 1)

    said = _step(repo, monkeypatch, LATER[0])
    assert "introduced a new CA key" in said
    assert _pems(files / "ca.crt")[0] == old_ca and len(_pems(files / "ca.crt")) == 2
    assert len(_pems(files / "crl.pem", "X509 CRL")) == 2
    new_ca = _pems(files / "ca.crt")[1]
    assert x509.load_pem_x509_certificate(new_ca).subject == \
        x509.load_pem_x509_certificate(old_ca).subject  # one name: a key rollover
    code, err, restarts = _pull(build, node)
    assert (code, restarts) == (0, 1), err  # installed, read at the next start
    # A hub's server: the old CA alone (OpenVPN's server refuses two CAs of one name).
    assert _pems(build / HUB / "openvpn/ca.crt") == [old_ca]

    too_soon = invoke("pki", "rotate", "ca", "--repo", repo)
    assert too_soon.exit_code == 1
    assert too_soon.stderr.startswith("mesh/pki/rotation/step.json: the CA rotation became"
                                      " 'introduced' at 2026-11-25T16:00:00Z, less than 1 hour")

    said = _step(repo, monkeypatch, LATER[1])
    assert "issued tencent-hz-1 (renewal requested)" in said
    leaf, cross = _pems(files / f"{HOST}.crt")
    assert (repo / "mesh/pki/ca.crt").read_bytes() == new_ca
    assert x509.load_pem_x509_certificate(cross).public_key() == \
        x509.load_pem_x509_certificate(new_ca).public_key()
    assert (_pull(build, node)[0], _pull(build, node)[2]) == (0, 2)  # restarted once
    assert _pems(build / HUB / "openvpn/ca.crt") == [old_ca]
    revoke = invoke("pki", "revoke", "ucloud-hz-1", "--repo", repo)
    assert revoke.exit_code == 1 and "first retire the old CA" in revoke.stderr

    said = _step(repo, monkeypatch, LATER[2])
    assert "retired the old CA" in said
    assert not (repo / "mesh/pki/rotation").exists()
    assert _pems(files / "ca.crt") == [new_ca] and len(_pems(files / "crl.pem", "X509 CRL")) == 1
    assert _pems(build / HUB / "openvpn/ca.crt") == [new_ca]
    assert _pems(files / f"{HOST}.crt") == [leaf, cross]  # until its next renewal
    code, err, restarts = _pull(build, node)
    assert (code, restarts) == (0, 2), err
    # and the next run starts a new rotation, not a fourth step
    assert invoke("render", "--repo", repo).exit_code == 0


def _commit(repo: Path) -> None:
    subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(repo), "-c", "user.email=a@b", "-c", "user.name=a",
                    "commit", "-qm", "a step"], check=True)


def _impacts(repo: Path) -> dict[str, str]:
    result = invoke("plan", "--repo", repo, "--base", "HEAD", "--json")
    assert result.exit_code == 0, result.stderr
    return {n["hostname"]: n["impact"] for n in json.loads(result.stdout)["nodes"]}


def test_plan_says_what_each_step_restarts(
        repo: Path, admin_key: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert invoke("render", "--repo", repo).exit_code == 0
    _commit(repo)
    _step(repo, monkeypatch, LATER[0])
    quiet = "no restart (a new CRL, read at its next handshake"
    assert _impacts(repo) == {
        HUB: f"{quiet})", **{h: f"{quiet}; the CAs it trusts, read at its next start)"
                              for h in ("huawei-hz-1", HOST, "ucloud-hz-1")}}
    _commit(repo)
    _step(repo, monkeypatch, LATER[1])
    assert _impacts(repo) == {HUB: "hub restarts: 3 spoke(s) reconnect", **{
        h: "restarts its OpenVPN: only this node reconnects"
        for h in ("huawei-hz-1", HOST, "ucloud-hz-1")}}
    _commit(repo)
    _step(repo, monkeypatch, LATER[2])
    assert _impacts(repo) == {HUB: "hub restarts: 3 spoke(s) reconnect", **{
        h: f"{quiet}; the CAs it trusts, read at its next start)"
        for h in ("huawei-hz-1", HOST, "ucloud-hz-1")}}


def _verify(trust: list[bytes], crls: list[bytes], chain: list[bytes], tmp: Path) -> bool:
    for name, parts in (("trust", trust), ("crls", crls), ("extra", chain[1:] or chain[:1]),
                        ("leaf", chain[:1])):
        (tmp / name).write_bytes(b"".join(parts))
    done = subprocess.run(["openssl", "verify", "-crl_check_all", "-CAfile", tmp / "trust",
                           "-CRLfile", tmp / "crls", "-untrusted", tmp / "extra", tmp / "leaf"],
                          capture_output=True, text=True)
    return done.returncode == 0


def test_openssl_accepts_each_pairing_the_steps_allow_and_refuses_the_retired_ca(
        build: Path, admin_key: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """What OpenVPN does with ca.crt and crl.pem (--crl-verify: a CRL for every certificate
    of the chain), as `openssl verify -crl_check_all` does it."""
    repo, files = build.parent, build / HOST / "openvpn"
    _step(repo, monkeypatch, LATER[0])
    old_ca, new_ca = _pems(files / "ca.crt")
    old_crl, new_crl = _pems(files / "crl.pem", "X509 CRL")
    old_leaf = _pems(files / f"{HOST}.crt")
    _step(repo, monkeypatch, LATER[1])
    new_chain = _pems(files / f"{HOST}.crt")
    monkeypatch.delenv("VPCMESH_NOW")  # openssl checks against today's date
    # (what the verifier runs with in memory, and its crl.pem) -> (old leaf, new chain)
    table = {
        "before the rotation": ([old_ca], [old_crl], (True, True)),
        "introduced, not restarted": ([old_ca], [old_crl, new_crl], (True, True)),
        "moved (restarted)": ([old_ca, new_ca], [old_crl, new_crl], (True, True)),
        "retired, not restarted": ([old_ca, new_ca], [new_crl], (False, True)),
        "retired, restarted": ([new_ca], [new_crl], (False, True)),
    }
    found = {what: (trust, crls, (_verify(trust, crls, old_leaf, tmp_path),
                                  _verify(trust, crls, new_chain, tmp_path)))
             for what, (trust, crls, _) in table.items()}
    assert found == table


def test_an_interrupted_introduction_is_caught(
        build: Path, admin_key: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = build.parent
    _step(repo, monkeypatch, LATER[0])
    shutil.rmtree(repo / "mesh/pki/rotation")  # as if cut short after the secret
    result = invoke("pki", "rotate", "ca", "--repo", repo)
    assert result.exit_code == 1
    assert result.stderr.startswith("secrets/mesh.sops.yaml: its next_ca_key does not go with"
                                    " mesh/pki/rotation/ca.crt")
    (repo / "mesh/pki/rotation").mkdir()
    (repo / "mesh/pki/rotation/step.json").write_text(json.dumps({"step": "moving"}))
    result = invoke("render", "--repo", repo)
    assert result.exit_code == 1
    assert "mesh/pki/rotation/ca.crt: missing while a CA rotation is under way" in result.stderr


def test_a_rotation_left_half_done_warns_before_its_crl_runs_out(
        build: Path, admin_key: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing re-issues the CRL of the CA that does not issue (the next step removes it)."""
    repo = build.parent
    _step(repo, monkeypatch, LATER[0])
    monkeypatch.setenv("VPCMESH_NOW", "2027-11-10T00:00:00Z")  # its CRL: 365 days
    result = invoke("validate", "--repo", repo)
    assert "mesh/pki/rotation/crl.pem: warning: the CRL of the CA rotation expires on" \
           " 2027-11-25; take the next step of the CA rotation" in result.stderr


def test_a_move_cut_short_is_finished_by_the_next_run(
        build: Path, admin_key: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Killed after the files moved but before the certificates were issued: the next run
    issues the ones still from the old CA (and only those), rather than retiring it."""
    repo = build.parent
    _step(repo, monkeypatch, LATER[0])
    kept = {p: p.read_bytes() for p in (repo / "mesh/pki/issued").iterdir()}
    _step(repo, monkeypatch, LATER[1])
    moved = {p: p.read_bytes() for p in kept}
    for path in list(kept)[:2]:  # two of them as before the move
        path.write_bytes(kept[path])
    said = _step(repo, monkeypatch, LATER[2])
    assert "the new CA issued every node" in said
    assert sorted(line for line in said.splitlines() if line.startswith("issued")) == sorted(
        f"issued {p.stem} (renewal requested)" for p in list(kept)[:2])
    assert all((repo / "mesh/pki/issued" / p.name).read_bytes() == moved[p]
               for p in list(kept)[2:])
    assert (repo / "mesh/pki/rotation/step.json").is_file()  # still moving
