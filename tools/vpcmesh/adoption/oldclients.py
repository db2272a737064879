"""The old server's per-client files: ccd/<name> (iroutes, a fixed address) and ipp.txt (the
addresses OpenVPN handed out and keeps)."""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

from vpcmesh.adoption.easyrsa import read_bytes
from vpcmesh.adoption.oldconf import network
from vpcmesh.adoption.ovpnconf import parse
from vpcmesh.errors import Location, Problem, Severity, VpcmeshError


@dataclass(frozen=True)
class OldClient:
    name: str
    iroutes: tuple[tuple[IPv4Network, Location], ...]
    address: tuple[IPv4Address, Location] | None
    disabled: bool
    at: Location


def _client(path: Path, problems: list[Problem]) -> OldClient:
    iroutes, address, disabled = [], None, False
    for d in parse(read_bytes(path), str(path)):
        try:
            if d.name == "iroute":
                iroutes.append((network(d.args, d.at), d.at))
            elif d.name == "ifconfig-push" and d.args:
                # subnet: ADDRESS NETMASK; net30: ADDRESS PEER. The client's address either way.
                address = (IPv4Address(d.args[0]), d.at)
            elif d.name == "disable":
                disabled = True
            elif d.name == "push" and d.args and d.args[0].split()[:1] == ["route"]:
                problems.append(Problem(d.at, "a route pushed to this client only is not"
                                        " carried over: the hub pushes every subnet to every"
                                        " node", Severity.WARNING))
            else:
                problems.append(Problem(d.at, f"'{d.name}' is not carried over: a ccd file of"
                                        " vpcmesh holds the address and iroutes only",
                                        Severity.WARNING))
        except ValueError:
            problems.append(Problem(d.at, "not an IPv4 address"))
        except VpcmeshError as exc:
            problems.extend(exc.problems)
    return OldClient(path.name, tuple(iroutes), address, disabled, Location(str(path)))


def read_ccd(folder: Path | None, problems: list[Problem]) -> dict[str, OldClient]:
    if folder is None:
        return {}
    if not folder.is_dir():
        problems.append(Problem(Location(str(folder)), "not a folder: give the ccd folder with"
                                " --ccd DIR"))
        return {}
    return {p.name: _client(p, problems) for p in sorted(folder.iterdir())
            if p.is_file() and not p.name.startswith(".")}


def read_ipp(path: Path | None, net30: bool,
             problems: list[Problem]) -> dict[str, tuple[IPv4Address, Location]]:
    """`name,address[,ipv6]` lines. Under topology net30 the address is the base of the
    client's /30, and the client has base+2 (OpenVPN's pool.c)."""
    if path is None:
        return {}
    if not path.is_file():
        problems.append(Problem(Location(str(path)), "missing: clients without a fixed"
                                " address in ccd/ get new tunnel addresses; give it with"
                                " --ipp FILE to keep theirs", Severity.WARNING))
        return {}
    out = {}
    for n, line in enumerate(read_bytes(path).decode(errors="replace").splitlines(), 1):
        at = Location(str(path), n, 1)
        name, _, rest = line.strip().partition(",")
        if not name:
            continue
        try:
            address = IPv4Address(rest.split(",")[0])
        except ValueError:
            problems.append(Problem(at, "not `name,address`: left out", Severity.WARNING))
            continue
        out[name] = (address + 2 if net30 else address, at)
    return out
