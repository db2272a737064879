from __future__ import annotations

from pathlib import Path

import click

from vpcmesh.bundle import status as fleet_status
from vpcmesh.compiler import pipeline
from vpcmesh.compiler.preview import compare, preview
from vpcmesh.fsio import replace_file
from vpcmesh.planning.addresses import Plan
from vpcmesh.rendering import graph


def _status(source: str) -> dict[str, bool]:
    return {row.hostname: row.connected for row in fleet_status.load(source).nodes}


def _overlay(root: Path, status: str | None,
             base_ref: str | None) -> tuple[graph.Overlay, Plan]:
    up = _status(status) if status is not None else {}
    if base_ref is None:
        return graph.Overlay(up), preview(pipeline.snapshot(root)).plan
    from vpcmesh.commands.plan import previews

    label, base, head = previews(root, base_ref)
    report = compare(label, base, head)
    # A new CRL reaches every node and changes nothing it runs: not drawn as a change.
    changes = {n.hostname: n.change for n in report.nodes if not n.crl_only}
    removed = tuple(n for n in (base.plan.nodes if base else ())
                    if changes.get(n.hostname) == "removed")
    return graph.Overlay(up, changes, removed), head.plan


def draw(root: Path, fmt: str, status: str | None, base_ref: str | None,
         output: Path | None) -> int:
    overlay, plan = _overlay(root, status, base_ref)
    if fmt == "mermaid":
        data = graph.mermaid(plan, overlay).encode()
    elif fmt == "dot":
        data = graph.dot(plan, overlay).encode()
    else:
        data = graph.svg(graph.dot(plan, overlay))
    if output is None:
        click.echo(data.decode(), nl=False)
    else:
        replace_file(output, data, mode=0o644)
    return 0
