"""mesh/state.yaml: what vpcmesh decided before and must keep (a lockfile, committed)."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from pathlib import Path

from ruamel.yaml import YAML

from vpcmesh.errors import Problem, VpcmeshError
from vpcmesh.layout import STATE_FILE
from vpcmesh.yamlio import load

HEADER = """\
# Managed by vpcmesh: commit it with your change and do not edit it by hand.
# It keeps each node's tunnel address stable as other nodes come and go.
"""
_FIX = "; restore it from git (deleting it may renumber the tunnel addresses)"


@dataclass(frozen=True)
class State:
    addresses: dict[str, IPv4Address] = field(default_factory=dict)
    dns_serial: int = 0
    dns_digest: str = ""


def read_state(root: Path) -> State:
    if not (root / STATE_FILE).exists():
        return State()
    doc = load(root, STATE_FILE)
    data = doc.data or {}
    problems = []
    addresses: dict[str, IPv4Address] = {}
    raw_addresses = data.get("addresses", {}) if isinstance(data, dict) else None
    if not isinstance(raw_addresses, dict):
        raise VpcmeshError.at(doc.at(), f"not a vpcmesh state file{_FIX}")
    for host, text in raw_addresses.items():
        try:
            addresses[host] = IPv4Address(text)
        except ValueError:
            problems.append(Problem(doc.at(["addresses", host]),
                                    f"addresses.{host}: {text!r} is not an IPv4 address{_FIX}"))
    if problems:
        raise VpcmeshError(problems)
    dns = data.get("dns", {})
    return State(addresses, int(dns.get("serial", 0)), str(dns.get("digest", "")))


def dump_state(state: State) -> bytes:
    data = {
        "addresses": {h: str(a) for h, a in sorted(state.addresses.items())},
        "dns": {"serial": state.dns_serial, "digest": state.dns_digest},
    }
    out = io.StringIO()
    out.write(HEADER)
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    yaml.dump(data, out)
    return out.getvalue().encode()
