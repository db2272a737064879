from __future__ import annotations

from pathlib import Path

import click

from vpcmesh.authoring.nodefile import NewNode, add, remove


def add_node(root: Path, node: NewNode) -> int:
    rel = add(root, node)
    click.echo(f"wrote {rel}; 'vpcmesh plan' shows what it changes", err=True)
    return 0


def remove_node(root: Path, hostname: str) -> int:
    rel = remove(root, hostname)
    click.echo(f"removed {rel}; the next render revokes its certificate", err=True)
    return 0
