"""The cloud side as Terraform JSON (`vpcmesh cloud --terraform DIR`), one file per provider:
route entries and security-group rules, with a variable for every ID only the cloud knows
(route table, instance, security group, VPC). Arguments follow each provider's documented
resources: alicloud_route_entry, alicloud_security_group_rule; tencentcloud_route_table_entry,
tencentcloud_security_group_rule; huaweicloud_vpc_route, huaweicloud_networking_secgroup_rule.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from vpcmesh.planning.cloud import CloudPlan, IngressRule, RouteEntry, VpcSide

PROVIDERS = {"aliyun": "alicloud", "tencent": "tencentcloud", "huawei": "huaweicloud"}
Block = dict[str, Any]


def _name(*parts: object) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", "_".join(str(p) for p in parts))


def _var(vpc: VpcSide, what: str) -> str:
    return f"${{var.{_name(vpc.node, what)}}}"


def _alicloud_route(vpc: VpcSide, r: RouteEntry) -> tuple[str, Block]:
    return "alicloud_route_entry", {
        "route_table_id": _var(vpc, "route_table_id"), "destination_cidrblock": str(r.destination),
        "nexthop_type": "Instance", "nexthop_id": _var(vpc, "instance_id")}


def _alicloud_rule(vpc: VpcSide, r: IngressRule) -> tuple[str, Block]:
    return "alicloud_security_group_rule", {
        "security_group_id": _var(vpc, "security_group_id"), "type": "ingress",
        "ip_protocol": r.protocol, "nic_type": "intranet", "policy": "accept",
        "port_range": f"{r.port}/{r.port}", "priority": 1, "cidr_ip": str(r.source),
        "description": r.why[:512]}


def _tencent_route(vpc: VpcSide, r: RouteEntry) -> tuple[str, Block]:
    return "tencentcloud_route_table_entry", {
        "route_table_id": _var(vpc, "route_table_id"), "destination_cidr_block": str(r.destination),
        "next_type": "NORMAL_CVM", "next_hub": str(r.next_hop), "description": r.why}


def _tencent_rule(vpc: VpcSide, r: IngressRule) -> tuple[str, Block]:
    return "tencentcloud_security_group_rule", {
        "security_group_id": _var(vpc, "security_group_id"), "type": "ingress",
        "cidr_ip": str(r.source), "ip_protocol": r.protocol, "port_range": str(r.port),
        "policy": "accept", "description": r.why}


def _huawei_route(vpc: VpcSide, r: RouteEntry) -> tuple[str, Block]:
    return "huaweicloud_vpc_route", {
        "vpc_id": _var(vpc, "vpc_id"), "destination": str(r.destination), "type": "ecs",
        "nexthop": _var(vpc, "instance_id"), "description": r.why}


def _huawei_rule(vpc: VpcSide, r: IngressRule) -> tuple[str, Block]:
    return "huaweicloud_networking_secgroup_rule", {
        "security_group_id": _var(vpc, "security_group_id"), "direction": "ingress",
        "ethertype": "IPv4", "protocol": r.protocol, "port_range_min": r.port,
        "port_range_max": r.port, "remote_ip_prefix": str(r.source), "description": r.why}


_WRITERS: dict[str, tuple[Callable[[VpcSide, RouteEntry], tuple[str, Block]],
                          Callable[[VpcSide, IngressRule], tuple[str, Block]], tuple[str, ...]]] = {
    "alicloud": (_alicloud_route, _alicloud_rule,
                 ("route_table_id", "instance_id", "security_group_id")),
    "tencentcloud": (_tencent_route, _tencent_rule, ("route_table_id", "security_group_id")),
    "huaweicloud": (_huawei_route, _huawei_rule, ("vpc_id", "instance_id", "security_group_id")),
}


def terraform(cloud: CloudPlan) -> dict[str, bytes]:
    """`<provider>.tf.json` for each provider the mesh's clouds use; deterministic."""
    out: dict[str, Block] = {}
    for vpc in cloud.vpcs:
        provider = PROVIDERS.get(vpc.cloud)
        if provider is None:
            continue
        route, rule, needs = _WRITERS[provider]
        doc = out.setdefault(provider, {"variable": {}, "resource": {}})
        for what in needs:
            doc["variable"][_name(vpc.node, what)] = {
                "type": "string", "description": f"the {what.replace('_', ' ')} of"
                                                 f" {vpc.node}'s VPC ({vpc.region})"}
        for entry in vpc.routes:
            kind, body = route(vpc, entry)
            doc["resource"].setdefault(kind, {})[_name(vpc.node, entry.destination)] = body
        for item in vpc.rules:
            kind, body = rule(vpc, item)
            key = _name(vpc.node, item.protocol, item.port, item.source)
            doc["resource"].setdefault(kind, {})[key] = body
    for doc in out.values():  # a variable nothing refers to would be asked for in vain
        used = set(re.findall(r"\$\{var\.([A-Za-z0-9_-]+)\}", json.dumps(doc["resource"])))
        doc["variable"] = {k: v for k, v in doc["variable"].items() if k in used}
    return {f"{p}.tf.json": (json.dumps(d, indent=2, sort_keys=True) + "\n").encode()
            for p, d in sorted(out.items())}
