from __future__ import annotations

import json
from pathlib import Path

import click

from vpcmesh.compile import load_plan
from vpcmesh.errors import Problem, VpcmeshError


def validate(root: Path, as_json: bool) -> int:
    problems: list[Problem]
    try:
        inventory, _, plan = load_plan(root)
        problems = list(inventory.warnings)
    except VpcmeshError as exc:
        problems = list(exc.problems)
    ok = not any(p.is_error for p in problems)
    if as_json:
        click.echo(json.dumps({"ok": ok, "problems": [p.as_json() for p in problems]}, indent=2))
    else:
        for problem in problems:
            click.echo(str(problem), err=True)
        if ok:
            click.echo(f"ok: {len(plan.nodes)} nodes, hub {plan.hub.hostname}", err=True)
    return 0 if ok else 1
