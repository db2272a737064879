"""`vpcmesh import`: a new mesh repository from an existing OpenVPN setup."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

from vpcmesh import clock, git
from vpcmesh.adoption.adopt import Sources, prepare
from vpcmesh.adoption.draft import draft
from vpcmesh.adoption.easyrsa import read_bytes
from vpcmesh.authoring import scaffold
from vpcmesh.errors import VpcmeshError
from vpcmesh.fsio import replace_file

log = logging.getLogger(__name__)


def _check_target(root: Path) -> None:
    if root.is_symlink() or (root.exists() and (not root.is_dir() or any(root.iterdir()))):
        raise VpcmeshError.at(str(root), "exists and is not an empty folder: vpcmesh import"
                                         " makes a new repository; give a new folder")


def _write(root: Path, files: dict[str, bytes]) -> None:
    """All or nothing: the repository is made beside `root` and renamed into place."""
    root.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{root.name}.import-", dir=root.parent))
    try:
        for rel, data in sorted(files.items()):
            replace_file(staging / rel, data)
        if root.exists():
            root.rmdir()  # empty, checked above
        os.rename(staging, root)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def write_draft(sources: Sources) -> int:
    """A first mapping, in a new file: never over one (it may be the filled-in one)."""
    passphrase = read_bytes(sources.ca_passphrase).strip() if sources.ca_passphrase else None
    text, problems = draft(sources.pki, sources.server_conf, sources.ccd, sources.ipp,
                           passphrase, clock.now())
    for problem in problems:
        log.warning("%s", problem)
    try:
        with open(sources.mapping, "x") as out:
            out.write(text)
    except FileExistsError:
        raise VpcmeshError.at(str(sources.mapping), "exists: --draft-mapping never writes over"
                                                    " a file; give a new name") from None
    except OSError as exc:
        raise VpcmeshError.at(str(sources.mapping), f"cannot write it: {exc.strerror}") from None
    log.warning("wrote %s: replace every TODO, then run vpcmesh import with --mapping %s",
                sources.mapping, sources.mapping)
    return 0


def import_mesh(root: Path, sources: Sources, pin: scaffold.ToolPin) -> int:
    _check_target(root)
    adoption = prepare(root, sources, clock.now())
    for at, text in adoption.report.mapped:
        log.info("%s: %s", at, text)
    for problem in adoption.report.warnings:
        log.warning("%s", problem)
    name = adoption.files["mesh/mesh.yaml"].decode().split("\nname: ")[1].split("\n")[0]
    files = {**scaffold.files(name, pin), **adoption.files}
    _write(root, files)
    commit = git.first_commit(root, f"vpcmesh import: the mesh {name}, from"
                                    f" {sources.server_conf.name} and its easy-rsa PKI")
    kept = ", ".join(adoption.report.kept) or "none"
    log.warning("created %s (branch main, commit %s). Kept certificates: %s. Next: review"
                " it, run 'vpcmesh render', commit, push, and follow the cut-over in the"
                " README (Adopting an existing OpenVPN setup)", root, commit[:12], kept)
    return 0
