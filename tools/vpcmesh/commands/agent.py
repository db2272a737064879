from __future__ import annotations

import click

from vpcmesh.agent.bootstrap import AgentSetup, install


def install_agent(setup: AgentSetup) -> int:
    done = install(setup)
    for path in done.written:
        click.echo(f"wrote {path}", err=True)
    click.echo(f"age_recipient: {done.recipient}")
    click.echo(f"Put it in nodes/{setup.hostname}.yaml (age_recipient) and open the pull"
               " request; once merged and published, the timer installs the bundle.", err=True)
    return 0
