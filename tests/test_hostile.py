"""Hostile input: paths that leave the repository, links, and names that are not names.
Each is refused with its place and a reason, exit 1 (2 for usage), and nothing changes."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from conftest import invoke


@pytest.mark.parametrize("args", [
    ["node", "remove", "../mesh/mesh"],
    ["node", "remove", "../../outside"],
    ["pki", "revoke", "../mesh/pki/ca"],
    ["pki", "renew", "../x"],
])
def test_a_name_that_is_a_path_is_a_usage_error(base_repo: Path, args: list[str]) -> None:
    before = {p: p.read_bytes() for p in base_repo.rglob("*") if p.is_file()}
    result = invoke(*args, "--repo", base_repo)
    assert result.exit_code == 2
    assert "is not a node's hostname" in result.stderr
    assert {p: p.read_bytes() for p in base_repo.rglob("*") if p.is_file()} == before


def test_links_among_the_inputs_are_refused_not_followed(base_repo: Path) -> None:
    os.symlink("/etc/shadow", base_repo / "nodes/evil.yaml")
    os.symlink("/dev/zero", base_repo / "secrets/nodes/zero.sops.yaml")
    for command in ("validate", "render"):
        result = invoke(command, "--repo", base_repo)
        assert (result.exit_code, result.stderr.splitlines()) == (1, [
            "nodes/evil.yaml: a symbolic link, not a regular file: vpcmesh reads only regular"
            " files in the repository (a link could point anywhere on this machine)",
            "secrets/nodes/zero.sops.yaml: a symbolic link, not a regular file: vpcmesh reads"
            " only regular files in the repository (a link could point anywhere on this"
            " machine)"])
    assert not (base_repo / "build").exists()


def test_the_guard_follows_no_link_and_stays_in_the_repository(base_repo: Path) -> None:
    subprocess.run(["git", "init", "-q", str(base_repo)], check=True)
    os.symlink("/dev/zero", base_repo / "secrets/nodes/zero.sops.yaml")
    os.symlink("/dev/zero", base_repo / "zero")
    result = invoke("guard", "--repo", base_repo)
    assert (result.exit_code, result.stderr) == (
        1, "secrets/nodes/zero.sops.yaml: a symbolic link under secrets/, which holds"
           " SOPS-encrypted files only\n")
    result = invoke("guard", "--repo", base_repo, "../../etc/passwd")
    assert (result.exit_code, result.stderr) == (
        1, "../../etc/passwd: outside the repository; name files inside it\n")


def test_one_command_at_a_time_writes_a_repository(base_repo: Path) -> None:
    from vpcmesh.fsio import exclusive

    with exclusive(base_repo / ".vpcmesh.lock") as mine:
        assert mine
        result = invoke("render", "--repo", base_repo)
        assert (result.exit_code, result.stderr) == (
            1, ".vpcmesh.lock: another vpcmesh command is writing this repository; let it"
               " finish, then run this again\n")
    assert not (base_repo / "build").exists()
    assert invoke("render", "--repo", base_repo).exit_code == 0


def test_what_an_interrupted_render_left_is_removed_by_the_next(base_repo: Path) -> None:
    leftover = base_repo / ".build-staging-x1y2z3/new/hub-1"
    leftover.mkdir(parents=True)
    (leftover / "hub-1.key").write_text("half a staged bundle\n")
    assert invoke("render", "--repo", base_repo).exit_code == 0
    assert not (base_repo / ".build-staging-x1y2z3").exists()


def test_an_interrupted_revoke_is_finished_by_the_next_render(example_repo: Path,
                                                              admin_key: Path) -> None:
    """The CRL is written first: a run killed right after it leaves a revoked certificate
    in use, which the next render replaces instead of ignoring."""
    from cryptography import x509

    from vpcmesh.pki import x509 as pki
    from vpcmesh.secrets import sops

    cert = x509.load_pem_x509_certificate(
        (example_repo / "mesh/pki/issued/ucloud-hz-1.crt").read_bytes())
    admin = sops.decrypt((example_repo / "secrets/mesh.sops.yaml").read_bytes(), "admin")
    ca_key = pki.load_key(admin["ca_key"])
    ca = x509.load_pem_x509_certificate((example_repo / "mesh/pki/ca.crt").read_bytes())
    crl = x509.load_pem_x509_crl((example_repo / "mesh/pki/crl.pem").read_bytes())
    revoked = {r.serial_number: r.revocation_date_utc for r in crl}
    revoked[cert.serial_number] = cert.not_valid_before_utc
    import datetime as dt

    new = pki.make_crl(ca_key, ca, revoked, pki.crl_number(crl) + 1, 30,
                       dt.datetime(2026, 12, 1, tzinfo=dt.UTC))
    (example_repo / "mesh/pki/crl.pem").write_text(pki.crl_pem(new))  # ... then the kill
    result = invoke("-v", "render", "--repo", example_repo)
    assert result.exit_code == 0, result.stderr
    assert "issued a certificate for ucloud-hz-1: revoked and replaced" in result.stderr
    fresh = x509.load_pem_x509_certificate(
        (example_repo / "mesh/pki/issued/ucloud-hz-1.crt").read_bytes())
    assert fresh.serial_number != cert.serial_number


def test_a_revoke_killed_after_its_first_write_has_recorded_the_revocation(
        example_repo: Path, admin_key: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cryptography import x509

    from vpcmesh.compiler import pipeline

    cert = x509.load_pem_x509_certificate(
        (example_repo / "mesh/pki/issued/ucloud-hz-1.crt").read_bytes())
    real, calls = pipeline.replace_file, []

    def dies_after_one(path: Path, data: bytes, *args: object) -> bool:
        if calls:
            raise KeyboardInterrupt  # the kill, right after the first file
        calls.append(path)
        return real(path, data)

    monkeypatch.setattr(pipeline, "replace_file", dies_after_one)
    result = invoke("pki", "revoke", "ucloud-hz-1", "--repo", example_repo)
    assert result.exit_code == 130
    assert calls == [example_repo / "mesh/pki/crl.pem"]
    crl = x509.load_pem_x509_crl((example_repo / "mesh/pki/crl.pem").read_bytes())
    assert crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tiny filesystem needs root")
def test_a_full_disk_is_a_clear_error_and_leaves_nothing_half_written(
        base_repo: Path, tmp_path: Path) -> None:
    import shutil

    small = tmp_path / "small"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=90k", "tmpfs", str(small)], check=True)
    try:
        repo = Path(shutil.copytree(base_repo, small / "repo"))
        before = {p: p.read_bytes() for p in repo.rglob("*") if p.is_file()}
        result = invoke("render", "--repo", repo)
        assert result.exit_code == 1, result.stderr
        assert "No space left on device; nothing was changed by halves" in result.stderr
        assert not (repo / "build").exists()
        assert not list(repo.glob(".build-staging-*"))
        assert {p: p.read_bytes() for p in before} == before
    finally:
        subprocess.run(["umount", str(small)], check=True)


def test_a_huge_file_among_the_inputs_is_refused_unread(base_repo: Path) -> None:
    huge = base_repo / "secrets/nodes/huge.sops.yaml"
    with huge.open("wb") as handle:
        handle.truncate(20 << 20)  # sparse: 20 MiB that cost nothing
    result = invoke("validate", "--repo", base_repo)
    assert (result.exit_code, result.stderr) == (
        1, "secrets/nodes/huge.sops.yaml: larger than 16 MiB, no file vpcmesh writes is near"
           " that size; remove it\n")


def test_init_never_writes_a_mesh_its_own_validate_refuses(tmp_path: Path) -> None:
    from conftest import age_recipient

    result = invoke("init", "--repo", tmp_path / "new", "--name", "acme", "--domain",
                    "inner.acme.example", "--network", "10.8.0.1/24", "--admin-recipient",
                    age_recipient("admin"))
    assert (result.exit_code, result.stderr) == (
        1, "--network: vpn.network: 10.8.0.1/24 has host bits set; use 10.8.0.0/24\n")
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize(("args", "code", "said"), [
    (["pull", "--interval", "-1", "--hostname", "h", "--source", "s", "--age-key", "k",
      "--trust-key", "t"], 2, "is not in the range x>=1"),
    (["publish", "--to", "--x"], 1, "--to: '--x' is not a git remote or branch name"),
])
def test_bad_options_are_errors_not_tracebacks(base_repo: Path, args: list[str], code: int,
                                               said: str) -> None:
    result = invoke(*args, *(["--repo", str(base_repo)] if args[0] == "publish" else []))
    assert result.exit_code == code and said in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_a_missing_sops_binary_is_named(example_repo: Path, admin_key: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VPCMESH_SOPS", "/nonexistent/sops")
    result = invoke("pki", "renew", "--repo", example_repo)
    assert (result.exit_code, result.stderr) == (
        1, "/nonexistent/sops: not installed (not found on PATH)\n")
