"""The benchmark keeps working (it is not a timed test: it checks that it runs)."""

from __future__ import annotations

import subprocess
import sys

from conftest import ROOT


def test_the_benchmark_runs_on_a_tiny_mesh() -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "bench/bench.py"), "--sizes", "3",
                           "--repeats", "1", "--no-live"], capture_output=True, text=True, check=False,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [line.split("|")[1].strip() for line in proc.stdout.splitlines()[4:]]
    assert rows[:3] == ["disk: creating one small file",
                        "first compile (issue, encrypt, render, sign)",
                        "sops floor: one encrypt call per node"]
    assert "0 rewritten, 0 sops" in proc.stdout
