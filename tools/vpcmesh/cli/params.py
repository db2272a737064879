"""What the command modules share: options, parameter types, the exit."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

ALGORITHMS = ("ec-p256", "ed25519", "rsa-2048", "rsa-3072")
SCHEMA_NAMES = ("mesh", "node")

F = TypeVar("F", bound=Callable[..., Any])


def repo_option(func: F) -> F:
    return click.option(
        "--repo", type=click.Path(file_okay=False, path_type=Path), default=Path("."),
        show_default=True, help="The mesh repository.")(func)


def firewall_option(func: F) -> F:
    return click.option(
        "--firewall/--no-firewall", default=None,
        help="Put (or remove) the bundle's forwarding rules first in Docker's DOCKER-USER"
             " chain, in this network namespace (default: with --root / only).")(func)


def token_options(func: F) -> F:
    """How a source proves who is asking; files readable by root alone, never values."""
    func = click.option(
        "--header-file", type=click.Path(dir_okay=False, path_type=Path),
        help="For an https:// source: a file holding one header line sent with every"
             " request, such as 'Authorization: Bearer TOKEN'.")(func)
    return click.option(
        "--token-file", type=click.Path(dir_okay=False, path_type=Path),
        help="For a git+https:// source: a file holding the access token (Gitea, GitHub)"
             " or password.")(func)


if TYPE_CHECKING:  # generic in recent click only
    _StrParam = click.ParamType[str]
else:
    _StrParam = click.ParamType


class Hostname(_StrParam):
    """A node's name: a DNS label, so it can never be a path ('../mesh/mesh') or an option."""

    name = "hostname"
    _LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> str:
        if isinstance(value, str) and self._LABEL.fullmatch(value):
            return value
        self.fail(f"{value!r} is not a node's hostname: 1-63 lowercase letters, digits and"
                  " '-', not starting or ending with '-'", param, ctx)


HOSTNAME = Hostname()


def exit_with(code: int) -> None:
    sys.exit(code)
