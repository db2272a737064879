"""The sops wrapper against the real binary."""

from __future__ import annotations

from pathlib import Path

import pytest

from vpcmesh.errors import VpcmeshError
from vpcmesh.secrets import sops, sopsfile

from conftest import EXAMPLE, age_recipient


@pytest.mark.parametrize("rel", ["secrets/mesh.sops.yaml", "secrets/nodes/aliyun-hz-1.sops.yaml"])
def test_the_line_scan_agrees_with_a_full_parse(rel: str) -> None:
    # A sops release that formats its output differently fails here, not in production.
    meta = sopsfile.metadata((EXAMPLE / rel).read_bytes(), rel)
    recipients, readable = sopsfile.scan((EXAMPLE / rel).read_bytes(), rel)
    assert recipients == sopsfile.recipients(meta) and recipients
    assert readable == {k: str(v) for k, v in meta.items() if k.endswith("_unencrypted")}


def test_a_fresh_encryption_scans_the_same(tmp_path: Path) -> None:
    path = tmp_path / "x.sops.yaml"
    path.write_bytes(sops.encrypt({"a": "b", "fp_unencrypted": "c0ffee"},
                                  [age_recipient("admin"), age_recipient("ucloud-hz-1")], "x"))
    assert sopsfile.scan(path.read_bytes(), "x") == (
        frozenset({age_recipient("admin"), age_recipient("ucloud-hz-1")}),
        {"fp_unencrypted": "c0ffee"})


def test_a_plain_file_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "plain.yaml"
    path.write_text("password: x\n")
    with pytest.raises(VpcmeshError) as caught:
        sopsfile.scan(path.read_bytes(), "secrets/plain.yaml")
    assert str(caught.value) == ("secrets/plain.yaml: not a SOPS-encrypted file (no 'sops'"
                                 " metadata); restore it from git")
