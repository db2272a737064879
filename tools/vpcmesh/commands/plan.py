from __future__ import annotations

import json
from pathlib import Path

import click

from vpcmesh import git
from vpcmesh.compiler import pipeline
from vpcmesh.compiler.preview import Preview, compare, preview, text
from vpcmesh.model.layout import MESH_FILE, NODES_DIR
from vpcmesh.model.snapshot import from_members


def previews(root: Path, base_ref: str | None) -> tuple[str, Preview | None, Preview]:
    """The base's preview (None when the base has no mesh yet) and the working tree's."""
    head_snap = pipeline.snapshot(root)
    head = preview(head_snap)
    ref = base_ref or git.merge_base(root, "main")
    commit, members = git.members_at(root, ref)
    # The same parse cache: entries are keyed by content, so the base's unchanged files
    # need no parsing either.
    base_snap = from_members(members, head_snap.cache)
    # A base with no mesh, or a mesh with no node yet (a new mesh's first pull request):
    # everything the branch has is new.
    nodes = [n for n, _ in base_snap.children(NODES_DIR) if n.endswith(".yaml")]
    base = preview(base_snap) if base_snap.is_file(MESH_FILE) and nodes else None
    head_snap.cache.save()
    label = f"{ref} ({commit[:12]})" if base_ref else f"{commit[:12]} (merge base with main)"
    return label, base, head


def plan(root: Path, base_ref: str | None, as_json: bool) -> int:
    report = compare(*previews(root, base_ref))
    if as_json:
        click.echo(json.dumps(report.as_json(), indent=2))
    else:
        click.echo("\n".join(text(report)))
    return 0
