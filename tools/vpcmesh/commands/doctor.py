from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import click

from vpcmesh import clock
from vpcmesh.agent.doctor import PROBLEM, examine
from vpcmesh.errors import VpcmeshError

MAX_LOG = 4 << 20  # the tail of a larger log is what matters


def _read_log(path: Path) -> str:
    try:
        with open(path, "rb") as handle:
            handle.seek(0, 2)
            handle.seek(max(0, handle.tell() - MAX_LOG))
            return handle.read().decode(errors="replace")
    except OSError as exc:
        raise VpcmeshError.at(str(path), f"cannot read: {exc.strerror or exc}") from None


def doctor(root: Path, log: Path | None, as_json: bool) -> int:
    findings = examine(root, clock.now(), _read_log(log) if log is not None else None)
    if as_json:
        click.echo(json.dumps([asdict(f) for f in findings], indent=2))
    else:
        width = max(len(f.check) for f in findings)
        for f in findings:
            click.echo(f"{f.level:<8} {f.check:<{width}}  {f.detail}")
            if f.fix and f.level != "ok":
                click.echo(f"{'':<8} {'':<{width}}  fix: {f.fix}")
    return 1 if any(f.level == PROBLEM for f in findings) else 0
