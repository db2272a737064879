"""The command line: parse, then call one function in vpcmesh.commands."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from vpcmesh import __version__, error_handler
from vpcmesh.commands.render import render
from vpcmesh.commands.schema import print_schema
from vpcmesh.commands.validate import validate
from vpcmesh.schema import SCHEMA_NAMES

F = TypeVar("F", bound=Callable[..., Any])


def repo_option(func: F) -> F:
    return click.option(
        "--repo", type=click.Path(file_okay=False, path_type=Path), default=Path("."),
        show_default=True, help="The mesh repository.")(func)


def _exit(code: int) -> None:
    sys.exit(code)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="vpcmesh")
@click.option("-v", "--verbose", count=True, help="Say more (repeat for debug output).")
def main(verbose: int) -> None:
    """Compile a mesh repository into per-node OpenVPN bundles."""
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(message)s", stream=sys.stderr, force=True)


@main.command("validate")
@repo_option
@click.option("--json", "as_json", is_flag=True, help="Print the problems as JSON on stdout.")
def validate_cmd(repo: Path, as_json: bool) -> None:
    """Check every mesh and node file; report all problems as path:line:col."""
    _exit(error_handler.run(lambda: validate(repo, as_json)))


@main.command("render")
@repo_option
def render_cmd(repo: Path) -> None:
    """Validate, then write build/<hostname>/ for every node and build/dns/."""
    _exit(error_handler.run(lambda: render(repo)))


@main.command("schema")
@repo_option
@click.argument("name", type=click.Choice(SCHEMA_NAMES), default="node")
def schema_cmd(repo: Path, name: str) -> None:
    """Print the JSON Schema of mesh.yaml or of a node file (for editors)."""
    _exit(error_handler.run(lambda: print_schema(name)))
