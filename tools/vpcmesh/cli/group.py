"""The `vpcmesh` command group; its commands are in cli/repo.py (the repository's) and
cli/vm.py (a node's)."""

from __future__ import annotations

import logging
import sys

import click

from vpcmesh import __version__

# What a VM runs; the node side is kept to Python 3.9 (`make lint` checks it with vermin) so
# that Debian 11, Ubuntu 22.04 and RHEL-family VMs can run the agent with their own python3.
NODE_COMMANDS = frozenset({"pull", "agent", "status", "doctor"})
COMPILER_PYTHON = (3, 11)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="vpcmesh")
@click.option("-v", "--verbose", count=True, help="Say more (repeat for debug output).")
@click.pass_context
def main(ctx: click.Context, verbose: int) -> None:
    """Compile a mesh repository into per-node OpenVPN bundles."""
    if sys.version_info < COMPILER_PYTHON and ctx.invoked_subcommand not in NODE_COMMANDS:
        have = ".".join(map(str, sys.version_info[:3]))
        node = ", ".join(sorted(NODE_COMMANDS))
        click.echo(f"error: vpcmesh {ctx.invoked_subcommand} compiles a mesh and needs Python"
                   f" 3.11 or newer (this is {have}); run it where the mesh repository is"
                   f" built (CI or a workstation). A VM's commands ({node}) run on Python 3.9"
                   " and newer.", err=True)
        ctx.exit(1)
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(message)s", stream=sys.stderr, force=True)
