"""The bundle's service ACLs (README, "Least privilege"): an nftables table of the mesh's
own, loaded with `nft -f` as one transaction that replaces it and touches no other table.

The agent checks every line against the grammar the compiler writes (the file is signed;
this keeps a mistake from becoming an arbitrary nft command, such as a flush of the whole
ruleset), and loads it only when the table is missing or the file changed: loading resets
the table's counters, which say what the ACLs dropped."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from vpcmesh.agent import system
from vpcmesh.bundle import names
from vpcmesh.errors import VpcmeshError

_SET = r"\{ [0-9./, ]+ \}"
_PROTO = r"(tcp|udp|\{ tcp, udp \})"
_COMMENT = r'( comment "[a-z0-9 .:-]+")?'
_RULE = (rf"(ct original )?ip daddr {_SET}( meta l4proto {_PROTO})?"
         rf"( ct original proto-dst \d+| th dport \d+)?( ip saddr {_SET})?( counter)?"
         rf" (accept|drop){_COMMENT}")


def _grammar(table: str) -> re.Pattern[str]:
    name = re.escape(table)
    return re.compile("|".join([
        rf"table inet {name}", rf"delete table inet {name}", rf"table inet {name} \{{", r"\}",
        r"chain (input|forward|mesh) \{",
        r"type filter hook (input|forward) priority filter - 10; policy accept;",
        r'iifname "tun\*" jump mesh', r"ct state established,related accept",
        r"meta l4proto icmp accept", rf"counter drop{_COMMENT}", _RULE]))


def check(text: str, mesh: str, display: str) -> str:
    """The file's text, once every line is one the compiler writes."""
    grammar = _grammar(names.acl_table(mesh))
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if stripped and not stripped.startswith("#") and not grammar.fullmatch(stripped):
            raise VpcmeshError.at(f"{display}:{number}", f"not a service ACL line vpcmesh"
                                                         f" writes: {stripped!r}; refusing it")
    return text


@dataclass(frozen=True)
class Loaded:
    table: str
    changed: bool  # loaded now (or the table removed), rather than already in place
    rules: bool  # the mesh has service ACLs here


def _mark(state_dir: Path, mesh: str) -> Path:
    return state_dir / f"acl-{mesh}.sha256"


def ensure(mesh: str, text: str | None, state_dir: Path) -> Loaded:
    """Make the mesh's table hold `text` (None: no table). Raises when nft is missing or
    refuses: a node must not look protected when it is not."""
    table = names.acl_table(mesh)
    mark = _mark(state_dir, mesh)
    if text is None:
        # Every pull of every node comes here: without a mark nothing was loaded, so no nft
        # call. (The table is loaded with its mark, by the agent or after it at boot.)
        return Loaded(table, mark.exists() and remove(mesh, state_dir), False)
    if not system.has_nft():
        raise VpcmeshError.at("nft", "this mesh has service ACLs, and nft is not installed;"
                                     " install nftables (apt install nftables) and pull again")
    digest = hashlib.sha256(text.encode()).hexdigest()
    if system.nft_has_table("inet", table) and mark.exists() and \
            mark.read_text().strip() == digest:
        return Loaded(table, False, True)
    system.nft_script(text)
    mark.parent.mkdir(parents=True, exist_ok=True)
    mark.write_text(digest + "\n")
    return Loaded(table, True, True)


def counted(mesh: str) -> tuple[int, int] | None:
    """The loaded table's rules and the packets its drop rules dropped, or None when it is
    not loaded."""
    listing = system.nft_table("inet", names.acl_table(mesh))
    items = listing.get("nftables", []) if isinstance(listing, dict) else None
    if items is None:
        return None
    rules = [i["rule"] for i in items if isinstance(i, dict) and isinstance(i.get("rule"), dict)]
    dropped = 0
    for rule in rules:
        exprs = [e for e in rule.get("expr", []) if isinstance(e, dict)]
        if any("drop" in e for e in exprs):  # a verdict reads {"drop": null}
            dropped += sum(int(e["counter"].get("packets", 0)) for e in exprs if "counter" in e)
    return len(rules), dropped


def remove(mesh: str, state_dir: Path) -> bool:
    """Delete the mesh's table, if there is one; whether there was."""
    _mark(state_dir, mesh).unlink(missing_ok=True)
    table = names.acl_table(mesh)
    if not system.has_nft() or not system.nft_has_table("inet", table):
        return False
    system.nft_script(f"delete table inet {table}\n")
    return True
