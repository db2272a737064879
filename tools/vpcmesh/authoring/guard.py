"""The guard behind the pre-commit hook and CI: no plaintext key anywhere, and nothing under
secrets/ that sops did not encrypt."""

from __future__ import annotations

import re
import stat
from pathlib import Path

from vpcmesh.errors import Location, Problem
from vpcmesh.model.layout import SECRETS_DIR
from vpcmesh.secrets import sopsfile

# Key material, not the mere name of a format: a PEM private key with its base64 body, an
# age identity with its 58 Bech32 characters, an OpenVPN static (tls-crypt) key with hex.
# (Split so that a plain grep for key material does not match this file.)
# The line break may be real (PEM, or a YAML block indented), or escaped as sops writes it
# in JSON and dotenv output ("\n").
_BREAK = rb"(?:\r?\n[ \t]*|(?:\\r)?\\n)"
SECRET = re.compile(rb"-----BEGIN [A-Z ]*PRIVATE KEY-----" + _BREAK + rb"[A-Za-z0-9+/=]{16}"
                    rb"|AGE-SECRET-KEY-" rb"1[02-9AC-HJ-NP-Z]{58}"
                    rb"|-----BEGIN OpenVPN Static key V1-----" + _BREAK + rb"[0-9a-f]{32}")
# Tests keep documented demo keys; nothing else may.
EXEMPT = ("tests/",)


def _read(root: Path, rel: str, problems: list[Problem]) -> bytes | None:
    """A regular file inside the repository, or None; a link is never followed (one to
    /dev/zero would never end), and a path that leaves the repository is refused."""
    parts = Path(rel).parts
    if Path(rel).is_absolute() or ".." in parts:
        problems.append(Problem(Location(rel), "outside the repository; name files inside it"))
        return None
    path = root / rel
    try:
        mode = path.lstat().st_mode
    except OSError:
        return None  # deleted in this commit: nothing to check
    if stat.S_ISLNK(mode):
        if rel.startswith(f"{SECRETS_DIR}/"):
            problems.append(Problem(Location(rel), "a symbolic link under secrets/, which holds"
                                                   " SOPS-encrypted files only"))
        return None
    return path.read_bytes() if stat.S_ISREG(mode) else None


def check(root: Path, files: list[str]) -> list[Problem]:
    problems: list[Problem] = []
    for rel in files:
        if rel.startswith(EXEMPT):
            continue
        data = _read(root, rel, problems)
        if data is None:
            continue
        path = root / rel
        match = SECRET.search(data)
        if match:
            line = data[:match.start()].count(b"\n") + 1
            problems.append(Problem(Location(rel, line, 1), "a private key in plaintext; keep"
                                    " it only encrypted under secrets/ (vpcmesh does that)"))
            continue
        under_secrets = rel.startswith(f"{SECRETS_DIR}/") and path.name != ".gitkeep"
        why = sopsfile.not_genuine(data, rel) if under_secrets else None
        if why is not None:
            detail = "" if why == sopsfile.NO_METADATA else f" ({why})"
            problems.append(Problem(Location(rel), f"not encrypted by sops{detail}; secrets/"
                                                   " holds SOPS-encrypted files only"))
    return problems
