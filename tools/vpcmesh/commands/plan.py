from __future__ import annotations

import json
import tempfile
from pathlib import Path

import click

from vpcmesh import git
from vpcmesh.layout import MESH_FILE
from vpcmesh.preview import compare, preview, text


def plan(root: Path, base_ref: str | None, as_json: bool) -> int:
    head = preview(root)
    ref = base_ref or git.merge_base(root, "main")
    with tempfile.TemporaryDirectory() as scratch:
        commit, base_root = git.export(root, ref, Path(scratch))
        base = preview(base_root) if (base_root / MESH_FILE).is_file() else None
    label = f"{ref} ({commit[:12]})" if base_ref else f"{commit[:12]} (merge base with main)"
    report = compare(label, base, head)
    if as_json:
        click.echo(json.dumps(report.as_json(), indent=2))
    else:
        click.echo("\n".join(text(report)))
    return 0
