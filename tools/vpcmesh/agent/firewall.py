"""The bundle's forwarding rules, put first in Docker's DOCKER-USER chain.

Docker sets the FORWARD policy to DROP (in iptables-nft's `ip filter` table), which drops
every packet between the tunnel and the VPC. An accept in a table of our own would not help:
a packet must pass every base chain of the hook. DOCKER-USER is where Docker says rules of
one's own go, and it keeps them across its restarts. The agent applies the rules at every
pull, so a Docker that starts after OpenVPN (at boot) is caught up within one timer period.

Each rule carries the comment `vpcmesh MESH DIGEST`: the agent changes nothing while the
chain holds exactly the current rules, and removes only its own."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from vpcmesh.agent import system
from vpcmesh.errors import VpcmeshError

DOCKER = ("ip", "filter", "DOCKER-USER")
# The only rules a bundle may carry (it is signed; this keeps a mistake from becoming an
# arbitrary nft command, or an accept of everything): a tunnel on one side at least, one
# address prefix at most, counter, accept.
_RULE = re.compile(r'^(iifname "tun\*" (oifname "tun\*" )?|oifname "tun\*" )'
                   r"(ip [sd]addr \d{1,3}(\.\d{1,3}){3}/\d{1,2} )?counter accept$")


@dataclass(frozen=True)
class Applied:
    chain: str | None  # where the rules are, or None: no DOCKER-USER chain (no Docker)
    changed: bool


def rules_of(text: str, display: str) -> list[str]:
    rules = [line.strip() for line in text.splitlines()
             if line.strip() and not line.lstrip().startswith("#")]
    bad = [rule for rule in rules if not _RULE.match(rule)]
    if bad:
        raise VpcmeshError.at(display, f"not a forwarding rule vpcmesh writes: {bad[0]!r};"
                                       " refusing it")
    return rules


def _prefix(mesh: str) -> str:
    return f"vpcmesh {mesh}"


def _ours(ruleset: Any, mesh: str) -> list[dict[str, Any]]:
    items = ruleset.get("nftables", []) if isinstance(ruleset, dict) else []
    found = [i["rule"] for i in items if isinstance(i, dict) and isinstance(i.get("rule"), dict)]
    prefix = _prefix(mesh)
    return [r for r in found if str(r.get("comment", "")).split(" ")[:2] == prefix.split(" ")]


def _has_docker_chain(ruleset: Any) -> bool:
    items = ruleset.get("nftables", []) if isinstance(ruleset, dict) else []
    return any(isinstance(i, dict) and isinstance(i.get("chain"), dict)
               and (i["chain"].get("family"), i["chain"].get("table"),
                    i["chain"].get("name")) == DOCKER for i in items)


def _deletes(rules: list[dict[str, Any]]) -> list[str]:
    return [f"delete rule {r['family']} {r['table']} {r['chain']} handle {r['handle']}"
            for r in rules]


def apply(mesh: str, rules: list[str]) -> Applied:
    """Make DOCKER-USER hold exactly these rules of this mesh, first; raises when nft
    cannot read or change the ruleset."""
    ruleset = system.nft_ruleset()
    if ruleset is None:
        raise VpcmeshError.at("nft", "cannot read the ruleset (is nftables installed?); the"
                                     " forwarding rules are not applied")
    digest = hashlib.sha256("\n".join(rules).encode()).hexdigest()[:12]
    comment = f"{_prefix(mesh)} {digest}"
    ours = _ours(ruleset, mesh)
    if not _has_docker_chain(ruleset):
        if ours:
            system.nft_script("\n".join(_deletes(ours)) + "\n")
        return Applied(None, bool(ours))
    current = [r for r in ours if (r.get("family"), r.get("table"), r.get("chain")) == DOCKER]
    if len(current) == len(ours) == len(rules) and all(
            r.get("comment") == comment for r in current):
        return Applied(" ".join(DOCKER), False)
    family, table, chain = DOCKER
    script = _deletes(ours) + [f'insert rule {family} {table} {chain} {rule} comment'
                               f' "{comment}"' for rule in reversed(rules)]
    system.nft_script("\n".join(script) + "\n")
    return Applied(" ".join(DOCKER), True)


def remove(mesh: str) -> int:
    """Delete this mesh's rules wherever they are; how many there were."""
    ruleset = system.nft_ruleset()
    ours = _ours(ruleset, mesh) if ruleset is not None else []
    if ours:
        system.nft_script("\n".join(_deletes(ours)) + "\n")
    return len(ours)
