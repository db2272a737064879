from __future__ import annotations

import logging
from pathlib import Path

import click

log = logging.getLogger(__name__)


def render(root: Path, require_signing: bool = False) -> int:
    from vpcmesh.compile import build  # not needed at all when the stamp says nothing changed

    built = build(root, require_signing=require_signing)
    for warning in built.warnings:
        click.echo(str(warning), err=True)
    for host, why in built.actions.issue.items():
        log.info("issued a certificate for %s: %s", host, why)
    for host, why in built.actions.revoke.items():
        log.info("revoked the certificate of %s: %s", host, why)
    for rel in built.written:
        log.info("wrote %s", rel)
    log.info("%s build/ for %d nodes", "wrote" if built.build_changed else "unchanged:",
             len(built.plan.nodes))
    return 0


def sign(root: Path) -> int:
    """render, but a bundle that needs signing without the key is an error, not a warning."""
    return render(root, require_signing=True)
