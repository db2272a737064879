from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any

import click

from vpcmesh.compiler.lock import writing
from vpcmesh.model.layout import BUILD_DIR

log = logging.getLogger(__name__)


class Progress:
    """A bar on a terminal; in a CI log nothing, or with -v a line per tenth."""

    def __init__(self) -> None:
        self.bar: Any = None
        self.shown = 0
        self.tty = sys.stderr.isatty() and not os.environ.get("CI")

    def __call__(self, done: int, total: int) -> None:
        if total < 20:
            return  # a few sops calls finish before a bar would mean anything
        if self.tty:
            if self.bar is None:
                self.bar = click.progressbar(length=total, label="encrypting node secrets",
                                             file=sys.stderr)
                self.bar.__enter__()
            self.bar.update(done - self.bar.pos)
            if done == total:
                self.bar.__exit__(None, None, None)
        elif done * 10 // total > self.shown or done == total:
            self.shown = done * 10 // total
            log.info("encrypted node secrets: %d of %d", done, total)


def render(root: Path, require_signing: bool = False) -> int:
    # Only what the stamp needs: a no-op render must not load the compiler (a third of its time).
    from vpcmesh import clock
    from vpcmesh.compiler import stamp
    from vpcmesh.model.cache import ParseCache
    from vpcmesh.model.snapshot import read_snapshot

    with writing(root):
        snap = read_snapshot(root, ParseCache(root))
        if not require_signing and stamp.fresh(root, snap, root / BUILD_DIR, clock.now()):
            log.info("unchanged: inputs as at the last render")
            return 0
        # The rest of the compiler only now: a no-op render does without it.
        from vpcmesh.compiler.pipeline import Request, build

        built = build(root, snap, Request(require_signing=require_signing),
                      progress=Progress())
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
