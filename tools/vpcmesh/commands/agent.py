from __future__ import annotations

from pathlib import Path

import click

from vpcmesh.agent.bootstrap import AgentSetup, install
from vpcmesh.agent.service import ServiceOptions


def install_agent(setup: AgentSetup) -> int:
    done = install(setup)
    for path in done.written:
        click.echo(f"wrote {path}", err=True)
    click.echo(f"age_recipient: {done.recipient}")
    click.echo(f"Put it in nodes/{setup.hostname}.yaml (age_recipient) and open the pull"
               " request; once merged and published, the timer installs the bundle.", err=True)
    return 0


def agent_key(root: Path) -> int:
    from vpcmesh.agent.bootstrap import CONFIG_DIR, ensure_key

    recipient, created = ensure_key(root)
    if created:
        click.echo(f"wrote {root / CONFIG_DIR / 'age.key'}", err=True)
    click.echo(f"age_recipient: {recipient}")
    return 0


def uninstall_agent(root: Path, service: ServiceOptions, metrics: Path | None,
                    purge: bool, rules: bool | None = None) -> int:
    from vpcmesh.agent.uninstall import uninstall

    done = uninstall(root, service, metrics, purge, rules=rules)
    if done.stopped:
        click.echo(f"stopped and disabled {done.stopped}", err=True)
    for path in done.removed:
        click.echo(f"removed {path}", err=True)
    for path in done.kept:
        click.echo(f"kept {path} (this VM's identity; --purge removes it)", err=True)
    if not done.removed and not done.stopped:
        click.echo("nothing of vpcmesh is installed here", err=True)
    return 0
