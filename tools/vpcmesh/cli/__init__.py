"""The command line: parse, then call one function in vpcmesh.commands.

Command modules are imported inside each command: the agent's `pull` runs every two minutes
on every VM and must not load jinja2, jsonschema or the PKI code to do nothing."""

from vpcmesh.cli import repo, vm  # noqa: F401  (they register their commands)
from vpcmesh.cli.group import main
from vpcmesh.cli.params import ALGORITHMS, SCHEMA_NAMES

__all__ = ["ALGORITHMS", "SCHEMA_NAMES", "main"]
