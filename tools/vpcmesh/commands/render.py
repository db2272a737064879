from __future__ import annotations

import logging
from pathlib import Path

import click

from vpcmesh.compile import load_plan
from vpcmesh.layout import BUILD_DIR, STATE_FILE
from vpcmesh.output import replace_file, replace_tree
from vpcmesh.render import render_build
from vpcmesh.state import dump_state

log = logging.getLogger(__name__)


def render(root: Path) -> int:
    inventory, previous, plan = load_plan(root)
    for warning in inventory.warnings:
        click.echo(str(warning), err=True)
    files, state = render_build(plan, previous)
    changed = replace_tree(root / BUILD_DIR, files)
    # The state goes last: if the build swap failed, the next render recomputes the same plan.
    state_changed = replace_file(root / STATE_FILE, dump_state(state))
    log.info("%s %d files for %d nodes%s", "wrote" if changed else "unchanged:", len(files),
             len(plan.nodes), f"; updated {STATE_FILE}" if state_changed else "")
    return 0
