"""The runbook's connectivity matrix over real OpenVPN tunnels between network namespaces,
each node configured only from its own bundle and its own age key."""

from __future__ import annotations

import ipaddress
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509

from vpcmesh import sops
from vpcmesh.pki import ALGORITHMS, algorithm_of
from vpcmesh.state import read_state
from vpcmesh.yamlio import load

from conftest import KEYS, ROOT, invoke
from netlab import Lab, Vm, require, wait_for


@pytest.fixture
def lab_root() -> Iterator[Path]:
    # OpenVPN re-reads crl.pem and ccd/ after dropping to nobody, so the directories must
    # be world-readable as /etc/openvpn is on a VM (pytest's tmp_path is 0700).
    root = Path(tempfile.mkdtemp(prefix="vpcmesh-lab-"))
    root.chmod(0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)


def install_bundle(bundle: Path, host: str, is_hub: bool, root: Path) -> Path:
    """What a VM does with its bundle: public files as they are, secrets decrypted with its
    own age key into 0600 files."""
    workdir = root / host / "etc/openvpn" / ("server" if is_hub else "client")
    shutil.copytree(bundle / "openvpn", workdir)
    for path in [workdir, *workdir.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    for parent in workdir.relative_to(root).parents:
        (root / parent).chmod(0o755)
    opened = sops.decrypt(bundle / "secrets.sops.yaml", f"{host}/secrets.sops.yaml",
                          age_key_file=KEYS / f"{host}.agekey")
    for name, content in opened["files"].items():
        fd = os.open(workdir / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(content)
    return workdir


def compile_example(root: Path, algorithm: str = "ec-p256") -> Path:
    """The example mesh with a fresh PKI, so the test never depends on today's date."""
    repo = root / "repo"
    (repo / "mesh").mkdir(parents=True)
    text = (ROOT / "mesh/mesh.yaml").read_text()
    (repo / "mesh/mesh.yaml").write_text(text.replace("algorithm: ec-p256",
                                                      f"algorithm: {algorithm}"))
    shutil.copytree(ROOT / "nodes", repo / "nodes")
    for args in (["init"], ["render"]):
        result = invoke(*args, "--repo", repo)
        assert result.exit_code == 0, result.stderr
    return repo


def _logs(lab: Lab) -> str:
    return "\n".join(f"--- {vm.name} ---\n{vm.log()[-3000:]}" for vm in lab.vms.values())


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_runbook_ping_matrix(lab_root: Path, admin_key: Path, algorithm: str,
                             monkeypatch: pytest.MonkeyPatch) -> None:
    require()
    monkeypatch.delenv("VPCMESH_NOW")  # real certificates for a real OpenVPN clock
    repo = compile_example(lab_root, algorithm)
    for cert in [repo / "mesh/pki/ca.crt", *(repo / "mesh/pki/issued").glob("*.crt")]:
        public = x509.load_pem_x509_certificate(cert.read_bytes()).public_key()
        assert algorithm_of(public) == algorithm
    tunnel = {h: str(a) for h, a in read_state(repo).addresses.items()}
    nodes = {p.stem: load(repo, f"nodes/{p.name}").data for p in (repo / "nodes").glob("*.yaml")}
    hub_name = next(h for h, n in nodes.items() if n["role"] == "hub")
    with Lab(lab_root) as lab:
        for i, (host, node) in enumerate(sorted(nodes.items())):
            is_hub = host == hub_name
            workdir = install_bundle(repo / "build" / host, host, is_hub, lab_root)
            subnet = next(ipaddress.ip_network(s) for s in node["subnets"]
                          if ipaddress.ip_address(node["private_address"])
                          in ipaddress.ip_network(s))
            lab.add_vm(host, node["public_address"] if is_hub else f"203.0.113.{100 + i}",
                       node["private_address"], subnet.prefixlen, workdir)
        hub = lab.vms[hub_name]
        spokes = [vm for name, vm in lab.vms.items() if name != hub_name]
        hub.start_openvpn("example.conf")
        for spoke in spokes:
            spoke.start_openvpn("example.conf")
        up = [s.name for s in spokes if wait_for(lambda s=s: s.ping(tunnel[hub_name]), 40)]
        assert up == [s.name for s in spokes], _logs(lab)

        checks: list[tuple[Vm, str, str]] = []
        for spoke in spokes:
            checks += [(spoke, tunnel[hub_name], "spoke -> hub tunnel address"),
                       (spoke, hub.private, "spoke -> hub private address"),
                       (hub, tunnel[spoke.name], "hub -> spoke tunnel address"),
                       (hub, spoke.private, "hub -> spoke private address (iroute)")]
            checks += [(spoke, other.private, "spoke -> spoke private (client-to-client)")
                       for other in spokes if other is not spoke]
        failed = [f"{vm.name} -> {address}: {what}" for vm, address, what in checks
                  if not wait_for(lambda vm=vm, a=address: vm.ping(a), 10)]
        assert failed == [], "\n".join(failed) + "\n" + _logs(lab)

        for spoke in spokes:  # push-remove: a spoke keeps its own VPC on its own NIC
            own = str(ipaddress.ip_address(spoke.private) + 50)
            assert spoke.route_dev(own) == "eth1"
            assert spoke.route_dev(hub.private).startswith("tun")
