"""The build stamp lets a no-op render do nothing, and never hides a change."""

from __future__ import annotations

from pathlib import Path

import pytest

from vpcmesh.compiler.stamp import STAMP
from vpcmesh.fsio import read_tree

from conftest import SopsCalls, invoke, modules_loaded


def test_a_fresh_stamp_skips_everything(base_repo: Path, admin_key: Path,
                                        sops_calls: SopsCalls) -> None:
    assert invoke("render", "--repo", base_repo).exit_code == 0
    assert (base_repo / STAMP).exists()
    sops_calls.reset()
    mtimes = {p: p.stat().st_mtime_ns for p in (base_repo / "build").rglob("*")}
    result = invoke("-v", "render", "--repo", base_repo)
    assert (result.exit_code, result.stderr) == (0, "unchanged: inputs as at the last render\n")
    assert sops_calls.commands() == []
    assert {p: p.stat().st_mtime_ns for p in (base_repo / "build").rglob("*")} == mtimes


def test_a_noop_render_loads_none_of_the_compiler(base_repo: Path) -> None:
    # It runs on every commit hook and CI step: the stamp answers before the compiler loads.
    assert invoke("render", "--repo", base_repo).exit_code == 0
    assert modules_loaded(("jinja2", "jsonschema", "ruamel", "cryptography.x509",
                           "vpcmesh.compiler.pipeline", "vpcmesh.rendering", "vpcmesh.pki"),
                          "render", "--repo", base_repo) == []


def test_an_edited_build_file_is_repaired(base_repo: Path) -> None:
    invoke("render", "--repo", base_repo)
    conf = base_repo / "build/spoke-1/openvpn/base.conf"
    good = conf.read_bytes()
    conf.write_bytes(good.replace(b"verb 3", b"verb 9"))
    assert invoke("render", "--repo", base_repo).exit_code == 0
    assert conf.read_bytes() == good


def test_an_input_change_is_rendered(base_repo: Path) -> None:
    invoke("render", "--repo", base_repo)
    node = base_repo / "nodes/spoke-1.yaml"
    node.write_text(node.read_text().replace("[172.21.0.0/24]", "[172.21.0.0/24, 172.29.0.0/24]"))
    invoke("render", "--repo", base_repo)
    assert b"iroute 172.29.0.0" in read_tree(base_repo / "build")["hub-1/openvpn/ccd/spoke-1"]


def test_no_stamp_when_something_was_left_undone(base_repo: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VPCMESH_NOW", "2027-05-01T00:00:00Z")  # CRL renewal due, no key
    result = invoke("render", "--repo", base_repo)
    assert result.exit_code == 0 and "warning: renewals are due" in result.stderr
    assert not (base_repo / STAMP).exists()


def test_time_reaching_a_renewal_window_ends_the_stamp(base_repo: Path, admin_key: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    invoke("render", "--repo", base_repo)
    monkeypatch.setenv("VPCMESH_NOW", "2027-05-01T00:00:00Z")  # inside the CRL's window
    result = invoke("-v", "render", "--repo", base_repo)
    assert "unchanged: inputs as at the last render" not in result.stderr
    assert "wrote mesh/pki/crl.pem" in result.stderr


def test_the_cache_keeps_what_the_next_render_needs(base_repo: Path, admin_key: Path) -> None:
    import json
    from collections import Counter

    from vpcmesh.model.cache import CACHE

    from conftest import add_spoke

    add_spoke(base_repo, "spoke-3", "172.23.0.0/24")
    assert invoke("render", "--repo", base_repo).exit_code == 0  # issues spoke-3
    entries = json.loads((base_repo / CACHE).read_text())["entries"]
    kinds = Counter(name.split(":")[0] for name in entries)
    # every node file, the mesh, the state as read and as written, each certificate's
    # signature check and each SOPS file (the nodes' and the admins'), new ones included
    assert kinds == {"node": 4, "mesh": 1, "state": 2, "signed": 4, "sops": 5}
    state = (base_repo / "mesh/state.yaml").read_bytes()
    from vpcmesh.model.cache import key

    assert key("state", state) in entries


def test_validate_loads_no_renderer_and_no_signer(base_repo: Path) -> None:
    # validate runs in every commit hook: it checks, it does not render or sign
    assert modules_loaded(("jinja2", "git", "vpcmesh.rendering", "vpcmesh.compiler.signing",
                           "vpcmesh.pki.issuing", "vpcmesh.pki.admin"),
                          "validate", "--repo", base_repo) == []
