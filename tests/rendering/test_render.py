from __future__ import annotations

from pathlib import Path

from vpcmesh.fsio import read_tree

from conftest import TESTS, copy_example, invoke
from golden import assert_tree_matches


def _snapshot(folder: Path) -> dict[str, tuple[int, int, bytes]]:
    return {p.relative_to(folder).as_posix(): (p.stat().st_ino, p.stat().st_mtime_ns,
                                               p.read_bytes())
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_example_matches_golden_files(example_repo: Path) -> None:
    result = invoke("render", "--repo", example_repo)
    assert result.exit_code == 0, result.stderr
    assert_tree_matches(example_repo / "build", TESTS / "golden/example")


def test_render_is_deterministic(example_repo: Path, tmp_path: Path) -> None:
    invoke("render", "--repo", example_repo)
    other = copy_example(tmp_path / "again")
    invoke("render", "--repo", other)
    assert read_tree(other / "build") == read_tree(example_repo / "build")
    for rel in ("mesh/state.yaml", ".sops.yaml"):
        assert (other / rel).read_bytes() == (example_repo / rel).read_bytes()


def test_rerender_touches_nothing(example_repo: Path) -> None:
    invoke("render", "--repo", example_repo)
    before = _snapshot(example_repo / "build")
    state = (example_repo / "mesh/state.yaml").stat().st_mtime_ns
    assert invoke("render", "--repo", example_repo).exit_code == 0
    assert _snapshot(example_repo / "build") == before
    assert (example_repo / "mesh/state.yaml").stat().st_mtime_ns == state


def test_invalid_input_leaves_build_untouched(example_repo: Path) -> None:
    invoke("render", "--repo", example_repo)
    before = _snapshot(example_repo / "build")
    state = (example_repo / "mesh/state.yaml").read_bytes()
    node = example_repo / "nodes/tencent-hz-1.yaml"
    node.write_text(node.read_text().replace("172.17.0.0/24", "172.16.0.0/16"))
    result = invoke("render", "--repo", example_repo)
    assert result.exit_code == 1
    assert "routes must not overlap" in result.stderr
    assert _snapshot(example_repo / "build") == before
    assert (example_repo / "mesh/state.yaml").read_bytes() == state


def test_change_swaps_in_a_whole_new_tree(example_repo: Path) -> None:
    invoke("render", "--repo", example_repo)
    node = example_repo / "nodes/huawei-hz-1.yaml"
    node.write_text(node.read_text().replace("192.168.50.0/24", "192.168.60.0/24"))
    server_before = (example_repo / "build/aliyun-hz-1/openvpn/example.conf").read_bytes()
    assert invoke("render", "--repo", example_repo).exit_code == 0
    ccd = (example_repo / "build/aliyun-hz-1/openvpn/ccd/huawei-hz-1").read_text()
    assert "iroute 192.168.60.0 255.255.255.0" in ccd and "192.168.50.0" not in ccd
    # vpn.address_space covers both: the server's own config, what a restart reads, is as it was
    assert (example_repo / "build/aliyun-hz-1/openvpn/example.conf").read_bytes() == server_before
    leftovers = [p.name for p in example_repo.iterdir() if p.name.startswith(".build")]
    assert leftovers == []


def test_without_an_address_space_every_subnet_is_routed_and_pushed(
        example_repo: Path) -> None:
    mesh = example_repo / "mesh/mesh.yaml"
    text = mesh.read_text()
    start = text.index("  address_space:")
    end = text.index("  port:")
    mesh.write_text(text[:start] + text[end:])
    assert invoke("render", "--repo", example_repo).exit_code == 0
    server = (example_repo / "build/aliyun-hz-1/openvpn/example.conf").read_text().splitlines()
    assert [line for line in server if line.startswith(("route ", "push \"route"))] == [
        "route 172.17.0.0 255.255.255.0", "route 172.18.0.0 255.255.255.0",
        "route 172.19.0.0 255.255.255.0", "route 192.168.50.0 255.255.255.0",
        'push "route 172.16.0.0 255.255.255.0"', 'push "route 172.17.0.0 255.255.255.0"',
        'push "route 172.18.0.0 255.255.255.0"', 'push "route 172.19.0.0 255.255.255.0"',
        'push "route 192.168.50.0 255.255.255.0"']


def test_ccd_pins_the_address_and_routes_the_subnets(example_repo: Path) -> None:
    invoke("render", "--repo", example_repo)
    ccd = (example_repo / "build/aliyun-hz-1/openvpn/ccd/huawei-hz-1").read_text().splitlines()
    assert [line for line in ccd if not line.startswith("#")] == [
        "ifconfig-push 10.8.0.2 255.255.255.0",
        "iroute 172.18.0.0 255.255.255.0",
        "iroute 192.168.50.0 255.255.255.0",
    ]


def test_compat_options_only_when_asked(example_repo: Path) -> None:
    invoke("render", "--repo", example_repo)
    for conf in (example_repo / "build").glob("*/openvpn/example.conf"):
        text = conf.read_text()
        assert "tls-crypt tls.key" in text
        assert "comp-lzo" not in text and "tls-auth" not in text
    mesh = example_repo / "mesh/mesh.yaml"
    mesh.write_text(mesh.read_text().replace(
        "  max_clients: 50\n", "  max_clients: 50\n  compat: {tls_auth: true, comp_lzo: true,"
                                " cipher_fallback: AES-256-CBC, auth: SHA256}\n"))
    assert invoke("render", "--repo", example_repo).exit_code == 0
    server = (example_repo / "build/aliyun-hz-1/openvpn/example.conf").read_text()
    client = (example_repo / "build/tencent-hz-1/openvpn/example.conf").read_text()
    assert "tls-auth tls.key 0" in server and "tls-crypt" not in server
    # A spoke follows the hub when compat ends: tls-auth first, then tls-crypt, one
    # `remote` in each block and none outside them (OpenVPN refuses a mix).
    blocks = client.split("<connection>\n")
    assert [b.split("</connection>")[0] for b in blocks[1:]] == [
        "remote 203.0.113.10 1194\ntls-auth tls.key 1\n",
        "remote 203.0.113.10 1194\ntls-crypt tls.key\n"]
    assert "remote " not in blocks[0] and "server-poll-timeout 5" in blocks[0]
    assert "comp-lzo no" in server and 'push "comp-lzo no"' in server
    assert "comp-lzo" not in client  # pushed by the hub: gone with it when compat ends
    assert "auth SHA256" in server and "auth SHA256" in client
    assert "data-ciphers-fallback AES-256-CBC" in server and "fallback" not in client


def test_tcp_uses_explicit_roles_and_no_exit_notify(example_repo: Path) -> None:
    mesh = example_repo / "mesh/mesh.yaml"
    mesh.write_text(mesh.read_text().replace("proto: udp", "proto: tcp"))
    assert invoke("render", "--repo", example_repo).exit_code == 0
    server = (example_repo / "build/aliyun-hz-1/openvpn/example.conf").read_text()
    client = (example_repo / "build/tencent-hz-1/openvpn/example.conf").read_text()
    assert "proto tcp-server\n" in server and "proto tcp-client\n" in client
    assert "explicit-exit-notify" not in server + client


def test_dns_serial_moves_only_when_records_change(example_repo: Path) -> None:
    invoke("render", "--repo", example_repo)
    zone = example_repo / "build/dns/inner.example.com.zone"
    assert "\t\t1\t; serial" in zone.read_text()
    invoke("render", "--repo", example_repo)
    assert "\t\t1\t; serial" in zone.read_text()
    node = example_repo / "nodes/huawei-hz-1.yaml"
    node.write_text(node.read_text().replace("elasticsearch", "search"))
    invoke("render", "--repo", example_repo)
    assert "\t\t2\t; serial" in zone.read_text()
    assert "search\tIN\tA\t172.18.0.10" in zone.read_text()


def test_rhel_family_node_drops_to_group_nobody(example_repo: Path) -> None:
    """RHEL-family systems have no 'nogroup': OpenVPN would not start with it."""
    node = example_repo / "nodes/ucloud-hz-1.yaml"
    node.write_text(node.read_text().replace("role: spoke\n", "role: spoke\nos: rhel\n"))
    result = invoke("render", "--repo", example_repo)
    assert result.exit_code == 0, result.stderr
    conf = (example_repo / "build/ucloud-hz-1/openvpn/example.conf").read_text()
    assert "\nuser nobody\ngroup nobody\n" in conf
    other = (example_repo / "build/tencent-hz-1/openvpn/example.conf").read_text()
    assert "\nuser nobody\ngroup nogroup\n" in other
