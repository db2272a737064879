"""The mesh as published, for a hub's fleet.json (bundle/fleet.py)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import replace

from vpcmesh.bundle.fleet import Fleet, FleetNode, FleetService, config_digest
from vpcmesh.bundle.manifest import FileEntry, format_time
from vpcmesh.model.types import Node
from vpcmesh.pki.store import Store
from vpcmesh.planning.addresses import Plan


def _node(plan: Plan, node: Node) -> FleetNode:
    return FleetNode(node.hostname, node.role.value, node.cloud, node.region,
                     str(plan.addresses[node.hostname]), node.public_address,
                     tuple(str(net) for net in node.subnets),
                     tuple(FleetService(s.name, s.port) for s in node.services))


def topology(plan: Plan) -> Fleet:
    return Fleet(plan.mesh.name, plan.mesh.domain,
                 tuple(str(net) for net in plan.mesh.vpn.address_space),
                 tuple(_node(plan, n) for n in plan.nodes))


def _time(when: dt.datetime | None) -> str | None:
    return format_time(when) if when is not None else None


def published(plan: Plan, store: Store, openvpn: Mapping[str, Mapping[str, bytes]]) -> Fleet:
    """`openvpn`: every node's public OpenVPN files, by hostname."""
    nodes = []
    for n in plan.nodes:
        cert = store.certs.get(n.hostname)
        entries = {rel: FileEntry.of(data) for rel, data in openvpn[n.hostname].items()}
        nodes.append(replace(_node(plan, n), config=config_digest(entries),
                             settled=config_digest(entries, n.role.value), cert_expires=_time(
            cert.not_valid_after_utc if cert is not None else None)))
    crl = store.crl.next_update_utc if store.crl is not None else None
    base = topology(plan)
    return Fleet(base.mesh, base.domain, base.address_space, tuple(nodes), _time(crl))
