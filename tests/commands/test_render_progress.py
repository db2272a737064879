"""Progress of a long compile: a bar on a terminal, quiet in CI logs unless -v."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from vpcmesh.commands.render import Progress

from conftest import add_spoke, invoke


def _many(repo: Path, count: int) -> None:
    mesh = repo / "mesh/mesh.yaml"
    mesh.write_text(mesh.read_text().replace("max_clients: 10", "max_clients: 100"))
    for i in range(count):
        add_spoke(repo, f"bulk-{i}", f"172.{40 + i}.0.0/24", key="huawei-hz-1")


def test_quiet_without_v_and_a_line_per_tenth_with_it(base_repo: Path, admin_key: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    _many(base_repo, 20)
    result = invoke("render", "--repo", base_repo)
    assert (result.exit_code, result.stderr) == (0, "")
    _many(base_repo, 40)  # 20 more
    result = invoke("-v", "render", "--repo", base_repo)
    lines = [x for x in result.stderr.splitlines() if x.startswith("encrypted node secrets")]
    assert lines[-1] == "encrypted node secrets: 20 of 20"
    assert len(lines) == 10


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_bar_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    terminal = _Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    progress = Progress()
    for done in range(1, 51):
        progress(done, 50)
    assert "encrypting node secrets" in terminal.getvalue()
    assert "100%" in terminal.getvalue()
