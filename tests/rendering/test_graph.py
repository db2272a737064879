"""`vpcmesh graph`: the example mesh as Mermaid and as SVG (through Graphviz), with who is
up from a status and what a change touches from a base commit."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from vpcmesh.bundle import status
from vpcmesh.bundle.status import FleetStatus, NodeRow

from conftest import age_recipient, invoke


def draw(repo: Path, *args: str | Path) -> str:
    result = invoke("graph", "--repo", repo, *args)
    assert result.exit_code == 0, result.stderr
    return result.stdout


def test_mermaid_groups_nodes_by_cloud_and_joins_each_spoke_to_the_hub(
        example_repo: Path) -> None:
    text = draw(example_repo)
    assert text.startswith("flowchart LR\n")
    assert '  subgraph c_tencent["tencent"]' in text
    assert 'n_aliyun_hz_1{{"aliyun-hz-1 (hub)<br/>10.8.0.1 · 203.0.113.10<br/>172.16.0.0/24' \
           '<br/>postgres:5432, redis:6379"}}' in text
    edges = [line.strip() for line in text.splitlines() if " --- " in line]
    assert edges == [f"n_aliyun_hz_1 --- n_{h}" for h in ("huawei_hz_1", "tencent_hz_1",
                                                          "ucloud_hz_1")]


def test_svg_is_drawn_by_graphviz_with_every_node(example_repo: Path, tmp_path: Path) -> None:
    out = tmp_path / "mesh.svg"
    draw(example_repo, "--format", "svg", "--output", out)
    root = ET.fromstring(out.read_bytes())
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    texts = {t.text for t in root.iter("{http://www.w3.org/2000/svg}text")}
    assert {"aliyun-hz-1 (hub)", "huawei-hz-1 (spoke)", "172.18.0.0/24", "tencent"} <= texts


def _row(host: str, connected: bool) -> NodeRow:
    return NodeRow(host, "spoke", "x", connected, None, "10.8.0.9", "", 0, 0, None, None, None,
                   None, None, None)


def test_a_status_colours_nodes_up_and_down(example_repo: Path, tmp_path: Path) -> None:
    taken = FleetStatus("example", "aliyun-hz-1", "2026-11-26T00:00:00Z",
                        (_row("aliyun-hz-1", True), _row("tencent-hz-1", False)), (), None, None)
    path = tmp_path / "status.json"
    path.write_bytes(status.to_bytes(taken))
    text = draw(example_repo, "--status", path)
    assert "  class n_aliyun_hz_1 up" in text and "  class n_tencent_hz_1 down" in text
    assert "<br/>DOWN" in text
    dot = draw(example_repo, "--status", path, "--format", "dot")
    assert 'fillcolor="#f8d0d0"' in dot


def test_a_base_marks_what_the_change_adds_changes_and_removes(repo: Path) -> None:
    assert invoke("node", "add", "qcloud-hz-2", "--repo", repo, "--cloud", "qcloud", "--region",
                  "cn-hz", "--private-ip", "172.20.0.10", "--subnet", "172.20.0.0/24",
                  "--age-recipient", age_recipient("admin")).exit_code == 0
    (repo / "nodes/ucloud-hz-1.yaml").unlink()
    text = draw(repo, "--base", "main")
    assert "  class n_qcloud_hz_2 new" in text
    assert "  class n_aliyun_hz_1 changed" in text
    assert "  class n_ucloud_hz_1 removed" in text and "n_aliyun_hz_1 -.- n_ucloud_hz_1" in text
    assert "n_tencent_hz_1 changed" not in text  # untouched by the change


def test_a_status_that_is_not_one_is_a_clear_error(example_repo: Path, tmp_path: Path) -> None:
    bad = tmp_path / "status.json"
    bad.write_text('{"format": 1, "nodes": [{"hostname": 3}], "expiries": []}')
    result = invoke("graph", "--repo", example_repo, "--status", bad)
    assert result.exit_code == 1
    assert result.stderr.startswith(f"{bad}: field 'mesh' of the status is missing or not str")
