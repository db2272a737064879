"""The mesh as a picture: clouds as groups, the hub and its spokes, each node's tunnel
address, subnets and services; optionally who is up (a `status --json`) and what a pull
request changes (`plan`). As Mermaid (GitHub and Gitea draw it in Markdown) and as
Graphviz DOT, which Debian's `dot` turns into SVG."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import groupby

from vpcmesh import process
from vpcmesh.errors import VpcmeshError
from vpcmesh.model.types import Node
from vpcmesh.planning.addresses import Plan

# Fills for a status overlay, strokes for a change: both can show at once.
UP, DOWN = "#d8f5d0", "#f8d0d0"
CHANGE = {"new": "#2a9d3a", "changed": "#e08a00", "removed": "#c03030"}


@dataclass(frozen=True)
class Overlay:
    up: Mapping[str, bool] = field(default_factory=dict)  # hostname -> connected
    changes: Mapping[str, str] = field(default_factory=dict)  # hostname -> new/changed/removed
    removed: tuple[Node, ...] = ()  # nodes the change removes, drawn from the base


def _id(hostname: str) -> str:
    return "n_" + hostname.replace("-", "_")


def _lines(plan: Plan, node: Node, overlay: Overlay) -> list[str]:
    address = plan.addresses.get(node.hostname)
    head = f"{node.hostname} ({node.role.value})"
    lines = [head, " · ".join(x for x in (str(address) if address else "",
                                          node.public_address or "") if x)]
    lines += [str(net) for net in node.subnets]
    if node.services:
        lines.append(", ".join(f"{s.name}:{s.port}" for s in node.services))
    change = overlay.changes.get(node.hostname)
    if change:
        lines.append(f"[{change}]")
    if node.hostname in overlay.up:
        lines.append("up" if overlay.up[node.hostname] else "DOWN")
    return [line for line in lines if line]


def _all(plan: Plan, overlay: Overlay) -> list[Node]:
    return sorted([*plan.nodes, *overlay.removed], key=lambda n: (n.cloud, n.hostname))


def mermaid(plan: Plan, overlay: Overlay = Overlay()) -> str:
    out = ["flowchart LR"]
    nodes = _all(plan, overlay)
    for cloud, members in groupby(nodes, key=lambda n: n.cloud):
        out.append(f'  subgraph c_{cloud.replace("-", "_")}["{cloud}"]')
        for node in members:
            label = "<br/>".join(_lines(plan, node, overlay)).replace('"', "#quot;")
            shape = ('{{"', '"}}') if node.is_hub else ('["', '"]')
            out.append(f"    {_id(node.hostname)}{shape[0]}{label}{shape[1]}")
        out.append("  end")
    for hub_name, node in _tunnels(plan, nodes):
        edge = "-.-" if node.hostname in overlay.changes and \
            overlay.changes[node.hostname] == "removed" else "---"
        out.append(f"  {_id(hub_name)} {edge} {_id(node.hostname)}")
    for name, colour in (("up", UP), ("down", DOWN)):
        out.append(f"  classDef {name} fill:{colour}")
    for name, colour in CHANGE.items():
        out.append(f"  classDef {name} stroke:{colour},stroke-width:3px")
    for node in nodes:
        up, change = overlay.up.get(node.hostname), overlay.changes.get(node.hostname)
        classes = ([] if up is None else ["up" if up else "down"]) + ([change] if change else [])
        for c in classes:
            out.append(f"  class {_id(node.hostname)} {c}")
    return "\n".join(out) + "\n"


def _dot_text(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def dot(plan: Plan, overlay: Overlay = Overlay()) -> str:
    out = [f'graph "{_dot_text(plan.mesh.name)}" {{',
           "  rankdir=LR; fontname=Helvetica;",
           '  node [shape=box, style="rounded,filled", fillcolor=white, fontname=Helvetica,'
           " fontsize=10];",
           f'  label="mesh {_dot_text(plan.mesh.name)} ({_dot_text(plan.mesh.domain)})";']
    nodes = _all(plan, overlay)
    for cloud, members in groupby(nodes, key=lambda n: n.cloud):
        out.append(f'  subgraph "cluster_{_dot_text(cloud)}" {{')
        out.append(f'    label="{_dot_text(cloud)}"; style=rounded; color=gray60;')
        for node in members:
            label = "\\n".join(_dot_text(line) for line in _lines(plan, node, overlay))
            attrs = [f'label="{label}"']
            if node.is_hub:
                attrs.append("peripheries=2")
            if node.hostname in overlay.up:
                attrs.append(f'fillcolor="{UP if overlay.up[node.hostname] else DOWN}"')
            change = overlay.changes.get(node.hostname)
            if change:
                attrs.append(f'color="{CHANGE[change]}", penwidth=3')
            out.append(f"    {_id(node.hostname)} [{', '.join(attrs)}];")
        out.append("  }")
    for hub_name, node in _tunnels(plan, nodes):
        style = ' [style=dashed]' if overlay.changes.get(node.hostname) == "removed" else ""
        out.append(f"  {_id(hub_name)} -- {_id(node.hostname)}{style};")
    out.append("}")
    return "\n".join(out) + "\n"


def _tunnels(plan: Plan, nodes: Iterable[Node]) -> list[tuple[str, Node]]:
    """Every tunnel, as (hub, the other end): each spoke to each hub, then between hubs."""
    hubs = [h.hostname for h in plan.hubs]
    listed = list(nodes)
    out = [(hub, node) for node in listed if not node.is_hub for hub in hubs]
    return out + [(hub, node) for i, hub in enumerate(hubs) for node in listed
                  if node.hostname in hubs[i + 1:]]


def svg(dot_text: str) -> bytes:
    """Graphviz's `dot`, the one place it runs."""
    done = process.run(["dot", "-Tsvg"], stdin=dot_text.encode(), timeout=60)
    if not done.ok:
        raise VpcmeshError.at("dot", f"failed: {done.err_text()}")
    return done.stdout
