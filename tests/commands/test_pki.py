from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography import x509

from conftest import invoke


def _serial(repo: Path, host: str) -> int:
    return x509.load_pem_x509_certificate(
        (repo / f"mesh/pki/issued/{host}.crt").read_bytes()).serial_number


def _crl(repo: Path) -> x509.CertificateRevocationList:
    return x509.load_pem_x509_crl((repo / "mesh/pki/crl.pem").read_bytes())


def test_status_lists_every_certificate(base_repo: Path) -> None:
    result = invoke("pki", "status", "--repo", base_repo, "--json")
    assert result.exit_code == 0
    rows = {r["name"]: (r["kind"], r["status"]) for r in json.loads(result.stdout)}
    assert rows == {"ca": ("ca", "ok"), "crl": ("crl", "ok"), "hub-1": ("server", "ok"),
                    "spoke-1": ("client", "ok"), "spoke-2": ("client", "ok"),
                    "signing-key": ("ed25519", "ok")}
    text = invoke("pki", "status", "--repo", base_repo).stdout.splitlines()
    assert text[0].split() == ["NAME", "KIND", "AGE", "EXPIRES", "DAYS", "ROTATE", "BY",
                               "STATUS"]
    assert text[3].split()[:2] == ["hub-1", "server"]


def test_status_shows_each_keys_age_and_the_next_rotation_due(
        base_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # base/: certificates made 2026-11-25, expiring 2029-02-27; renew_before_days 30.
    monkeypatch.setenv("VPCMESH_NOW", "2027-11-26T00:00:00Z")
    rows = {r["name"]: r for r in json.loads(invoke("pki", "status", "--repo", base_repo,
                                                    "--json").stdout)}
    spoke = rows["spoke-1"]
    assert (spoke["age_days"], spoke["expires"], spoke["rotate_by"], spoke["status"]) == (
        365, "2029-02-27", "2029-01-28", "ok")
    monkeypatch.setenv("VPCMESH_NOW", "2029-02-01T00:00:00Z")
    rows = {r["name"]: r for r in json.loads(invoke("pki", "status", "--repo", base_repo,
                                                    "--json").stdout)}
    assert rows["spoke-1"]["status"] == "renew soon"


def test_revoke_replaces_the_key_and_lists_the_old_serial(base_repo: Path,
                                                          admin_key: Path) -> None:
    old = _serial(base_repo, "spoke-1")
    result = invoke("pki", "revoke", "spoke-1", "--repo", base_repo)
    assert (result.exit_code, result.stderr.splitlines()) == (0, [
        "revoked spoke-1 (revoke requested)", "issued spoke-1 (revoked and replaced)",
        "issued a new CRL (certificates revoked)"])
    assert _serial(base_repo, "spoke-1") != old
    assert _crl(base_repo).get_revoked_certificate_by_serial_number(old) is not None
    assert (base_repo / "build/hub-1/openvpn/crl.pem").read_bytes() == (
        base_repo / "mesh/pki/crl.pem").read_bytes()


def test_revoke_unknown_host(base_repo: Path) -> None:
    result = invoke("pki", "revoke", "nope", "--repo", base_repo)
    assert (result.exit_code, result.stderr) == (
        1, "mesh/pki/issued/nope.crt: no certificate to revoke for 'nope'\n")


@pytest.mark.parametrize("rekey", [(), ("--rekey",)])
def test_renew_one_host(base_repo: Path, admin_key: Path, rekey: tuple[str, ...]) -> None:
    old, crl_number = _serial(base_repo, "spoke-2"), _crl(base_repo).extensions
    cert = base_repo / "mesh/pki/issued/spoke-2.crt"
    old_key = x509.load_pem_x509_certificate(cert.read_bytes()).public_key()
    result = invoke("pki", "renew", "spoke-2", *rekey, "--repo", base_repo)
    assert result.exit_code == 0, result.stderr
    assert _serial(base_repo, "spoke-2") != old
    assert x509.load_pem_x509_certificate(cert.read_bytes()).public_key() != old_key
    assert _crl(base_repo).get_revoked_certificate_by_serial_number(old) is None
    assert _crl(base_repo).extensions != crl_number


def test_renew_without_key_says_what_it_needs(base_repo: Path) -> None:
    result = invoke("pki", "renew", "--repo", base_repo)
    assert (result.exit_code, result.stderr) == (1, (
        "secrets/mesh.sops.yaml: the admin age key is needed to update the CRL (renewal"
        " requested); set SOPS_AGE_KEY_FILE to the age key file of one of the admins in"
        " mesh/mesh.yaml\n"))


# Certificates in base/ expire 2029-02-27 (825 days); its CRL's next update is 2027-05-24.
@pytest.mark.parametrize("now, code, lines", [
    ("2027-05-01T00:00:00Z", 0, [
        "mesh/pki/crl.pem: warning: the CRL expires on 2027-05-24; run 'vpcmesh pki renew'"
        " (or render with the admin key)"]),
    ("2027-06-01T00:00:00Z", 1, [
        "mesh/pki/crl.pem: the CRL expired on 2027-05-24; run 'vpcmesh pki renew' (or render"
        " with the admin key)"]),
])
def test_validate_tracks_the_crl(base_repo: Path, monkeypatch: pytest.MonkeyPatch, now: str,
                                 code: int, lines: list[str]) -> None:
    monkeypatch.setenv("VPCMESH_NOW", now)
    result = invoke("validate", "--repo", base_repo)
    assert (result.exit_code, result.stderr.splitlines()[:len(lines)]) == (code, lines)


def test_validate_fails_on_an_expired_certificate(base_repo: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VPCMESH_NOW", "2029-03-01T00:00:00Z")
    lines = invoke("validate", "--repo", base_repo).stderr.splitlines()
    assert "mesh/pki/issued/spoke-1.crt: the certificate of spoke-1 expired on 2029-02-27; run"\
           " 'vpcmesh pki renew spoke-1' (or render with the admin key)" in lines


def test_render_renews_what_is_due_with_the_key(base_repo: Path, admin_key: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VPCMESH_NOW", "2029-02-10T00:00:00Z")
    result = invoke("-v", "render", "--repo", base_repo)
    assert result.exit_code == 0, result.stderr
    assert "issued a certificate for spoke-1: expires on 2029-02-27" in result.stderr
    assert invoke("validate", "--repo", base_repo).stderr == "ok: 3 nodes, hub hub-1\n"


def test_render_without_key_renders_while_renewals_are_only_due(
        base_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VPCMESH_NOW", "2027-05-01T00:00:00Z")
    result = invoke("render", "--repo", base_repo)
    assert result.exit_code == 0
    assert result.stderr.splitlines()[0] == (
        "secrets/mesh.sops.yaml: warning: renewals are due but no admin age key is set"
        " (SOPS_AGE_KEY_FILE); rendering without them")


# What the daily scheduled publish runs (`vpcmesh -v sign`, .github/workflows/publish.yml):
# a CRL within renew_before_days of its next update, or already past it, is re-issued and
# reaches every node, which checks its peers against it.
@pytest.mark.parametrize("now", ["2027-04-25T03:17:00Z", "2027-06-01T03:17:00Z"])
def test_the_scheduled_publish_renews_a_due_or_expired_crl_on_every_node(
        base_repo: Path, admin_key: Path, monkeypatch: pytest.MonkeyPatch, now: str) -> None:
    monkeypatch.setenv("VPCMESH_NOW", now)
    result = invoke("-v", "sign", "--repo", base_repo)
    assert result.exit_code == 0, result.stderr
    assert "wrote mesh/pki/crl.pem" in result.stderr.splitlines()
    crl = _crl(base_repo)
    assert crl.next_update_utc is not None and str(crl.next_update_utc.date()) > "2027-10-01"
    for host in ("hub-1", "spoke-1", "spoke-2"):
        assert (base_repo / f"build/{host}/openvpn/crl.pem").read_bytes() == (
            base_repo / "mesh/pki/crl.pem").read_bytes(), host
    assert invoke("validate", "--repo", base_repo).exit_code == 0
