"""The lab cleans up every namespace and process it started, also when the test fails."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from netlab import Lab, require, run


def test_failure_inside_the_lab_leaves_nothing_behind(tmp_path: Path) -> None:
    require()
    with pytest.raises(RuntimeError), Lab(tmp_path) as lab:
        vm = lab.add_vm("a", "203.0.113.1", "172.16.0.1", 24, tmp_path)
        sleeper = subprocess.Popen(["ip", "netns", "exec", vm.netns, "sleep", "300"])
        names = [lab.wan, vm.netns]
        raise RuntimeError("the test failed here")
    assert sleeper.wait(timeout=5) != 0
    listed = run("ip", "netns", "list").stdout
    assert [n for n in names if n in listed] == []
