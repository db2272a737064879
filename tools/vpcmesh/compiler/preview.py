"""`vpcmesh plan`: what a change does, node by node, without a key and without writing."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

from vpcmesh.compiler.pipeline import load
from vpcmesh.model.layout import DNS_DIR
from vpcmesh.model.snapshot import Snapshot
from vpcmesh.pki.decisions import PkiPlan
from vpcmesh.pki.store import NodeSecret, Store
from vpcmesh.planning.addresses import Plan
from vpcmesh.rendering.render import FileMap, by_node, render_build

TO_ISSUE = b"(a certificate to be issued)\n"
TO_ENCRYPT = b"(a key to be encrypted)\n"
CRL_TO_ISSUE = b"(a CRL to be issued)\n"


@dataclass(frozen=True)
class Preview:
    plan: Plan
    actions: PkiPlan
    files: FileMap


def _with_placeholders(store: Store, actions: PkiPlan) -> Store:
    # What render will issue shows as a placeholder: the plan needs no admin key.
    certs, secrets = dict(store.cert_pems), dict(store.secrets)
    for host in actions.issue:
        certs[host] = TO_ISSUE
        secrets[host] = NodeSecret(frozenset(), "", TO_ENCRYPT)
    for host in actions.rewrap:
        secrets[host] = NodeSecret(frozenset(), "", TO_ENCRYPT)
    crl = CRL_TO_ISSUE if actions.crl else store.crl_pem
    return replace(store, cert_pems=certs, secrets=secrets, crl_pem=crl)


def preview(snap: Snapshot) -> Preview:
    loaded = load(snap)
    store = _with_placeholders(loaded.store, loaded.actions)
    files, _ = render_build(loaded.plan, loaded.previous, store)
    return Preview(loaded.plan, loaded.actions, files)


@dataclass
class NodeChange:
    hostname: str
    change: str  # "new", "removed", "changed"
    files: dict[str, str] = field(default_factory=dict)  # path -> "added"/"removed"/"changed"
    restart: bool = False
    vpn_address: str | None = None


@dataclass
class Report:
    base: str
    nodes: list[NodeChange]
    issue: dict[str, str]
    revoke: dict[str, str]
    dns: list[tuple[str, str, str]]  # (op, name, value)

    def as_json(self) -> dict[str, Any]:
        return {"base": self.base, "nodes": [vars(n) for n in self.nodes],
                "certificates": {"issue": self.issue, "revoke": self.revoke},
                "dns": [{"op": o, "name": n, "value": v} for o, n, v in self.dns],
                "summary": self.summary()}

    def summary(self) -> dict[str, int]:
        return {"changed": len(self.nodes),
                "new": sum(n.change == "new" for n in self.nodes),
                "removed": sum(n.change == "removed" for n in self.nodes),
                "restarts": sum(n.restart for n in self.nodes),
                "issue": len(self.issue), "revoke": len(self.revoke), "dns": len(self.dns)}


def _records(files: FileMap) -> dict[str, str]:
    data = files.get(f"{DNS_DIR}/records.json")
    if data is None:
        return {}
    return {r["name"]: r["value"] for r in json.loads(data)["records"]}


def _file_changes(old: FileMap, new: FileMap) -> dict[str, str]:
    out = {}
    for rel in sorted(set(old) | set(new)):
        if rel not in old:
            out[rel] = "added"
        elif rel not in new:
            out[rel] = "removed"
        elif old[rel] != new[rel]:
            out[rel] = "changed"
    return out


def compare(base_name: str, base: Preview | None, head: Preview) -> Report:
    old = by_node(base.files) if base else {}
    new = by_node(head.files)
    hosts = {n.hostname for n in head.plan.nodes} | (
        {n.hostname for n in base.plan.nodes} if base else set())
    nodes = []
    for host in sorted(hosts):
        files = _file_changes(old.get(host, {}), new.get(host, {}))
        if not files:
            continue
        change = "new" if host not in old else "removed" if host not in new else "changed"
        address = head.plan.addresses.get(host)
        nodes.append(NodeChange(host, change, files,
                                restart=change == "changed" and any(
                                    r.startswith("openvpn/") for r in files),
                                vpn_address=str(address) if address else None))
    before, after = _records(base.files) if base else {}, _records(head.files)
    dns = [("+", n, after[n]) for n in sorted(set(after) - set(before))]
    dns += [("-", n, before[n]) for n in sorted(set(before) - set(after))]
    dns += [("~", n, after[n]) for n in sorted(set(after) & set(before))
            if after[n] != before[n]]
    return Report(base_name, nodes, {h: str(d) for h, d in head.actions.issue.items()},
                  {h: str(d) for h, d in head.actions.revoke.items()},
                  sorted(dns, key=lambda d: (d[1], d[0])))


def text(report: Report) -> list[str]:
    lines = [f"Plan against {report.base}:"]
    marks = {"new": "+", "removed": "-", "changed": "~"}
    for node in report.nodes:
        what = {"new": f"new node, tunnel address {node.vpn_address}",
                "removed": "removed", "changed": "changed"}[node.change]
        lines.append(f"  {marks[node.change]} {node.hostname}: {what}"
                     f"{'; restarts OpenVPN' if node.restart else ''}")
        if node.change == "changed":
            lines += [f"      {marks.get(op, '~') if op != 'added' else '+'} {rel}"
                      for rel, op in node.files.items()]
    for host, why in report.issue.items():
        lines.append(f"  certificate: issue {host} ({why})")
    for host, why in report.revoke.items():
        lines.append(f"  certificate: revoke {host} ({why})")
    lines += [f"  dns: {op} {name} A {value}" for op, name, value in report.dns]
    s = report.summary()
    lines.append(f"{s['changed']} node(s) change ({s['new']} new, {s['removed']} removed),"
                 f" {s['restarts']} restart(s), {s['issue']} certificate(s) to issue,"
                 f" {s['revoke']} to revoke, {s['dns']} DNS change(s).")
    return lines
