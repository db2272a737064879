"""A mesh of real OpenVPN nodes in network namespaces, each configured only by `vpcmesh
pull` from a published bundle with its own age key: what the end-to-end tests share."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from vpcmesh.model.state import read_state
from vpcmesh.model.yamlio import load

from bundlekit import git_bundles
from conftest import EXAMPLE, KEYS, invoke, snap
from netlab import Lab, Vm, require, wait_for


@contextmanager
def debian_tun_mode() -> Iterator[None]:
    """/dev/net/tun as on a Debian VM (udev: MODE="0666"). A client that dropped to nobody
    reopens it when pushed options change, keeping CAP_NET_ADMIN; with this container's
    0600 it would exit instead (the bundle's systemd drop-in restarts it on a VM)."""
    tun = Path("/dev/net/tun")
    if not tun.exists() or os.geteuid() != 0:
        yield
        return
    mode = tun.stat().st_mode & 0o777
    tun.chmod(0o666)
    try:
        yield
    finally:
        tun.chmod(mode)


@contextmanager
def lab_folder() -> Iterator[Path]:
    # OpenVPN re-reads crl.pem and ccd/ after dropping to nobody, so the directories must
    # be world-readable as /etc/openvpn is on a VM (pytest's tmp_path is 0700).
    root = Path(tempfile.mkdtemp(prefix="vpcmesh-lab-"))
    root.chmod(0o755)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


# The operator's --restart-cmd/--stop-cmd in a lab without systemd: one script for every
# unit the agent runs, told apart by VPCMESH_UNIT as the README shows.
STOP = """\
pid={pid} log={log}
case "$VPCMESH_UNIT" in
  vpcmesh-resolver@*) pid={pid}.resolver log={log}.resolver ;;
  openvpn-client@*)  # a tunnel to one more hub (two hubs; on a hub, every one of them)
    if [ -f "$VPCMESH_CONF_DIR/../server/$VPCMESH_MESH.conf" ] ||
       [ "$VPCMESH_UNIT" != "openvpn-client@$VPCMESH_MESH" ]
    then pid={pid}.$VPCMESH_UNIT log={log}.$VPCMESH_UNIT; fi ;;
esac
# Running, and not a zombie: a daemon's parent here is whatever reaps orphans (systemd
# reaps at once; a container's init may take seconds), and `kill -0` counts zombies too.
running() {{ state=$(ps -o stat= -p "$1" 2>/dev/null) && [ "${{state#Z}}" = "$state" ]; }}
if [ -f "$pid" ]; then
  kill "$(cat "$pid")" 2>/dev/null
  for i in $(seq 100); do running "$(cat "$pid")" || break; sleep 0.05; done
  rm -f "$pid"
fi
"""
RESTART = STOP + """\
case "$VPCMESH_UNIT" in vpcmesh-resolver@*)
  unbound -d -p -c "$VPCMESH_CONF_DIR/$VPCMESH_CONFIG" >>"$log" 2>&1 &
  echo $! > "$pid"
  exit 0 ;;
esac
exec openvpn --cd "$VPCMESH_CONF_DIR" --config "$VPCMESH_CONFIG" --daemon vpcmt \
  --writepid "$pid" --log-append "$log"
"""


def pull(vm: Vm, remote: Path, repo: Path, timeout: float = 30,
         key: Path | None = None, extra: tuple[str, ...] = (),
         trust: Path | None = None) -> tuple[int, str]:
    """What the VM's timer runs, inside the VM's namespace, with the VM's own age key (and
    `trust`, its own copy of the signing key, or else the repository's)."""
    script, stop = vm.workdir / "restart.sh", vm.workdir / "stop.sh"
    script.write_text(RESTART.format(pid=vm.pidfile, log=vm.logfile))
    stop.write_text(STOP.format(pid=vm.pidfile, log=vm.logfile))
    proc = vm.exec(sys.executable, "-m", "vpcmesh", "pull", "--once", "--hostname", vm.name,
                   "--source", str(remote), "--age-key", str(key or KEYS / f"{vm.name}.agekey"),
                   "--trust-key", str(trust or repo / "mesh/signing.pub"),
                   "--root", str(vm.workdir),
                   "--restart-cmd", f"sh {script}", "--stop-cmd", f"sh {stop}",
                   "--pidfile", str(vm.pidfile),
                   "--health-timeout", str(timeout), *extra, check=False)
    return proc.returncode, proc.stderr


def pid(vm: Vm) -> int:
    return int(vm.pidfile.read_text().split()[0])


def compile_example(root: Path, algorithm: str = "ec-p256", vpn_extra: str = "",
                    mesh_extra: str = "", node_extra: dict[str, str] | None = None,
                    edits: tuple[tuple[str, str, str], ...] = ()) -> Path:
    """The example mesh with a fresh PKI, so the test never depends on today's date;
    `vpn_extra` is YAML added under `vpn:` (such as a compat block), `mesh_extra` at the
    end of mesh.yaml, `node_extra` by hostname at the end of a node file (a key given
    there replaces the file's own), `edits` (file, old, new) replacements."""
    repo = root / "repo"
    (repo / "mesh").mkdir(parents=True)
    text = (EXAMPLE / "mesh/mesh.yaml").read_text() + mesh_extra
    text = text.replace("  max_clients: 50\n", f"  max_clients: 50\n{vpn_extra}")
    (repo / "mesh/mesh.yaml").write_text(text.replace("algorithm: ec-p256",
                                                      f"algorithm: {algorithm}"))
    shutil.copytree(EXAMPLE / "nodes", repo / "nodes")
    for host, extra in (node_extra or {}).items():
        path = repo / "nodes" / f"{host}.yaml"
        keys = {line.split(":")[0] for line in extra.splitlines()}
        kept = [line for line in path.read_text().splitlines() if line.split(":")[0] not in keys]
        path.write_text("\n".join(kept) + "\n" + extra)
    for rel, old, new in edits:
        path = repo / rel
        assert old in path.read_text(), (rel, old)
        path.write_text(path.read_text().replace(old, new))
    for args in (["init"], ["render"]):
        result = invoke(*args, "--repo", repo)
        assert result.exit_code == 0, result.stderr
    return repo


def logs(lab: Lab) -> str:
    return "\n".join(f"--- {vm.name} ---\n{vm.log()[-3000:]}" for vm in lab.vms.values())


Puller = Callable[[Vm, Path, Path], tuple[int, str]]


def bring_up(lab: Lab, lab_root: Path, repo: Path, remote: Path, puller: Puller = pull,
             said: str = "installed version 1 and restarted OpenVPN\n") -> tuple[Vm, list[Vm]]:
    nodes = {p.stem: load(f"nodes/{p.name}", p.read_bytes()).data for p in (repo / "nodes").glob("*.yaml")}
    hub_name = next(h for h, n in nodes.items() if n["role"] == "hub"
                    and "tunnel_network" not in n)
    for i, (host, node) in enumerate(sorted(nodes.items())):
        subnet = next(ipaddress.ip_network(s) for s in node["subnets"]
                      if ipaddress.ip_address(node["private_address"])
                      in ipaddress.ip_network(s))
        root = lab_root / host
        root.mkdir(mode=0o755)
        lab.add_vm(host, node.get("public_address") or f"203.0.113.{100 + i}",
                   node["private_address"], subnet.prefixlen, root)
    hub = lab.vms[hub_name]
    spokes = [vm for name, vm in lab.vms.items() if name != hub_name]
    for vm in [hub, *spokes]:  # the hub first: a spoke's health check needs its tunnel
        code, stderr = puller(vm, remote, repo)
        assert (code, stderr) == (0, said), f"{vm.name}: {code} {stderr}\n{logs(lab)}"
    return hub, spokes


def assert_matrix(lab: Lab, hub: Vm, spokes: list[Vm], tunnel: dict[str, str]) -> None:
    checks: list[tuple[Vm, str, str]] = []
    for spoke in spokes:
        checks += [(spoke, tunnel[hub.name], "spoke -> hub tunnel address"),
                   (spoke, hub.private, "spoke -> hub private address"),
                   (hub, tunnel[spoke.name], "hub -> spoke tunnel address"),
                   (hub, spoke.private, "hub -> spoke private address (iroute)")]
        checks += [(spoke, other.private, "spoke -> spoke private (client-to-client)")
                   for other in spokes if other is not spoke]
    failed = [f"{vm.name} -> {address}: {what}" for vm, address, what in checks
              if not wait_for(lambda vm=vm, a=address: vm.ping(a), 10)]
    assert failed == [], "\n".join(failed) + "\n" + logs(lab)
    for spoke in spokes:  # a spoke keeps its own VPC on its own NIC
        own = str(ipaddress.ip_address(spoke.private) + 50)
        assert spoke.route_dev(own) == "eth1"
        assert spoke.route_dev(hub.private).startswith("tun")


@dataclass
class Running:
    lab: Lab
    repo: Path
    remote: Path
    hub: Vm
    spokes: list[Vm]


@contextmanager
def running_mesh(lab_root: Path, monkeypatch: pytest.MonkeyPatch,
                 algorithm: str = "ec-p256") -> Iterator[Running]:
    """The example mesh, compiled and published, every node up from its pulled bundle."""
    require()
    monkeypatch.delenv("VPCMESH_NOW")  # real certificates for a real OpenVPN clock
    repo = compile_example(lab_root, algorithm)
    remote = git_bundles(repo / "build", lab_root / "published")
    with Lab(lab_root) as lab:
        hub, spokes = bring_up(lab, lab_root, repo, remote)
        yield Running(lab, repo, remote, hub, spokes)


def tunnel_addresses(repo: Path) -> dict[str, str]:
    return {h: str(a) for h, a in read_state(snap(repo)).addresses.items()}


class Ping:
    """`ping -i 0.1` from one VM to an address until stopped: how many replies were lost."""

    def __init__(self, vm: Vm | None, address: str, argv: tuple[str, ...] = ()) -> None:
        argv = argv or ("ip", "netns", "exec", vm.netns if vm else "", "ping", "-n", "-i",
                        "0.1", "-W", "1", address)
        self.started = time.time()
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
        self.answered: set[int] = set()
        self.sent = 0

    def stop(self) -> tuple[int, int]:
        """(sent, lost). ping stops at SIGINT without waiting for the reply to its last
        request: that one, still on its way, is neither counted sent nor lost."""
        self.proc.send_signal(signal.SIGINT)
        out, _ = self.proc.communicate(timeout=10)
        found = re.search(r"(\d+) packets transmitted, (\d+) received", out)
        assert found, out
        sent, received = int(found[1]), int(found[2])
        self.answered = {int(n) for n in re.findall(r"^\d+ bytes from .*: icmp_seq=(\d+) ",
                                                     out, re.M)}
        if sent and sent not in self.answered:
            sent -= 1
        self.sent = sent
        return sent, sent - received

    def missing(self) -> str:
        """The requests that got no answer, with about when each was sent (to read beside
        the OpenVPN logs), once stopped."""
        return ", ".join(
            f"#{n} at {dt.datetime.fromtimestamp(self.started + n / 10):%H:%M:%S.%f}"[:-5]
            for n in range(1, self.sent + 1) if n not in self.answered) or "none"


# A listener on several ports, in a VM's namespace: accepts and closes every connection.
LISTEN = """\
import selectors, socket, sys
sel = selectors.DefaultSelector()
for port in sys.argv[1:]:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", int(port)))
    s.listen(64)
    sel.register(s, selectors.EVENT_READ)
while True:
    for key, _ in sel.select():
        key.fileobj.accept()[0].close()
"""


def listen(vm: Vm, *ports: int) -> None:
    # The lab kills every process of its namespaces on exit.
    subprocess.Popen(["ip", "netns", "exec", vm.netns, sys.executable, "-c", LISTEN,
                      *map(str, ports)])


def connects(vm: Vm, address: str, port: int) -> bool:
    """A TCP connection opens within 2 s (a dropped SYN does not)."""
    return vm.exec("timeout", "2", "bash", "-c", f"exec 3<>/dev/tcp/{address}/{port}",
                   check=False).returncode == 0


def acl_counters(vm: Vm) -> dict[str, int]:
    """Packets per commented rule of the mesh's ACL table."""
    listed = json.loads(vm.exec("nft", "-j", "list", "table", "inet", "vpcmesh-example").stdout)
    return {item["rule"]["comment"]: next(e["counter"]["packets"] for e in item["rule"]["expr"]
                                          if "counter" in e)
            for item in listed["nftables"] if "comment" in item.get("rule", {})}
