"""`vpcmesh cloud`: what each VPC needs from its cloud, as a table, JSON or Terraform JSON."""

from __future__ import annotations

import json
from pathlib import Path

import click

from vpcmesh.compiler import pipeline
from vpcmesh.fsio import replace_file
from vpcmesh.planning.cloud import CloudPlan, cloud_plan
from vpcmesh.rendering.terraform import PROVIDERS, terraform


def _table(cloud: CloudPlan) -> list[str]:
    lines = []
    for vpc in cloud.vpcs:
        lines.append(f"{vpc.node} ({vpc.cloud} {vpc.region}): the mesh VM is {vpc.instance}")
        lines.append(f"  route table: {len(vpc.routes)} entries, next hop this VM")
        lines += [f"    {r.destination!s:<18} {r.why}" for r in vpc.routes]
        if vpc.rules:
            lines.append("  security group of this VM, inbound:")
            lines += [f"    {r.protocol}/{r.port:<6} from {r.source!s:<18} {r.why}"
                      for r in vpc.rules]
        lines.append(f"  source/destination check: {vpc.source_dest_check}")
        lines += [f"  note: {note}" for note in vpc.notes]
    return lines


def _json(cloud: CloudPlan) -> str:
    return json.dumps({"mesh": cloud.mesh, "vpcs": [{
        "node": v.node, "cloud": v.cloud, "region": v.region, "instance": str(v.instance),
        "routes": [{"destination": str(r.destination), "next_hop": str(r.next_hop),
                    "why": r.why} for r in v.routes],
        "ingress": [{"protocol": r.protocol, "port": r.port, "source": str(r.source),
                     "why": r.why} for r in v.rules],
        "source_dest_check": v.source_dest_check, "notes": list(v.notes)}
        for v in cloud.vpcs]}, indent=2)


def cloud(root: Path, as_json: bool, terraform_dir: Path | None) -> int:
    loaded = pipeline.load(pipeline.snapshot(root))
    plan = cloud_plan(loaded.plan)
    if terraform_dir is not None:
        for name, data in terraform(plan).items():
            replace_file(terraform_dir / name, data)
            click.echo(f"wrote {terraform_dir / name}", err=True)
        others = sorted({v.cloud for v in plan.vpcs} - set(PROVIDERS))
        if others:
            click.echo(f"no Terraform provider written for {', '.join(others)}: the table"
                       " (vpcmesh cloud) says what to set there", err=True)
        return 0
    click.echo(_json(plan) if as_json else "\n".join(_table(plan)))
    return 0
