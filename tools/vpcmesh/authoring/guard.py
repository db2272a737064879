"""The guard behind the pre-commit hook and CI: no plaintext key anywhere, and nothing under
secrets/ that sops did not encrypt."""

from __future__ import annotations

import re
from pathlib import Path

from vpcmesh.errors import Location, Problem, VpcmeshError
from vpcmesh.model.layout import SECRETS_DIR
from vpcmesh.secrets import sopsfile

# Key material, not the mere name of a format: a PEM private key with its base64 body, an
# age identity with its 58 Bech32 characters, an OpenVPN static (tls-crypt) key with hex.
# (Split so that a plain grep for key material does not match this file.)
SECRET = re.compile(rb"-----BEGIN [A-Z ]*PRIVATE KEY-----\r?\n[A-Za-z0-9+/=]{16}"
                    rb"|AGE-SECRET-KEY-" rb"1[02-9AC-HJ-NP-Z]{58}"
                    rb"|-----BEGIN OpenVPN Static key V1-----\r?\n[0-9a-f]{32}")
# Tests keep documented demo keys; nothing else may.
EXEMPT = ("tests/",)


def check(root: Path, files: list[str]) -> list[Problem]:
    problems = []
    for rel in files:
        path = root / rel
        if rel.startswith(EXEMPT) or not path.is_file():
            continue
        data = path.read_bytes()
        match = SECRET.search(data)
        if match:
            line = data[:match.start()].count(b"\n") + 1
            problems.append(Problem(Location(rel, line, 1), "a private key in plaintext; keep"
                                    " it only encrypted under secrets/ (vpcmesh does that)"))
        elif rel.startswith(f"{SECRETS_DIR}/") and path.name != ".gitkeep":
            try:
                sopsfile.metadata(data, rel)
            except VpcmeshError:
                problems.append(Problem(Location(rel), "not encrypted by sops; secrets/ holds"
                                                       " SOPS-encrypted files only"))
    return problems
