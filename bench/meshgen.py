"""Synthetic meshes for the benchmark: one hub, spokes with one to three subnets, some
services, each node with its own age identity. Seeded, so every run builds the same mesh."""

from __future__ import annotations

import random
from pathlib import Path

from vpcmesh.authoring.init import NewMesh, init
from vpcmesh.secrets import agekeys

CLOUDS = ("aliyun", "tencent", "huawei", "ucloud", "baidu")


def identity(folder: Path, name: str) -> tuple[Path, str]:
    secret, recipient = agekeys.new_identity()
    path = folder / f"{name}.agekey"
    path.write_text(f"# public key: {recipient}\n{secret}\n")
    path.chmod(0o600)
    return path, recipient


def node_yaml(index: int, rng: random.Random, recipient: str) -> tuple[str, str]:
    hub = index == 0
    name = "hub-0" if hub else f"spoke-{index}"
    subnets = [f"172.{16 + (index >> 8) % 16}.{index % 256}.0/24"]
    subnets += [f"10.{(index * 3 + k) >> 8 & 255}.{(index * 3 + k) % 256}.0/24"
                for k in range(rng.randint(0, 2 if not hub else 0))]
    lines = [f"hostname: {name}", f"cloud: {CLOUDS[index % len(CLOUDS)]}",
             "region: cn-hangzhou", f"role: {'hub' if hub else 'spoke'}"]
    if hub:
        lines.append("public_address: 203.0.113.10")
    lines += [f"private_address: {subnets[0][:-4]}10", "subnets:"]
    lines += [f"  - {s}" for s in subnets]
    lines.append(f"age_recipient: {recipient}")
    if rng.random() < 0.2:
        lines += ["services:", f"  - {{name: svc-{index}, port: {8000 + index % 1000}}}"]
    return name, "\n".join(lines) + "\n"


def generate(folder: Path, nodes: int, admin_recipient: str, keys: Path) -> Path:
    repo = folder / f"mesh-{nodes}"
    init(repo, NewMesh("bench", "inner.bench.example", "10.200.0.0/16", (admin_recipient,)))
    mesh = repo / "mesh/mesh.yaml"
    mesh.write_text(mesh.read_text().replace("max_clients: 100", "max_clients: 5000"))
    rng = random.Random(nodes)
    for index in range(nodes):
        _, recipient = identity(keys, f"n{index}")
        name, text = node_yaml(index, rng, recipient)
        (repo / "nodes" / f"{name}.yaml").write_text(text)
    return repo
