from __future__ import annotations

import json

import click

from vpcmesh.model.schema import schema


def print_schema(name: str) -> int:
    click.echo(json.dumps(schema(name), indent=2))
    return 0
