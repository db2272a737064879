"""Publishing the inner records to the runbook's DNS through octoDNS: render writes an
octodns-sync config and a zone of its YamlProvider; octodns-sync, with octodns-bind's
RFC 2136 provider, updates a real BIND on 127.0.0.1 (TSIG-signed), and a change to the mesh
becomes a change of records there, deletions included."""

from __future__ import annotations

import base64
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import invoke

SECRET = base64.b64encode(b"vpcmesh test key, for this BIND only").decode()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def bind(tmp_path: Path) -> Iterator[int]:
    """BIND from Debian's package, primary for inner.example.com, updates and transfers
    allowed with one TSIG key only; stopped by its pid whatever happens."""
    named = shutil.which("named") or "/usr/sbin/named"
    if not Path(named).exists():
        pytest.skip("needs BIND (make system-deps installs bind9)")
    port = _free_port()
    folder = tmp_path / "bind"
    folder.mkdir()
    # The zone is octoDNS's to manage: its name server is named outside it, so no record
    # vpcmesh does not publish has to stay.
    (folder / "inner.zone").write_text(
        "$TTL 300\n@ IN SOA ns.example.org. hostmaster.example.org."
        " (1 3600 600 604800 300)\n@ IN NS ns.example.org.\n")
    (folder / "named.conf").write_text(f"""
options {{ directory "{folder}"; pid-file "{folder}/named.pid";
  listen-on port {port} {{ 127.0.0.1; }}; listen-on-v6 {{ none; }}; recursion no; }};
key "vpcmesh" {{ algorithm hmac-sha256; secret "{SECRET}"; }};
zone "inner.example.com" {{ type primary; file "{folder}/inner.zone";
  allow-update {{ key vpcmesh; }}; allow-transfer {{ key vpcmesh; }}; }};
""")
    log = (folder / "named.log").open("w")
    proc = subprocess.Popen([named, "-g", "-c", str(folder / "named.conf")], stdout=log,
                            stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while not _dig(port, "inner.example.com", "SOA"):
            assert proc.poll() is None and time.monotonic() < deadline, \
                (folder / "named.log").read_text()
            time.sleep(0.1)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


def _dig(port: int, name: str, kind: str = "A") -> list[str]:
    out = subprocess.run(["dig", "+short", "-p", str(port), "@127.0.0.1", name, kind],
                         capture_output=True, text=True, check=False).stdout
    return sorted(out.split())


def _sync(repo: Path, secret: str | None = SECRET) -> subprocess.CompletedProcess[str]:
    """octodns-sync as the README runs it, with the TSIG secret in the environment or not."""
    sync = Path(sys.executable).parent / "octodns-sync"
    env = {k: v for k, v in os.environ.items() if k != "VPCMESH_TSIG"}
    if secret is not None:
        env["VPCMESH_TSIG"] = secret
    return subprocess.run([str(sync), "--config-file", "build/dns/octodns/config.yaml",
                           "--doit"], cwd=repo, capture_output=True, text=True, check=False,
                          env=env)


def _publish(repo: Path, zone: str, settings: str) -> None:
    """mesh.yaml's dns.publish for octodns-bind's RFC 2136 provider."""
    mesh = repo / "mesh/mesh.yaml"
    mesh.write_text(mesh.read_text() + "\ndns:\n  publish:\n    provider:"
                    " octodns_bind.Rfc2136Provider\n" + (f"    zone: {zone}\n" if zone else "")
                    + f"    settings: {settings}\n")


def test_octodns_publishes_the_records_and_their_changes(example_repo: Path, bind: int,
                                                        admin_key: Path) -> None:
    _publish(example_repo, "", f"{{host: 127.0.0.1, port: {bind}, key_name: vpcmesh,"
                               " key_secret: env/VPCMESH_TSIG, key_algorithm: hmac-sha256}")
    assert invoke("render", "--repo", example_repo).exit_code == 0
    config = (example_repo / "build/dns/octodns/config.yaml").read_text()
    assert SECRET not in config and 'key_secret: "env/VPCMESH_TSIG"' in config
    done = _sync(example_repo)
    assert done.returncode == 0, done.stdout + done.stderr
    assert _dig(bind, "redis.inner.example.com") == ["172.16.0.10"]
    assert _dig(bind, "elasticsearch.inner.example.com") == ["172.18.0.10"]
    assert _dig(bind, "tencent-hz-1.inner.example.com") == ["172.17.0.10"]
    # A service moves, a node leaves: the next sync says so to BIND.
    hub, ucloud = example_repo / "nodes/aliyun-hz-1.yaml", example_repo / "nodes/ucloud-hz-1.yaml"
    hub.write_text(hub.read_text().replace("  - {name: redis, port: 6379}\n", ""))
    huawei = example_repo / "nodes/huawei-hz-1.yaml"
    huawei.write_text(huawei.read_text() + "  - {name: redis, port: 6379}\n")
    ucloud.unlink()
    assert invoke("render", "--repo", example_repo).exit_code == 0
    done = _sync(example_repo)
    assert done.returncode == 0, done.stdout + done.stderr
    assert _dig(bind, "redis.inner.example.com") == ["172.18.0.10"]
    assert _dig(bind, "ucloud-hz-1.inner.example.com") == []
    # Without the key in the environment, BIND refuses and octodns-sync fails loudly.
    assert _sync(example_repo, secret=None).returncode != 0


def test_a_secret_in_mesh_yaml_is_refused(example_repo: Path) -> None:
    _publish(example_repo, "example.org", "{host: 10.0.0.2, key_name: vpcmesh,"
                                          " key_secret: c2VjcmV0}")
    result = invoke("validate", "--repo", example_repo)
    assert result.exit_code == 1
    assert "dns.publish.settings.key_secret looks like a secret: never in git" in result.stderr
    assert "dns.publish.zone: example.org does not hold inner.example.com" in result.stderr


def test_a_parent_zone_gets_names_relative_to_it(example_repo: Path) -> None:
    _publish(example_repo, "example.com", "{host: 10.0.0.2}")
    assert invoke("render", "--repo", example_repo).exit_code == 0
    zone = (example_repo / "build/dns/octodns/zones/example.com.yaml").read_text()
    assert "'redis.inner':\n  type: A\n  value: 172.16.0.10\n" in zone
    config = (example_repo / "build/dns/octodns/config.yaml").read_text()
    assert "\n  example.com.:\n" in config
