from __future__ import annotations

import tempfile
from pathlib import Path

import click

from vpcmesh import git
from vpcmesh.bundle import manifest as contract
from vpcmesh.bundle import names
from vpcmesh.bundle.manifest import DIRTY
from vpcmesh.compiler.lock import LOCK, writing
from vpcmesh.compiler.pipeline import Request, build, snapshot
from vpcmesh.compiler.stamp import STAMP
from vpcmesh.errors import Location, Problem, VpcmeshError
from vpcmesh.fsio import read_tree
from vpcmesh.model.cache import CACHE
from vpcmesh.model.layout import BUILD_DIR

_BRAVE = " (or --allow-dirty, to publish anyway)"
RUNTIME_FILES = frozenset({LOCK, STAMP, CACHE})


def _source(root: Path, allow_dirty: bool) -> str:
    """HEAD, when it is what the bundles will be: committed, and on a remote branch."""
    head = git.head_commit(root)
    if head is None:
        raise VpcmeshError.at(str(root), "not a git repository with a commit: publish takes a"
                                         " commit")
    if allow_dirty:
        return head
    # vpcmesh's own working files are not changes, even where .gitignore predates them
    dirty = [rel for rel in git.dirty_paths(root)
             if rel not in RUNTIME_FILES and not rel.startswith(f"{BUILD_DIR}/")]
    if dirty:
        shown = ", ".join(dirty[:5]) + (f" and {len(dirty) - 5} more" if len(dirty) > 5 else "")
        raise VpcmeshError.at(dirty[0], f"uncommitted changes ({shown}): publish takes a"
                                        f" commit; commit or stash them{_BRAVE}")
    if not git.remotes_containing(root, head):
        raise VpcmeshError.at(str(root), f"HEAD {head[:12]} is on no remote branch: push it"
                                         " first, so that the commit the bundles come from"
                                         f" exists for everyone{_BRAVE}")
    return head


def _check(root: Path, head: str, hosts: list[str], files: dict[str, bytes],
           publication: git.Publication, allow_dirty: bool) -> list[Problem]:
    problems = []
    for host in hosts:
        rel = f"{host}/{names.MANIFEST}"
        new = contract.parse(files[rel], f"{BUILD_DIR}/{rel}")
        found = new.commit == head or (not new.commit.endswith(DIRTY)
                                       and git.in_history(root, new.commit, head))
        if found is None and not allow_dirty:
            problems.append(Problem(Location(f"{BUILD_DIR}/{rel}"), f"signed from"
                                    f" {new.commit[:12]}, which this shallow clone lacks:"
                                    " publish from a full clone (actions/checkout:"
                                    f" fetch-depth: 0){_BRAVE}"))
        elif not found and not allow_dirty:
            problems.append(Problem(Location(f"{BUILD_DIR}/{rel}"), f"signed from"
                                    f" {new.commit[:18]}, which is not in the history of"
                                    f" {head[:12]}: run 'vpcmesh sign' on this commit,"
                                    f" commit what it writes, and publish again{_BRAVE}"))
        current = publication.current(rel)
        if current is None:
            continue
        try:
            old = contract.parse(current, f"{publication.branch}:{rel}")
        except VpcmeshError:
            continue  # not a manifest this version reads: the new one replaces it
        same = old.version == new.version
        if old.version > new.version or (same and current != files[rel]):
            other = " with other content" if same else ""
            problems.append(Problem(Location(f"{BUILD_DIR}/{rel}"), f"version {new.version}"
                                    f" of {host}, but '{publication.branch}' already has"
                                    f" version {old.version}{other}: mesh/state.yaml is"
                                    " behind what was published (lost or reverted?); restore"
                                    " it from git"))
    return problems


def publish(root: Path, to: str, branch: str, allow_dirty: bool = False) -> int:
    for option, value in (("--to", to), ("--branch", branch)):
        if value.startswith("-") or any(ord(c) < 32 for c in value):
            raise VpcmeshError.at(option, f"{value!r} is not a git remote or branch name")
    with writing(root):
        return _publish(root, to, branch, allow_dirty)


def _publish(root: Path, to: str, branch: str, allow_dirty: bool) -> int:
    head = _source(root, allow_dirty)
    # Render and sign first, so what goes out is exactly what the repository says.
    built = build(root, snapshot(root), Request(require_signing=True))
    if built.written and not allow_dirty:
        raise VpcmeshError([Problem(Location(rel), "written by this publish's render: the"
                                    " repository was not signed and committed; run 'vpcmesh"
                                    " sign', commit and push what it writes, and publish"
                                    f" again{_BRAVE}") for rel in built.written])
    files = read_tree(root / BUILD_DIR)
    hosts = [n.hostname for n in built.plan.nodes]
    unsigned = [h for h in hosts if f"{h}/{names.MANIFEST}" not in files]
    if unsigned:
        raise VpcmeshError([Problem(built.plan.mesh.doc.at(), f"{h}: no signed manifest")
                            for h in unsigned])
    message = (f"Publish bundles from {head[:12]}\n\nSource commit: {head}\n"
               f"Nodes: {len(hosts)}\n")
    with tempfile.TemporaryDirectory() as scratch:
        publication = git.Publication(Path(scratch), to, branch)
        problems = _check(root, head, hosts, files, publication, allow_dirty)
        if problems:
            raise VpcmeshError(problems)
        commit = publication.push(files, message)
    if commit is None:
        click.echo(f"{to} {branch}: already up to date", err=True)
    else:
        click.echo(f"{to} {branch}: published {commit[:12]} from {head[:12]}", err=True)
    return 0
