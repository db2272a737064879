"""The `vpcmesh` command group; its commands are in cli/repo.py (the repository's) and
cli/vm.py (a node's)."""

from __future__ import annotations

import logging
import sys

import click

from vpcmesh import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="vpcmesh")
@click.option("-v", "--verbose", count=True, help="Say more (repeat for debug output).")
def main(verbose: int) -> None:
    """Compile a mesh repository into per-node OpenVPN bundles."""
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(message)s", stream=sys.stderr, force=True)
