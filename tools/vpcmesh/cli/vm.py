"""A node's commands: run on the VMs of the mesh (and on a hub, `status`)."""

from __future__ import annotations

from pathlib import Path

import click

from vpcmesh import error_handler
from vpcmesh.agent import METRICS_FILE
from vpcmesh.cli.group import main
from vpcmesh.cli.params import HOSTNAME, firewall_option, token_options
from vpcmesh.cli.params import exit_with as _exit


@main.command("pull")
@click.option("--hostname", type=HOSTNAME,
              help="This node's hostname (its bundle is <hostname>/).")
@click.option("--source", help="A git remote (ssh, path, git+https://), a local build/ folder,"
                               " or an https:// base URL.")
@click.option("--ref", default="bundles", show_default=True, help="Branch of a git source.")
@token_options
@click.option("--age-key", type=click.Path(dir_okay=False, path_type=Path),
              help="This node's age key file (decrypts its secrets).")
@click.option("--trust-key", type=click.Path(dir_okay=False, path_type=Path),
              help="The mesh's signing public key (mesh/signing.pub) this node trusts.")
@click.option("--root", type=click.Path(file_okay=False, path_type=Path), default=Path("/"),
              show_default=True, help="Install under this root instead of /.")
@click.option("--once", is_flag=True, help="Pull once and exit (what the timer runs).")
@click.option("--interval", type=click.FloatRange(min=1), default=120, show_default=True,
              help="Seconds between pulls without --once.")
@click.option("--restart-cmd", help="Restart a unit with this shell command instead of"
                                    " systemctl restart; run once per unit (OpenVPN, each"
                                    " tunnel to a further hub, the resolver) with"
                                    " VPCMESH_UNIT naming it.")
@click.option("--stop-cmd", help="Stop a unit with this shell command (after a first install"
                                 " that cannot start) instead of systemctl stop.")
@click.option("--health-cmd", help="Health check command instead of checking the process and"
                                   " the tunnel address (or the resolver's answer): exit 0 up,"
                                   " 75 running but not connected yet (kept), anything else"
                                   " down (rolled back).")
@click.option("--pidfile", type=click.Path(dir_okay=False, path_type=Path),
              help="OpenVPN's --writepid file, for the health check with --restart-cmd.")
@click.option("--health-timeout", type=click.FloatRange(min=0), default=30,
              show_default=True,
              help="Seconds OpenVPN has to come up before the previous files come back.")
@click.option("--hub-wait", type=click.FloatRange(min=0), default=300, show_default=True,
              help="Two or more hubs: seconds a hub waits for the others to carry its spokes"
                   " before it restarts; then this pull changes nothing and fails.")
@click.option("--status", "show_status", is_flag=True, help="Print what is installed; exit.")
@click.option("--json", "as_json", is_flag=True, help="With --status: print JSON.")
@click.option("--metrics", "metrics", type=click.Path(dir_okay=False, path_type=Path),
              help="Write a Prometheus textfile here after every pull (node_exporter's"
                   " textfile collector; 'vpcmesh agent install' sets it up).")
@firewall_option
def pull_cmd(hostname: str | None, source: str | None, ref: str, token_file: Path | None,
             header_file: Path | None, age_key: Path | None,
             trust_key: Path | None, root: Path, once: bool, interval: float,
             restart_cmd: str | None, stop_cmd: str | None, health_cmd: str | None,
             pidfile: Path | None, health_timeout: float, hub_wait: float, show_status: bool,
             as_json: bool, metrics: Path | None, firewall: bool | None) -> None:
    """Fetch this node's signed bundle, verify it, and install it safely."""
    from vpcmesh.commands import pull

    if show_status:
        _exit(error_handler.run(lambda: pull.status(root, as_json)))
    missing = [n for n, v in (("--hostname", hostname), ("--source", source),
                              ("--age-key", age_key), ("--trust-key", trust_key)) if not v]
    if missing:
        raise click.UsageError(f"missing {', '.join(missing)}")
    assert hostname and source and age_key and trust_key
    from vpcmesh.agent.pull import PullOptions
    from vpcmesh.agent.service import ServiceOptions
    from vpcmesh.agent.sources import Credentials

    opts = PullOptions(hostname, age_key, trust_key, root,
                       ServiceOptions(restart_cmd, health_cmd, pidfile, health_timeout,
                                      stop_cmd), metrics,
                       firewall=root == Path("/") if firewall is None else firewall,
                       hub_wait=hub_wait)
    credentials = Credentials(token_file, header_file)
    _exit(error_handler.run(lambda: pull.run(source, ref, opts, once, interval, credentials)))


@main.group("agent")
def agent_group() -> None:
    """Set up a VM to pull its bundle on a timer."""


@agent_group.command("install")
@click.option("--hostname", required=True, type=HOSTNAME,
              help="This VM's hostname in the mesh.")
@click.option("--source", required=True, help="Where bundles are published (git, folder, https).")
@click.option("--ref", default="bundles", show_default=True, help="Branch of a git source.")
@token_options
@click.option("--trust-key", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The mesh's mesh/signing.pub; the only key this VM will trust.")
@click.option("--root", type=click.Path(file_okay=False, path_type=Path), default=Path("/"),
              show_default=True, help="Write under this root instead of /.")
@click.option("--cron", is_flag=True, help="A cron line instead of a systemd timer.")
@click.option("--restart-cmd", help="Passed on to 'vpcmesh pull'.")
@click.option("--metrics", help=f"Passed on to 'vpcmesh pull' (default: {METRICS_FILE};"
                                " '' for none).")
def agent_install_cmd(hostname: str, source: str, ref: str, token_file: Path | None,
                      header_file: Path | None, trust_key: Path, root: Path,
                      cron: bool, restart_cmd: str | None, metrics: str | None) -> None:
    """Create this VM's age key (if missing), pin the trust key, and write a systemd timer
    (every 2 minutes, randomised) or a cron line running 'vpcmesh pull --once'."""
    from dataclasses import replace

    from vpcmesh.agent.bootstrap import AgentSetup
    from vpcmesh.commands.agent import install_agent

    setup = AgentSetup(hostname, source, ref, trust_key, root, cron, restart_cmd,
                       token_file=token_file, header_file=header_file)
    if metrics is not None:  # else the setup's own default
        setup = replace(setup, metrics=metrics or None)
    _exit(error_handler.run(lambda: install_agent(setup)))


@agent_group.command("key")
@click.option("--root", type=click.Path(file_okay=False, path_type=Path), default=Path("/"),
              show_default=True, help="Write under this root instead of /.")
def agent_key_cmd(root: Path) -> None:
    """Create this VM's age key (/etc/vpcmesh/age.key) if missing and print its recipient;
    nothing else. For a node file or an import mapping made before 'agent install' (which
    keeps the key)."""
    from vpcmesh.commands.agent import agent_key

    _exit(error_handler.run(lambda: agent_key(root)))


@agent_group.command("uninstall")
@click.option("--root", type=click.Path(file_okay=False, path_type=Path), default=Path("/"),
              show_default=True, help="Remove from under this root instead of /.")
@click.option("--stop-cmd", help="Stop OpenVPN with this shell command instead of"
                                 " systemctl stop (VPCMESH_UNIT names the unit).")
@click.option("--metrics", default=METRICS_FILE, show_default=True,
              help="The metrics file 'agent install' set up ('' for none).")
@click.option("--purge", is_flag=True, help="Remove the VM's age key as well.")
@firewall_option
def agent_uninstall_cmd(root: Path, stop_cmd: str | None, metrics: str, purge: bool,
                        firewall: bool | None) -> None:
    """Leave the mesh: stop and disable the timer and OpenVPN, remove every file the agent
    installed, this mesh's block of /etc/hosts and the agent's state."""
    from vpcmesh.agent.service import ServiceOptions
    from vpcmesh.commands.agent import uninstall_agent

    service = ServiceOptions(stop_cmd=stop_cmd)
    _exit(error_handler.run(lambda: uninstall_agent(root, service, Path(metrics) if metrics
                                                    else None, purge, firewall)))


@main.command("status")
@click.option("--root", type=click.Path(file_okay=False, path_type=Path), default=Path("/"),
              show_default=True, help="The hub's root (for tests).")
@click.option("--from", "source", metavar="FILE",
              help="Judge a status taken elsewhere ('-' reads stdin), such as `ssh root@hub"
                   " vpcmesh status --json | vpcmesh status --from -`.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON, for machines.")
@click.option("--down-after", type=click.FloatRange(min=0), default=30, show_default=True,
              help="Minutes a node may be down before it counts as a problem.")
@click.option("--behind-after", type=click.FloatRange(min=0), default=30, show_default=True,
              help="Minutes a node may run another config than its published one.")
@click.option("--expiring-days", type=click.FloatRange(min=0), default=14, show_default=True,
              help="A certificate, CRL or manifest closer to its expiry is a problem.")
def status_cmd(root: Path, source: str | None, as_json: bool, down_after: float,
               behind_after: float, expiring_days: float) -> None:
    """On a hub: every node of the mesh, connected or not, what it runs against what was
    published for it, and what expires when. Exit 1 when something is wrong (for cron)."""
    import datetime as dt

    from vpcmesh.agent.status import Thresholds
    from vpcmesh.commands.status import status

    limits = Thresholds(dt.timedelta(minutes=down_after), dt.timedelta(minutes=behind_after),
                        dt.timedelta(days=expiring_days))
    _exit(error_handler.run(lambda: status(root, source, as_json, limits)))


@main.command("doctor")
@click.option("--root", type=click.Path(file_okay=False, path_type=Path), default=Path("/"),
              show_default=True, help="The node's root (for tests).")
@click.option("--log", type=click.Path(dir_okay=False, path_type=Path),
              help="OpenVPN's log file (default: the unit's journal).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON, for machines.")
def doctor_cmd(root: Path, log: Path | None, as_json: bool) -> None:
    """Look for the runbook's failures on this VM, read-only: forwarding, rp_filter, a DROP
    FORWARD policy, /dev/net/tun, the unit, the hub's port, the clock, routes that take
    the mesh's traffic (docker0), expiries, and known errors in OpenVPN's log, each with
    its fix. Exit 1 when it finds a problem."""
    from vpcmesh.commands.doctor import doctor

    _exit(error_handler.run(lambda: doctor(root, log, as_json)))
