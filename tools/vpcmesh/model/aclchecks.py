"""Checks of the service ACLs (README, "Least privilege"): every allow entry names a node,
a group some node belongs to, or a network; one port of a node has one allow list."""

from __future__ import annotations

from ipaddress import IPv4Network

from vpcmesh.errors import Problem, Severity
from vpcmesh.model.types import AclDefault, Mesh, Node

NODE, GROUP = "node:", "group:"


def check_acls(mesh: Mesh | None, nodes: list[Node]) -> list[Problem]:
    hosts = {n.hostname for n in nodes}
    groups = {g for n in nodes for g in n.groups}
    problems: list[Problem] = []
    for node in nodes:
        ports: dict[tuple[str, int], int] = {}
        for i, service in enumerate(node.services):
            for j, entry in enumerate(service.allow):
                where = node.doc.at(["services", i, "allow", j])
                problem = _entry_problem(entry, hosts, groups)
                if problem:
                    problems.append(Problem(where, problem))
            first = ports.setdefault((service.proto, service.port), i)
            if first != i and node.services[first].allow != service.allow:
                other = node.services[first].name
                problems.append(Problem(
                    node.doc.at(["services", i, "allow"]),
                    f"service '{service.name}' is {service.proto}/{service.port} like"
                    f" '{other}' on this node, with another allow list; one port has one"
                    " list: give both the same allow"))
    if mesh is not None and mesh.acl_default is AclDefault.DENY and \
            not any(n.services for n in nodes):
        problems.append(Problem(mesh.doc.at(["acl", "default"]),
                                "acl.default is deny and no node declares a service: nothing"
                                " but ping crosses the mesh; add services to the node files",
                                Severity.WARNING))
    return problems


def _entry_problem(entry: str, hosts: set[str], groups: set[str]) -> str | None:
    if entry.startswith(NODE):
        name = entry.removeprefix(NODE)
        return None if name in hosts else (f"allow: no node '{name}' in nodes/; write an"
                                           " existing hostname")
    if entry.startswith(GROUP):
        name = entry.removeprefix(GROUP)
        return None if name in groups else (f"allow: no node is in group '{name}'; add it"
                                            " to a node's groups, or fix the name")
    try:
        IPv4Network(entry)
    except ValueError as exc:
        try:
            net = IPv4Network(entry, strict=False)
        except ValueError:
            return f"allow: {entry!r} is not a network ({exc}); write it as 10.1.2.0/24"
        host = entry.partition("/")[0]
        return f"allow: {entry} has host bits set; write {net} (or {host}/32 for one host)"
    return None
