"""The one place where errors become messages and exit codes."""

from __future__ import annotations

import logging
import os
import sys
import traceback
from collections.abc import Callable

import click

from vpcmesh.errors import VpcmeshError

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_USAGE = 2
EXIT_BUG = 3
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, as a shell reports it


def _quiet_stdout() -> None:
    # The reader went away (`vpcmesh pki status | head`): nothing more can be said there,
    # and Python must not complain about it while flushing at exit either.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def run(command: Callable[[], int]) -> int:
    try:
        return command()
    except BrokenPipeError:
        _quiet_stdout()
        return EXIT_BROKEN_PIPE
    except VpcmeshError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        return EXIT_INVALID
    except OSError as exc:
        # The machine, not the input: a full disk, a read-only folder. Every write that
        # matters is staged and swapped, so nothing was half-written; say where and why.
        click.echo(f"{exc.filename or 'vpcmesh'}: {exc.strerror or exc}; nothing was"
                   " changed by halves: free the space (or fix the permission) and run it"
                   " again", err=True)
        return EXIT_INVALID
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        return EXIT_INTERRUPTED
    except Exception:
        # A bug, not bad input: keep the traceback, it is what a bug report needs.
        logging.getLogger("vpcmesh").debug("unexpected error", exc_info=True)
        click.echo(traceback.format_exc(), err=True)
        click.echo("vpcmesh: internal error (a bug); please report it with the trace above",
                   err=True)
        return EXIT_BUG
