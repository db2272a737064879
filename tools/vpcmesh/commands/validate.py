from __future__ import annotations

import json
from pathlib import Path

import click

from vpcmesh.compiler import pipeline
from vpcmesh.errors import Problem, VpcmeshError, sort_problems


def validate(root: Path, as_json: bool) -> int:
    problems: list[Problem]
    summary = ""
    snap = pipeline.snapshot(root)
    try:
        loaded = pipeline.load(snap)
        snap.cache.save()
        problems = sort_problems([*loaded.warnings, *loaded.actions.problems])
        hubs = [h.hostname for h in loaded.plan.hubs]
        summary = (f"ok: {len(loaded.plan.nodes)} nodes, hub {hubs[0]}" if len(hubs) == 1 else
                   f"ok: {len(loaded.plan.nodes)} nodes, hubs {', '.join(hubs)} (spokes"
                   " prefer them in this order)")
    except VpcmeshError as exc:
        problems = list(exc.problems)
    ok = not any(p.is_error for p in problems)
    if as_json:
        click.echo(json.dumps({"ok": ok, "problems": [p.as_json() for p in problems]}, indent=2))
    else:
        for problem in problems:
            click.echo(str(problem), err=True)
        if ok:
            click.echo(summary, err=True)
    return 0 if ok else 1
