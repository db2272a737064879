"""The one helper that runs a program: every external tool's wrapper (sops, git, the node's
systemctl, sysctl and ip) calls it, so a missing binary is a located error, not a trace."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from vpcmesh.errors import VpcmeshError


@dataclass(frozen=True)
class Completed:
    returncode: int
    stdout: bytes
    stderr: bytes

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def err_text(self) -> str:
        return self.stderr.decode(errors="replace").strip()


def run(args: Sequence[str], stdin: bytes | None = None,
        env: Mapping[str, str] | None = None, timeout: float | None = None) -> Completed:
    """Run `args` with its output captured; never raises for a non-zero exit (the caller knows
    what that means), but does for a program that is not there or does not finish."""
    try:
        proc = subprocess.run(list(args), input=stdin, capture_output=True, check=False,
                              env=None if env is None else {**os.environ, **env},
                              timeout=timeout)
    except FileNotFoundError:
        raise VpcmeshError.at(args[0], "not installed (not found on PATH)") from None
    except PermissionError:
        raise VpcmeshError.at(args[0], "cannot be run (permission denied)") from None
    except subprocess.TimeoutExpired:
        raise VpcmeshError.at(args[0], f"did not finish within {timeout:g}s") from None
    return Completed(proc.returncode, proc.stdout, proc.stderr)
