"""Creating a new mesh repository (`vpcmesh init`): layout, settings, CA and mesh secrets."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from vpcmesh import clock
from vpcmesh import git as vcs
from vpcmesh.authoring import scaffold
from vpcmesh.errors import Location, Problem, VpcmeshError
from vpcmesh.fsio import replace_file
from vpcmesh.model import checks, schema
from vpcmesh.model.cache import ParseCache
from vpcmesh.model.layout import (
    ADMIN_SECRETS,
    CA_CERT,
    CRL_FILE,
    MESH_FILE,
    NODE_SECRETS_DIR,
    NODES_DIR,
    SIGNING_PUB,
    SOPS_CONFIG,
)
from vpcmesh.model.snapshot import read_snapshot
from vpcmesh.model.types import Mesh, mesh_from
from vpcmesh.model.yamlio import Document, load
from vpcmesh.pki import tlscrypt
from vpcmesh.pki import x509 as pki
from vpcmesh.pki.admin import admin_payload
from vpcmesh.rendering.render import environment
from vpcmesh.secrets import sops, sopsconfig

GITIGNORE = ("/build/\n/.vpcmesh-stamp.json\n/.vpcmesh-cache.json\n/.vpcmesh.lock\n/.venv/\n"
             "__pycache__/\n")
_OPTIONS = {"name": "--name", "domain": "--domain", "network": "--network",
            "admins": "--admin-recipient", "algorithm": "--algorithm"}


@dataclass(frozen=True)
class NewMesh:
    name: str
    domain: str
    network: str
    admins: tuple[str, ...]
    algorithm: str = "ec-p256"


def _mesh_yaml(root: Path, new: NewMesh) -> str:
    return environment().get_template("mesh.yaml.j2").render(new=new,
                                                             schema_dir=scaffold.schema_dir(root))


def _check_options(new: NewMesh) -> Mesh:
    """Validate the options as data (before any YAML text exists), naming the option."""
    data = {"name": new.name, "domain": new.domain, "vpn": {"network": new.network},
            "pki": {"algorithm": new.algorithm}, "admins": list(new.admins)}
    doc = Document(MESH_FILE, data, raw=data)
    problems = [Problem(Location(_option(p.message)), p.message)
                for p in schema.validate(doc, "mesh")]
    if problems:
        raise VpcmeshError(problems)
    mesh = mesh_from(doc)
    # The same checks validate makes: init never writes a mesh its own validate refuses.
    problems = [Problem(Location(_option(p.message)), p.message)
                for p in checks.check_mesh(mesh) if p.is_error]
    if problems:
        raise VpcmeshError(problems)
    return mesh


def _option(message: str) -> str:
    field = message.split(":")[0].split("[")[0].split(".")[-1]
    return _OPTIONS.get(field, "--name")


def _existing_mesh(root: Path) -> Mesh:
    snap = read_snapshot(root, ParseCache(None))
    if not snap.is_file(MESH_FILE):
        raise VpcmeshError.at(MESH_FILE, "missing: pass --name, --domain, --network and"
                                         " --admin-recipient to create a new mesh")
    doc = load(MESH_FILE, snap.read(MESH_FILE))
    problems = schema.validate(doc, "mesh")
    if problems:
        raise VpcmeshError(problems)
    return mesh_from(doc)


# The example a copy of the vpcmesh repository starts with, which `init --replace` removes.
MESH_PATHS = ["mesh", "nodes", "secrets", SOPS_CONFIG]


def clear(root: Path) -> list[str]:
    """Remove the mesh a repository has (`init --replace`), only when git holds every byte
    of it: a change not yet committed would be lost."""
    if not (root / MESH_FILE).exists():
        return []
    changed = [rel for rel in vcs.dirty_paths(root) if rel.split("/")[0] in MESH_PATHS]
    if changed:
        raise VpcmeshError([Problem(Location(p), "not committed: --replace would lose it;"
                                                 " commit or stash it first") for p in changed])
    for rel in [*MESH_PATHS, "build"]:
        path = root / rel
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
    return list(MESH_PATHS)


def init(root: Path, new: NewMesh | None, pin: scaffold.ToolPin | None = None) -> list[str]:
    """Create what a mesh needs; with `new` None, add the PKI to an existing mesh.yaml. A new
    folder becomes a mesh repository of its own (scaffold.py), with a first commit."""
    existing = [p for p in (CA_CERT, ADMIN_SECRETS) if (root / p).exists()]
    if new is not None and (root / MESH_FILE).exists():
        existing.insert(0, MESH_FILE)
    if existing:
        raise VpcmeshError([Problem(Location(p), "already exists: this repository has a mesh;"
                                                 " vpcmesh init never overwrites one")
                            for p in existing])
    if new is None:
        mesh = _existing_mesh(root)
        files: dict[str, bytes] = {}
    else:
        mesh = _check_options(new)
        files = {MESH_FILE: _mesh_yaml(root, new).encode(), f"{NODES_DIR}/.gitkeep": b"",
                 ".gitignore": GITIGNORE.encode()}
        if not scaffold.is_template(root):
            files.update({rel: data for rel, data in
                          scaffold.files(new.name, pin or scaffold.ToolPin()).items()
                          if not (root / rel).exists()})  # never a user's own file
    now = clock.now()
    ca_key, ca = pki.make_ca(f"{mesh.name} vpcmesh CA", mesh.pki.algorithm,
                             mesh.pki.ca_validity_days, now)
    signing_private, signing_public = pki.signing_keypair()
    secrets = sops.encrypt(admin_payload(ca_key, pki.openvpn_static_key(), signing_private,
                                         tlscrypt.new_master()),
                           list(mesh.admins), ADMIN_SECRETS)
    crl = pki.make_crl(ca_key, ca, {}, 1, mesh.pki.crl_validity_days, now)
    files.update({
        ADMIN_SECRETS: secrets,
        f"{NODE_SECRETS_DIR}/.gitkeep": b"",
        CA_CERT: pki.cert_pem(ca).encode(),
        CRL_FILE: pki.crl_pem(crl).encode(),
        SIGNING_PUB: signing_public.encode(),
        SOPS_CONFIG: sopsconfig.render_rules(list(mesh.admins), []),
    })
    written = []
    try:
        for rel in sorted(files, key=lambda r: (r != ADMIN_SECRETS, r)):
            if rel == ".gitignore" and (root / rel).exists():
                continue
            replace_file(root / rel, files[rel])
            written.append(rel)
    except OSError:
        for rel in written:  # all or nothing: a half-made mesh would refuse the next init
            (root / rel).unlink(missing_ok=True)
        raise
    return written
