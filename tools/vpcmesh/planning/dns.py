"""The inner DNS zone: one A record per node and per service, at its node's private address."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from ipaddress import IPv4Address

from vpcmesh.planning.addresses import Plan


@dataclass(frozen=True)
class Record:
    name: str
    fqdn: str
    address: IPv4Address
    node: str
    kind: str  # "node" or "service"
    port: int | None = None

    def as_json(self) -> dict[str, object]:
        return {"name": self.fqdn, "type": "A", "value": str(self.address), "node": self.node,
                "kind": self.kind, "port": self.port}


def records(plan: Plan) -> list[Record]:
    domain = plan.mesh.domain
    out = []
    for node in plan.nodes:
        out.append(Record(node.hostname, f"{node.hostname}.{domain}", node.private_address,
                          node.hostname, "node"))
        out.extend(Record(s.name, f"{s.name}.{domain}", node.private_address, node.hostname,
                          "service", s.port) for s in node.services)
    return sorted(out, key=lambda r: r.name)


def digest(recs: list[Record]) -> str:
    text = json.dumps([r.as_json() for r in recs], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def next_serial(previous_serial: int, previous_digest: str, current_digest: str) -> int:
    # Secondaries and caches only refresh on a higher serial; deterministic because it
    # moves only when the records do.
    if previous_serial and previous_digest == current_digest:
        return previous_serial
    return previous_serial + 1


def records_json(plan: Plan, recs: list[Record], serial: int) -> bytes:
    doc = {"domain": plan.mesh.domain, "serial": serial, "records": [r.as_json() for r in recs]}
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()
