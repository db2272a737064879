"""`vpcmesh doctor`: the runbook's failures, looked for on this VM, read-only.

Each check says ok, warn, problem or skipped (it could not look), and for a problem how to
fix it. Nothing here changes the system: no sysctl is set, no rule added, no unit touched;
the only packet sent is one UDP or TCP probe to the hub's port."""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vpcmesh.agent import acl, faq, installed, system
from vpcmesh.agent.install import Target
from vpcmesh.agent.state import AgentState, read_agent_state, state_conf_dir
from vpcmesh.bundle.manifest import format_time, parse_time

OK, WARN, PROBLEM, SKIPPED = "ok", "warn", "problem", "skipped"
EXPIRING = dt.timedelta(days=14)
PROC = Path("/proc/sys/net/ipv4")
# Interfaces that container and VM software makes: a route of theirs inside the mesh's
# ranges takes the mesh's traffic (docker0's 172.17.0.0/16 against a VPC in 172.16.0.0/12).
# Not veth: an LXC or container VM's own NIC is one. The default route's interface, the
# VM's own VPC, is never counted.
_LOCAL_KINDS = {"bridge", "vxlan", "macvlan", "ipvlan"}


@dataclass(frozen=True)
class Finding:
    check: str
    level: str
    detail: str
    fix: str = ""


@dataclass(frozen=True)
class Context:
    root: Path
    now: dt.datetime
    state: AgentState
    log: str | None  # OpenVPN's recent log lines, if any could be read

    @property
    def conf_dir(self) -> Path:
        return state_conf_dir(self.root, self.state)

    @property
    def hub(self) -> bool:
        return "server@" in self.state.unit


def _sysctl(name: str) -> str | None:
    try:
        return (PROC / name).read_text().strip()
    except OSError:
        return None


def forwarding(ctx: Context) -> Finding:
    value = _sysctl("ip_forward")
    if value is None:
        return Finding("forwarding", SKIPPED, "cannot read net.ipv4.ip_forward")
    if value != "1":
        return Finding("forwarding", PROBLEM, "net.ipv4.ip_forward is 0: this VM does not"
                       " route between its VPC and the tunnel",
                       "sysctl -w net.ipv4.ip_forward=1 (the bundle's sysctl file sets it at"
                       " boot: is /etc/sysctl.d/60-vpcmesh-*.conf there?)")
    return Finding("forwarding", OK, "net.ipv4.ip_forward is 1")


def rp_filter(ctx: Context) -> Finding:
    values = {k: _sysctl(f"conf/{k}/rp_filter") for k in ("all", "default")}
    strict = [k for k, v in values.items() if v == "1"]
    if strict:
        return Finding("rp_filter", WARN, f"strict reverse-path filtering ({', '.join(strict)}"
                       " = 1): a packet from another VPC that arrives on another interface"
                       " than the route back is dropped",
                       "sysctl -w net.ipv4.conf.all.rp_filter=2 (loose) if traffic between"
                       " VPCs is lost one way")
    return Finding("rp_filter", OK, f"rp_filter all={values['all']} default={values['default']}")


def _forward_chains(ruleset: Any) -> list[tuple[str, list[str]]]:
    """(chain, the text of its rules and of the chains it jumps to, such as Docker's
    DOCKER-USER) for each forward-hook chain with a drop policy."""
    items = ruleset.get("nftables", []) if isinstance(ruleset, dict) else []
    chains = [i["chain"] for i in items if isinstance(i, dict) and isinstance(i.get("chain"),
                                                                               dict)]
    rules = [i["rule"] for i in items if isinstance(i, dict) and isinstance(i.get("rule"), dict)]

    def text(table: object, name: object) -> list[str]:
        return [str(r.get("expr")) for r in rules
                if (r.get("table"), r.get("chain")) == (table, name)]

    out = []
    for chain in chains:
        if chain.get("hook") == "forward" and chain.get("policy") == "drop":
            mine = text(chain.get("table"), chain.get("name"))
            for target in {t for r in mine for t in _JUMP.findall(r)}:
                mine += text(chain.get("table"), target)
            out.append((f"{chain.get('family')} {chain.get('table')} {chain.get('name')}", mine))
    return out


_JUMP = re.compile(r"'jump': \{'target': '([^']+)'\}")


def forward_policy(ctx: Context) -> Finding:
    ruleset = system.nft_ruleset()
    if ruleset is None:
        return Finding("forward-policy", SKIPPED, "cannot read the firewall (nft -j list"
                                                  " ruleset)")
    blocked = [name for name, rules in _forward_chains(ruleset)
               if not any("tun" in r and "accept" in r for r in rules)]
    if blocked:
        return Finding("forward-policy", PROBLEM, "the FORWARD policy is DROP"
                       f" ({'; '.join(blocked)}) and no rule accepts the tunnel: traffic"
                       " between the VPC and the mesh is dropped (Docker sets this policy)",
                       "with Docker, the agent's next pull puts the bundle's rules first in"
                       " DOCKER-USER (vpcmesh pull --firewall; on by default), or by hand:"
                       " iptables -I DOCKER-USER -i tun+ -j ACCEPT; iptables -I DOCKER-USER -o"
                       " tun+ -j ACCEPT; without Docker: accept tun+ in that chain, and make"
                       " it persistent")
    return Finding("forward-policy", OK, "forwarding is not blocked by a DROP policy")


def tun_device(ctx: Context) -> Finding:
    path = ctx.root / "dev/net/tun"
    try:
        st = path.stat()
    except OSError:
        return Finding("tun-device", PROBLEM, f"{path} is missing",
                       "modprobe tun; in a container, pass --device /dev/net/tun")
    import stat

    if not stat.S_ISCHR(st.st_mode):
        return Finding("tun-device", PROBLEM, f"{path} is not a character device",
                       "remove it and run `modprobe tun` (or reboot)")
    if st.st_mode & 0o777 != 0o666:
        return Finding("tun-device", WARN, f"{path} has mode {st.st_mode & 0o777:04o}:"
                       " OpenVPN, once it runs as nobody, cannot reopen it when the hub pushes"
                       " new options (the unit's drop-in restarts it)", "chmod 0666 " + str(path))
    return Finding("tun-device", OK, f"{path} is a character device, mode 0666")


def unit(ctx: Context) -> Finding:
    if not ctx.state.unit:
        return Finding("unit", SKIPPED, "no bundle is installed yet (vpcmesh pull --once)")
    units = (ctx.state.unit, *ctx.state.units)  # OpenVPN, then the resolver
    for name in units:
        found = system.unit_state(name) if ctx.root == system.REAL_ROOT else None
        if found is None:
            return Finding("unit", SKIPPED, f"cannot ask systemd about {name}")
        if found != "active":
            return Finding("unit", PROBLEM, f"{name} is {found}",
                           f"journalctl -u {name} -n 50; systemctl restart {name}")
    return Finding("unit", OK, f"{' and '.join(units)} {'is' if len(units) == 1 else 'are'}"
                               " active")


def _remote(ctx: Context) -> tuple[str, int, str] | None:
    try:
        text = (ctx.conf_dir / f"{ctx.state.mesh}.conf").read_text()
    except OSError:
        return None
    words = {line.split()[0]: line.split()[1:] for line in text.splitlines()
             if line.strip() and not line.startswith("#")}
    remote, proto = words.get("remote", []), words.get("proto", ["udp"])
    if len(remote) < 2 or not remote[1].isdigit():
        return None
    return remote[0], int(remote[1]), "tcp" if proto[0].startswith("tcp") else "udp"


def hub_reachable(ctx: Context) -> Finding:
    if ctx.hub:
        return Finding("hub-reachable", SKIPPED, "this node is the hub")
    remote = _remote(ctx)
    if remote is None:
        return Finding("hub-reachable", SKIPPED, "no installed client config to read the"
                                                 " hub's address from")
    host, port, proto = remote
    where = f"{host} {proto}/{port}"
    fix = (f"open {proto}/{port} in the hub's security group and firewall to this VM's public"
           " address; check the hub runs OpenVPN (`vpcmesh doctor` there)")
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.settimeout(3)
        try:
            sock.connect((host, port))
            if proto == "tcp":
                return Finding("hub-reachable", OK, f"{where} accepts connections")
            # OpenVPN drops what it cannot authenticate, silently; a closed port answers
            # with ICMP port unreachable, which the next recv reports.
            sock.send(b"")  # empty: OpenVPN ignores it without a log line
            sock.recv(64)
        except ConnectionRefusedError:
            return Finding("hub-reachable", PROBLEM, f"{where}: refused (nothing listens on"
                                                     " that port)", fix)
        except TimeoutError:
            if proto == "tcp":
                return Finding("hub-reachable", PROBLEM, f"{where}: no answer", fix)
        except OSError as exc:
            return Finding("hub-reachable", PROBLEM, f"{where}: {exc.strerror or exc}", fix)
    return Finding("hub-reachable", OK, f"{where}: a route, and no ICMP error (OpenVPN"
                                        " answers nothing to a stranger, so this is all a probe"
                                        " can tell)")


def clock(ctx: Context) -> Finding:
    cert = installed.certificate(ctx.conf_dir, ctx.state.hostname)
    if cert is None:
        return Finding("clock", SKIPPED, "no installed certificate to compare the clock with")
    issued = cert.not_valid_before_utc
    if issued > ctx.now + dt.timedelta(minutes=5):
        return Finding("clock", PROBLEM, f"this clock ({format_time(ctx.now)}) is before the"
                       f" certificate's start ({format_time(issued)}): OpenVPN calls it 'not"
                       " yet valid'", "timedatectl set-ntp true (and check the time zone)")
    if ctx.state.expires and parse_time(ctx.state.expires) <= ctx.now:
        return Finding("clock", PROBLEM, f"the installed manifest expired on"
                       f" {ctx.state.expires}: this clock is ahead, or the source stopped"
                       " publishing", "check the clock (timedatectl), then the publish job")
    return Finding("clock", OK, f"{format_time(ctx.now)} is within the installed certificate"
                                " and manifest")


def _net(route: dict[str, Any]) -> ipaddress.IPv4Network | None:
    dst = route.get("dst")
    if not isinstance(dst, str) or dst == "default":
        return None
    try:
        return ipaddress.IPv4Network(dst, strict=False)
    except ValueError:
        return None


def route_conflicts(ctx: Context) -> Finding:
    routes, links = system.routes(), system.links()
    if not isinstance(routes, list) or not isinstance(links, list):
        return Finding("routes", SKIPPED, "cannot read routes (ip -j route)")
    kinds = {link.get("ifname"): (link.get("linkinfo") or {}).get("info_kind")
             for link in links if isinstance(link, dict)}
    mesh = [(n, r.get("dev")) for r in routes if isinstance(r, dict)
            and kinds.get(r.get("dev")) == "tun" and (n := _net(r)) is not None]
    uplinks = {r.get("dev") for r in routes if isinstance(r, dict) and r.get("dst") == "default"}
    clashes = []
    for route in routes:
        net, dev = (_net(route), route.get("dev")) if isinstance(route, dict) else (None, None)
        if net is None or kinds.get(dev) not in _LOCAL_KINDS or dev in uplinks:
            continue
        for mesh_net, tun in mesh:
            if net.overlaps(mesh_net) and net.prefixlen >= mesh_net.prefixlen:
                clashes.append(f"{dev}'s {net} lies in the mesh's {mesh_net} (via {tun}):"
                               f" traffic to mesh addresses in {net} stays on {dev}")
    if clashes:
        return Finding("routes", PROBLEM, "; ".join(clashes),
                       "move the local network out of the mesh's ranges, for Docker in"
                       ' /etc/docker/daemon.json: {"bip": "10.200.0.1/24",'
                       ' "default-address-pools": [{"base": "10.201.0.0/16", "size": 24}]}')
    return Finding("routes", OK, f"no local bridge or container network inside the mesh's"
                                 f" {len(mesh)} tunnel route(s)")


def expiry(ctx: Context) -> Finding:
    found, soon = [], []
    cert = installed.certificate(ctx.conf_dir, ctx.state.hostname)
    if cert is not None:
        found.append(("certificate", cert.not_valid_after_utc))
    crl = installed.crl(ctx.conf_dir)
    if crl is not None and crl.next_update_utc is not None:
        found.append(("CRL", crl.next_update_utc))
    if not found:
        return Finding("expiry", SKIPPED, "no installed certificate")
    for what, when in found:
        if when <= ctx.now:
            return Finding("expiry", PROBLEM, f"the {what} expired on {format_time(when)}",
                           "vpcmesh pki renew in the repository, then render, sign, publish")
        if when - ctx.now <= EXPIRING:
            soon.append(f"the {what} expires on {format_time(when)}")
    if soon:
        return Finding("expiry", WARN, "; ".join(soon), "vpcmesh pki renew in the repository")
    return Finding("expiry", OK, ", ".join(f"{w} until {format_time(t)[:10]}" for w, t in found))


def service_acls(ctx: Context) -> Finding:
    if not ctx.state.mesh:
        return Finding("service-acls", SKIPPED, "no bundle is installed yet")
    path = Target.of_state(ctx.state, ctx.conf_dir, ctx.root).acl
    if not path.exists():
        return Finding("service-acls", OK, "the mesh restricts nothing on this node")
    if not system.has_nft():
        return Finding("service-acls", PROBLEM, "the bundle has service ACLs and nft is"
                       " missing: nothing enforces them", "apt-get install nftables (or dnf),"
                       " then vpcmesh pull --once")
    found = acl.counted(ctx.state.mesh)
    if found is None:
        return Finding("service-acls", PROBLEM, "the service ACLs are not loaded (a restart"
                       " of nftables flushes them)", "vpcmesh pull --once loads them")
    return Finding("service-acls", OK, f"loaded: {found[0]} rules, {found[1]} packets dropped")


def log_lines(ctx: Context) -> list[Finding]:
    if ctx.log is None:
        return [Finding("log", SKIPPED, "no OpenVPN log to read (journalctl, or --log FILE)")]
    seen = faq.scan(ctx.log)
    if not seen:
        return [Finding("log", OK, "none of the known failures in OpenVPN's recent log")]
    return [Finding(f"log: {s.known.name}", PROBLEM,
                    f"{s.known.meaning} (seen {s.count} time(s), last: {s.line})", s.known.fix)
            for s in seen]


CHECKS: tuple[Callable[[Context], Finding], ...] = (
    forwarding, rp_filter, forward_policy, tun_device, unit, hub_reachable, clock,
    route_conflicts, expiry, service_acls)


def examine(root: Path, now: dt.datetime, log: str | None) -> list[Finding]:
    state = read_agent_state(root, repair=False)
    if log is None and state.unit and root == system.REAL_ROOT:
        log = system.journal(state.unit, 300)
    ctx = Context(root, now, state, log)
    return [*(check(ctx) for check in CHECKS), *log_lines(ctx)]
