"""`vpcmesh plan`: what a change does, node by node, without a key and without writing."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

from vpcmesh.bundle import effects, names
from vpcmesh.compiler.pipeline import load
from vpcmesh.model.layout import DNS_DIR
from vpcmesh.model.snapshot import Snapshot
from vpcmesh.pki.decisions import PkiPlan
from vpcmesh.pki.store import NodeSecret, Store
from vpcmesh.planning import acl
from vpcmesh.planning import cloud as cloud_side
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
    pems, secrets, parsed = dict(store.cert_pems), dict(store.secrets), dict(store.certs)
    for host in actions.issue:
        pems[host] = TO_ISSUE
        parsed.pop(host, None)
        secrets[host] = NodeSecret(frozenset(), "", TO_ENCRYPT)
    for host in actions.rewrap:
        secrets[host] = NodeSecret(frozenset(), "", TO_ENCRYPT)
    crl = CRL_TO_ISSUE if actions.crl else store.crl_pem
    return replace(store, cert_pems=pems, certs=parsed, secrets=secrets, crl_pem=crl)


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
    impact: str = ""  # what the change does to the running mesh, in words
    reconnects: list[str] = field(default_factory=list)  # spokes a hub asks to reconnect
    cuts_off: list[str] = field(default_factory=list)  # spokes a hub drops (removed, revoked)
    # Only the CRL changed (and the manifest with it; on a spoke, maybe its list of CAs):
    # every node gets each new CRL and reads it at its next handshake, so this changes
    # nothing the node runs.
    crl_only: bool = False


@dataclass
class Report:
    base: str
    nodes: list[NodeChange]
    issue: dict[str, str]
    revoke: dict[str, str]
    dns: list[tuple[str, str, str]]  # (op, name, value)
    cloud: list[cloud_side.CloudChange] = field(default_factory=list)
    acl: list[acl.AclChange] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"base": self.base, "nodes": [{k: v for k, v in vars(n).items()
                                              if k != "crl_only"} for n in self.nodes],
                "certificates": {"issue": self.issue, "revoke": self.revoke},
                "dns": [{"op": o, "name": n, "value": v} for o, n, v in self.dns],
                "cloud": [{"node": c.node, "add": list(c.added), "remove": list(c.removed)}
                          for c in self.cloud],
                "acl": [vars(c) for c in self.acl],
                "summary": self.summary()}

    def summary(self) -> dict[str, int]:
        return {"changed": len(self.nodes),
                "new": sum(n.change == "new" for n in self.nodes),
                "removed": sum(n.change == "removed" for n in self.nodes),
                "restarts": sum(n.restart for n in self.nodes),
                "issue": len(self.issue), "revoke": len(self.revoke), "dns": len(self.dns),
                "cloud": sum(len(c.added) + len(c.removed) for c in self.cloud),
                "acl": len(self.acl)}


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


def _node_change(host: str, change: str, files: dict[str, str], head: Preview,
                 role: str, address: str | None,
                 renumbered: frozenset[str] = frozenset()) -> NodeChange:
    """The node's change with its impact, by the rule the agent applies (bundle/effects)."""
    out = NodeChange(host, change, files, vpn_address=address)
    if change != "changed":
        return out
    if not effects.openvpn_changed(files):  # hosts, firewall rules, sysctl: applied in place
        shown = sorted(rel for rel in files if rel not in (names.MANIFEST, names.SIGNATURE))
        if effects.resolver_changed(files):
            out.impact = f"restarts its resolver only, not OpenVPN ({', '.join(shown)})"
        else:
            out.impact = f"no restart ({', '.join(shown)})" if shown else ""
        return out
    out.crl_only = all(effects.reread(rel) or effects.ca_list(rel, role)
                       or rel in (names.MANIFEST, names.SIGNATURE) for rel in files)
    if out.crl_only:
        out.impact = "no restart (a new CRL, read at its next handshake)"
        if any(effects.ca_list(rel, role) for rel in files):
            out.impact = ("no restart (a new CRL, read at its next handshake; the CAs it"
                          " trusts, read at its next start)")
        return out
    if effects.needs_restart(role, files):
        out.restart = True
        spokes = len(head.plan.spokes)
        linked = not any(rel.startswith(names.LINK_PREFIX) and op == "added"
                         for rel, op in files.items())
        if role == "hub" and len(head.plan.hubs) > 1 and linked:
            # Its agent waits until another hub carries its spokes (agent/links.py); not
            # while the mesh is getting its second hub: the spokes have no tunnel to it yet.
            out.impact = (f"hub restarts, one hub at a time: its {spokes} spoke(s) move to"
                          " another hub meanwhile")
        else:
            out.impact = (f"hub restarts: {spokes} spoke(s) reconnect" if role == "hub"
                          else "restarts its OpenVPN: only this node reconnects")
        return out
    if role != "hub" or not any(effects.ccd_spoke(rel) for rel in files):
        out.impact = "no restart (a new CRL, read at its next handshake)"
        return out
    revoked = set(head.actions.revoke)
    for rel, op in files.items():
        spoke = effects.ccd_spoke(rel)
        if spoke is None or op == "added" or rel in renumbered:
            continue
        (out.cuts_off if op == "removed" or spoke in revoked else out.reconnects).append(spoke)
    said = [f"reconnects {', '.join(out.reconnects)}"] if out.reconnects else []
    said += [f"cuts off {', '.join(out.cuts_off)}"] if out.cuts_off else []
    out.impact = "hub reloads ccd: " + ("; ".join(said) if said else "no disconnect")
    return out


def compare(base_name: str, base: Preview | None, head: Preview) -> Report:
    old = by_node(base.files) if base else {}
    new = by_node(head.files)
    # head's role wins over base's: a node that became the hub is judged as one
    roles = {n.hostname: n.role.value
             for n in [*(base.plan.nodes if base else ()), *head.plan.nodes]}
    hosts = set(roles)
    nodes = []
    for host in sorted(hosts):
        before_files, after_files = old.get(host, {}), new.get(host, {})
        files = _file_changes(before_files, after_files)
        if not files:
            continue
        # ccd files whose only change is a spoke's new certificate serial (a renewal)
        renumbered = frozenset(rel for rel, op in files.items() if op == "changed"
                               and effects.ccd_spoke(rel)
                               and effects.serial_only(before_files[rel], after_files[rel]))
        change = "new" if host not in old else "removed" if host not in new else "changed"
        address = head.plan.addresses.get(host)
        nodes.append(_node_change(host, change, files, head, roles.get(host, "spoke"),
                                  str(address) if address else None, renumbered))
    before, after = _records(base.files) if base else {}, _records(head.files)
    dns = [("+", n, after[n]) for n in sorted(set(after) - set(before))]
    dns += [("-", n, before[n]) for n in sorted(set(before) - set(after))]
    dns += [("~", n, after[n]) for n in sorted(set(after) & set(before))
            if after[n] != before[n]]
    cloud = cloud_side.compare(cloud_side.cloud_plan(base.plan) if base else None,
                               cloud_side.cloud_plan(head.plan))
    return Report(base_name, nodes, {h: str(d) for h, d in head.actions.issue.items()},
                  {h: str(d) for h, d in head.actions.revoke.items()},
                  sorted(dns, key=lambda d: (d[1], d[0])), cloud,
                  acl.changes(base.plan if base else None, head.plan))


def text(report: Report) -> list[str]:
    lines = [f"Plan against {report.base}:"]
    marks = {"new": "+", "removed": "-", "changed": "~"}
    for node in report.nodes:
        what = {"new": f"new node, tunnel address {node.vpn_address}",
                "removed": "removed", "changed": "changed"}[node.change]
        lines.append(f"  {marks[node.change]} {node.hostname}: {what}"
                     f"{'; ' + node.impact if node.impact else ''}")
        if node.change == "changed":
            lines += [f"      {marks.get(op, '~') if op != 'added' else '+'} {rel}"
                      for rel, op in node.files.items()]
    for host, why in report.issue.items():
        lines.append(f"  certificate: issue {host} ({why})")
    for host, why in report.revoke.items():
        lines.append(f"  certificate: revoke {host} ({why})")
    lines += [f"  dns: {op} {name} A {value}" for op, name, value in report.dns]
    for change in report.cloud:  # what someone must set in the clouds (vpcmesh cloud)
        lines += [f"  cloud: {change.node}'s VPC: + {item}" for item in change.added]
        lines += [f"  cloud: {change.node}'s VPC: - {item}" for item in change.removed]
    lines += [f"  acl: {change}" for change in report.acl]
    s = report.summary()
    lines.append(f"{s['changed']} node(s) change ({s['new']} new, {s['removed']} removed),"
                 f" {s['restarts']} restart(s), {s['issue']} certificate(s) to issue,"
                 f" {s['revoke']} to revoke, {s['dns']} DNS change(s), {s['cloud']} cloud-side"
                 f" change(s), {s['acl']} ACL change(s).")
    return lines
