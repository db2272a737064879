from __future__ import annotations

import tempfile
from pathlib import Path

import click

from vpcmesh import git
from vpcmesh.bundle import names
from vpcmesh.compiler.pipeline import Request, build, snapshot
from vpcmesh.errors import Problem, VpcmeshError
from vpcmesh.fsio import read_tree
from vpcmesh.model.layout import BUILD_DIR


def publish(root: Path, to: str, branch: str) -> int:
    # Render and sign first, so what goes out is exactly what the repository says.
    built = build(root, snapshot(root), Request(require_signing=True))
    files = read_tree(root / BUILD_DIR)
    unsigned = [n.hostname for n in built.plan.nodes
                if f"{n.hostname}/{names.MANIFEST}" not in files]
    if unsigned:
        raise VpcmeshError([Problem(built.plan.mesh.doc.at(), f"{h}: no signed manifest")
                            for h in unsigned])
    source = git.head_commit(root) or "none"
    message = (f"Publish bundles from {source[:12]}\n\nSource commit: {source}\n"
               f"Nodes: {len(built.plan.nodes)}\n")
    with tempfile.TemporaryDirectory() as scratch:
        commit = git.publish(files, to, branch, message, Path(scratch))
    if commit is None:
        click.echo(f"{to} {branch}: already up to date", err=True)
    else:
        click.echo(f"{to} {branch}: published {commit[:12]} from {source[:12]}", err=True)
    return 0
