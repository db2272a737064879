"""`vpcmesh import`: a mesh repository made from an easy-rsa PKI and a hand-written
server.conf. It keeps the CA, each declared client's certificate and key, the tunnel
addresses, the subnets, what was revoked and the control-channel key, so that no VM is
re-keyed and the old client.conf files connect to the new hub unchanged (compat)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from vpcmesh.adoption import nodes as plan_nodes
from vpcmesh.adoption.easyrsa import OldPki, read_bytes, read_pki
from vpcmesh.adoption.mapping import Mapping, read_mapping
from vpcmesh.adoption.oldclients import read_ccd, read_ipp
from vpcmesh.adoption.oldconf import OldServer, read_server
from vpcmesh.authoring import scaffold
from vpcmesh.authoring.init import GITIGNORE
from vpcmesh.authoring.nodefile import NewNode
from vpcmesh.compiler import pipeline
from vpcmesh.errors import Location, Problem, VpcmeshError
from vpcmesh.model.cache import ParseCache
from vpcmesh.model.layout import (
    ADMIN_SECRETS,
    CA_CERT,
    CRL_FILE,
    MESH_FILE,
    SIGNING_PUB,
    SOPS_CONFIG,
    STATE_FILE,
    issued_cert,
    node_secrets,
)
from vpcmesh.model.loading import load_inventory
from vpcmesh.model.snapshot import read_snapshot
from vpcmesh.model.state import State, dump_state
from vpcmesh.pki import x509 as pki
from vpcmesh.pki.admin import admin_payload
from vpcmesh.pki.decisions import Reason
from vpcmesh.pki.issuing import Sealing, node_payload
from vpcmesh.planning.addresses import make_plan
from vpcmesh.rendering.render import environment
from vpcmesh.secrets import sops, sopsconfig

# What render would issue because import failed to supply it; renewing a kept certificate
# that expires soon is expected (and reported).
UNEXPECTED = (Reason.NEW_NODE, Reason.KEY_MISSING, Reason.ALGORITHM_CHANGED)


@dataclass(frozen=True)
class Sources:
    pki: Path
    server_conf: Path
    mapping: Path
    ccd: Path | None = None
    ipp: Path | None = None
    tls_key: Path | None = None
    ca_passphrase: Path | None = None


@dataclass(frozen=True)
class Report:
    mapped: tuple[tuple[Location, str], ...]  # each line read, and what it became
    warnings: tuple[Problem, ...]  # what is not carried over, and what vpcmesh does instead
    kept: tuple[str, ...]  # the clients that keep their certificate and key


@dataclass(frozen=True)
class Adoption:
    files: dict[str, bytes]  # every file of the new repository, secrets already encrypted
    report: Report


def _mesh_yaml(root: Path, mapping: Mapping, old: OldServer, algorithm: str,
               sources: Sources) -> bytes:
    text = environment().get_template("imported-mesh.yaml.j2").render(
        mapping=mapping, old=old, algorithm=algorithm, compat=old.compat, sources=sources,
        schema_dir=scaffold.schema_dir(root))
    return text.encode()


def _node_yaml(root: Path, node: NewNode) -> bytes:
    return environment().get_template("node.yaml.j2").render(
        node=node, schema_dir=scaffold.schema_dir(root), origin="import").encode()


def _crl(old_pki: OldPki, days: int, now: dt.datetime) -> bytes:
    crl = pki.make_crl(old_pki.ca_key, old_pki.ca, old_pki.revoked, old_pki.crl_number + 1,
                       days, now)
    return pki.crl_pem(crl).encode()


def _json_path(message: str) -> list[str | int]:
    """`subnets[0]: ...` -> ["subnets", 0]: the value a schema message is about."""
    head = message.split(":")[0]
    if " " in head:
        return []
    return [int(p) if p.isdigit() else p for p in re.findall(r"[^.\[\]]+", head)]


def _relocate(problem: Problem, mapping: Mapping, conf: Path) -> Problem:
    """A problem of a generated file, pointed at the input it came from."""
    path, field = problem.location.path, _json_path(problem.message)
    host = path.removeprefix("nodes/").removesuffix(".yaml")
    if path == MESH_FILE:
        where = mapping.at("mesh", *field) if field[:1] in (["name"], ["domain"], ["admins"]) \
            else Location(str(conf))
    elif path.startswith("nodes/") and host in mapping.nodes:
        entry = mapping.doc.data["nodes"][host]
        where = mapping.at("nodes", host, *field) if field[:1] and field[0] in entry else \
            mapping.at("nodes", host)
    elif path == "nodes":
        where = mapping.at("nodes")
    else:
        return problem
    return Problem(where, f"{problem.message} (in the generated {path})", problem.severity)


def prepare(root: Path, sources: Sources, now: dt.datetime) -> Adoption:
    """Everything the new repository holds, checked as `vpcmesh validate` would, in memory;
    raises with every problem found. The one slow part is sops (one process per node)."""
    passphrase = read_bytes(sources.ca_passphrase).strip() if sources.ca_passphrase else None
    old_pki = read_pki(sources.pki, passphrase, now)
    mapping = read_mapping(sources.mapping)
    old = read_server(sources.server_conf, sources.tls_key, sources.ccd, sources.ipp)
    problems = [*old.problems, *old_pki.findings]
    taken = {sources.server_conf.stem, "client"}  # the old configs' names on the VMs
    if mapping.name in taken:
        problems.append(Problem(mapping.at("mesh", "name"), f"'{mapping.name}' is the name of"
                                " the old setup's config: vpcmesh would write"
                                f" /etc/openvpn/*/{mapping.name}.conf over it and leave no way"
                                " back; choose another name"))
    clients = read_ccd(old.ccd, problems)
    ipp = read_ipp(old.ipp, old.net30, problems)
    chosen = plan_nodes.choose(mapping, old, old_pki, clients, ipp, now, problems)
    if any(p.is_error for p in problems) or old.network is None or old.tls_key is None:
        raise VpcmeshError(problems)
    files = _public_files(root, mapping, old, chosen, sources)
    trial = read_snapshot(root, ParseCache(None)).with_files(files)
    try:  # the mesh and nodes as validate reads them, before any key is made
        plan = make_plan(load_inventory(trial), State())
    except VpcmeshError as exc:
        raise VpcmeshError([_relocate(p, mapping, sources.server_conf)
                            for p in exc.problems]) from None
    # The addresses the old server gave, as a render would record them (a mesh with issued
    # certificates and no state file is one whose state was lost).
    files[STATE_FILE] = dump_state(State(addresses=dict(plan.addresses)))
    settings, hub = plan.mesh.pki, chosen.hub
    made = pki.issue(old_pki.ca_key, old_pki.ca, hub.hostname, True, chosen.algorithm,
                     settings.cert_validity_days, now)
    files[issued_cert(hub.hostname)] = pki.cert_pem(made.cert).encode()
    files[CRL_FILE] = _crl(old_pki, settings.crl_validity_days, now)
    files[CA_CERT] = pki.cert_pem(old_pki.ca).encode()
    signing_private, signing_public = pki.signing_keypair()
    files[SIGNING_PUB] = signing_public.encode()
    admins = list(mapping.admins)
    admin = admin_payload(old_pki.ca_key, old.tls_key, signing_private)
    jobs: dict[str, Callable[[], bytes]] = {
        ADMIN_SECRETS: partial(sops.encrypt, admin, admins, ADMIN_SECRETS)}
    keys = {**chosen.keys, hub.hostname: made.key}
    certs = {**chosen.certs, hub.hostname: made.cert}
    for node in chosen.nodes:
        payload = node_payload(node.hostname, keys[node.hostname], old.tls_key,
                               pki.fingerprint(certs[node.hostname]))
        rel = node_secrets(node.hostname)
        jobs[rel] = partial(sops.encrypt, payload, [*admins, node.age_recipient], rel)
    with Sealing(jobs) as sealing:
        files.update(sealing.results())
    trial = read_snapshot(root, ParseCache(None)).with_files(files)
    loaded = pipeline.load(trial)  # the whole repository, PKI included, as render reads it
    missing = {h: d for h, d in loaded.actions.issue.items() if d.reason in UNEXPECTED}
    if missing or loaded.actions.revoke:  # import supplies every key: a bug, never input
        raise VpcmeshError.at(MESH_FILE, f"internal: the imported PKI lacks {missing}"
                                         f" {loaded.actions.revoke}; please report this")
    warnings = tuple(p for p in [*problems, *loaded.warnings] if not p.is_error)
    return Adoption(files, Report(tuple(sorted(old.mapped)), warnings, chosen.kept))


def _public_files(root: Path, mapping: Mapping, old: OldServer, chosen: plan_nodes.Chosen,
                  sources: Sources) -> dict[str, bytes]:
    files = {MESH_FILE: _mesh_yaml(root, mapping, old, chosen.algorithm, sources),
             ".gitignore": GITIGNORE.encode()}
    for node in chosen.nodes:
        files[f"nodes/{node.hostname}.yaml"] = _node_yaml(root, node)
    for host, cert in chosen.certs.items():
        files[issued_cert(host)] = pki.cert_pem(cert).encode()
    files[SOPS_CONFIG] = sopsconfig.render_rules(
        list(mapping.admins), [(n.hostname, n.age_recipient) for n in chosen.nodes])
    return files
