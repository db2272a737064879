"""Golden-file comparison that names each differing file and shows its diff."""

from __future__ import annotations

import difflib
import os
import shutil
from pathlib import Path

from vpcmesh.fsio import read_tree

UPDATE = os.environ.get("VPCMESH_UPDATE_GOLDEN") == "1"


def assert_tree_matches(actual_dir: Path, golden_dir: Path) -> None:
    """Set VPCMESH_UPDATE_GOLDEN=1 to rewrite the golden files after an intended change."""
    if UPDATE:
        shutil.rmtree(golden_dir, ignore_errors=True)
        shutil.copytree(actual_dir, golden_dir)
    actual, golden = read_tree(actual_dir), read_tree(golden_dir)
    report = []
    for name in sorted(set(actual) | set(golden)):
        if name not in golden:
            report.append(f"unexpected file: {name}")
        elif name not in actual:
            report.append(f"missing file: {name}")
        elif actual[name] != golden[name]:
            diff = difflib.unified_diff(golden[name].decode().splitlines(),
                                        actual[name].decode().splitlines(),
                                        f"golden/{name}", f"actual/{name}", lineterm="")
            report.append("\n".join(diff))
    assert not report, "\n".join(report)
