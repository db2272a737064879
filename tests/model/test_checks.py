"""One fixture file per failure case, named after it; each asserts the exact output."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import FIXTURES, install_fixture, invoke

# case -> (exit status, every line validate prints on stderr)
NODE_CASES: dict[str, tuple[int, list[str]]] = {
    "hub-public-address-loopback": (
        1,
        [
            "nodes/hub-public-address-loopback.yaml:6:17: public_address 127.0.0.1 is not a unicast address spokes can reach; use the address (or DNS name) of the hub's public interface",
        ],
    ),
    "subnet-holds-the-hub": (
        1,
        [
            "nodes/subnet-holds-the-hub.yaml:6:11: subnet 203.0.113.0/24 of subnet-holds-the-hub holds hub-1's public_address 203.0.113.1: spokes would route their tunnel into itself",
        ],
    ),
    "subnet-is-link-local": (
        1,
        [
            "nodes/subnet-is-link-local.yaml:6:11: subnets[0]: 169.254.0.0/16 is link-local (169.254/16: the cloud's metadata service lives there); list the VPC subnets behind this node",
        ],
    ),
    "subnet-is-loopback": (
        1,
        [
            "nodes/subnet-is-loopback.yaml:6:11: subnets[0]: 127.0.0.0/8 is loopback; list the VPC subnets behind this node",
        ],
    ),
    "subnet-is-multicast": (
        1,
        [
            "nodes/subnet-is-multicast.yaml:6:11: subnets[0]: 224.0.0.0/4 is multicast; list the VPC subnets behind this node",
        ],
    ),
    "subnet-is-the-default-route": (
        1,
        [
            "nodes/hub-1.yaml:7:11: subnet 172.16.0.0/24 of hub-1 overlaps subnet 0.0.0.0/0 of subnet-is-the-default-route (nodes/subnet-is-the-default-route.yaml:6:11); routes must not overlap",
            "nodes/spoke-1.yaml:6:11: subnet 172.21.0.0/24 of spoke-1 overlaps subnet 0.0.0.0/0 of subnet-is-the-default-route (nodes/subnet-is-the-default-route.yaml:6:11); routes must not overlap",
            "nodes/spoke-2.yaml:6:11: subnet 172.22.0.0/24 of spoke-2 overlaps subnet 0.0.0.0/0 of subnet-is-the-default-route (nodes/subnet-is-the-default-route.yaml:6:11); routes must not overlap",
            "nodes/subnet-is-the-default-route.yaml:6:11: subnet 0.0.0.0/0 of subnet-is-the-default-route holds hub-1's public_address 203.0.113.1: spokes would route their tunnel into itself",
            "nodes/subnet-is-the-default-route.yaml:6:11: subnet 0.0.0.0/0 of subnet-is-the-default-route overlaps vpn.network 10.8.0.0/24 (mesh/mesh.yaml:4:12); routes must not overlap",
            "nodes/subnet-is-the-default-route.yaml:6:11: subnets[0]: 0.0.0.0/0 is the default route (it would send all of this node's traffic into the mesh); list the VPC subnets behind this node",
        ],
    ),
    "alias-bomb": (
        1,
        [
            "nodes/alias-bomb.yaml:2:8: YAML aliases (*name) are not accepted in vpcmesh files; write the value out",
        ],
    ),
    "integer-key": (
        1,
        [
            "nodes/integer-key.yaml:1:1: missing required key 'age_recipient'",
            "nodes/integer-key.yaml:1:1: missing required key 'cloud'",
            "nodes/integer-key.yaml:1:1: missing required key 'private_address'",
            "nodes/integer-key.yaml:1:1: missing required key 'region'",
            "nodes/integer-key.yaml:1:1: missing required key 'role'",
            "nodes/integer-key.yaml:1:1: missing required key 'subnets'",
            "nodes/integer-key.yaml:2:1: unknown key '1'; allowed: age_recipient, cloud, groups, hostname, os, private_address, public_address, region, role, services, subnets, tunnel_network, vpn_address",
        ],
    ),
    "nested-too-deep": (
        1,
        [
            "nodes/nested-too-deep.yaml:1:26: nested more than 16 levels deep; vpcmesh files are flat",
        ],
    ),
    "nul-byte": (
        1,
        [
            "nodes/nul-byte.yaml:1:19: invalid YAML: control character #x0000; vpcmesh files are plain text",
        ],
    ),
    "age-recipient-bad-checksum": (
        1,
        [
            "nodes/age-recipient-bad-checksum.yaml:7:16: age_recipient: bad age recipient checksum (a mistyped character?); copy it again from 'age-keygen -y KEYFILE'",
        ],
    ),
    "duplicate-hostname": (
        1,
        [
            "nodes/duplicate-hostname.yaml:1:11: hostname 'spoke-1' does not match the file name; rename the file to nodes/spoke-1.yaml or set hostname: duplicate-hostname",
            "nodes/duplicate-hostname.yaml:1:11: hostname 'spoke-1' is already used by nodes/spoke-1.yaml:1:11",
        ],
    ),
    "duplicate-key": (
        1,
        [
            'nodes/duplicate-key.yaml:8:1: invalid YAML: found duplicate key "role" with value "hub" (original value: "spoke")',
        ],
    ),
    "duplicate-service-name": (
        1,
        [
            "nodes/hub-1.yaml:10:12: service name 'redis' is already used by nodes/duplicate-service-name.yaml:8:19; DNS names must be unique",
        ],
    ),
    "duplicate-vpn-address": (
        1,
        [
            "nodes/duplicate-vpn-address.yaml:8:14: vpn_address 10.8.0.3 is allocated to 'spoke-2' in mesh/state.yaml; pick a free address",
        ],
    ),
    "host-bits-set": (
        1,
        [
            "nodes/host-bits-set.yaml:6:11: subnets[0]: 172.30.0.10/24 has host bits set; use 172.30.0.0/24 (or 172.30.0.10/32 for the single host)",
        ],
    ),
    "hostname-mismatch": (
        1,
        [
            "nodes/hostname-mismatch.yaml:1:11: hostname 'other-name' does not match the file name; rename the file to nodes/other-name.yaml or set hostname: hostname-mismatch",
        ],
    ),
    "hostname-not-dns-label": (
        1,
        [
            "nodes/hostname-not-dns-label.yaml:1:11: hostname: 'Bad_Name' is not a DNS label: 1-63 lowercase letters, digits and '-', not starting or ending with '-'",
        ],
    ),
    "hostname-path-traversal": (
        1,
        [
            "nodes/hostname-path-traversal.yaml:1:11: hostname: '../../etc/cron.d/x' is not a DNS label: 1-63 lowercase letters, digits and '-', not starting or ending with '-'",
        ],
    ),
    "hub-without-public-address": (
        1,
        [
            "nodes/hub-without-public-address.yaml:2:1: a hub needs public_address: the address its spokes connect to",
        ],
    ),
    "invalid-age-recipient": (
        1,
        [
            "nodes/invalid-age-recipient.yaml:7:16: age_recipient: 'age1notarecipient' is not an age X25519 recipient: 'age1' and 58 bech32 characters, as printed by age-keygen -y",
        ],
    ),
    "invalid-yaml": (
        1,
        [
            "nodes/invalid-yaml.yaml:7:14: invalid YAML: did not find expected ',' or ']'",
        ],
    ),
    "missing-required-key": (
        1,
        [
            "nodes/missing-required-key.yaml:1:1: missing required key 'private_address'",
        ],
    ),
    "newline-injection": (
        1,
        [
            "nodes/newline-injection.yaml:7:5: subnets[0]: '172.30.0.0/24\\npush \"route 0.0.0.0 0.0.0.0\"' is not an IPv4 network in CIDR form, such as 172.16.0.0/24 (a host is /32)",
        ],
    ),
    "no-hub": (
        1,
        [
            "mesh/mesh.yaml:1:1: no node has role: hub; exactly one node must run the OpenVPN server",
        ],
    ),
    "not-a-mapping": (
        1,
        [
            "nodes/not-a-mapping.yaml:1:1: (document): expected a mapping, got a list",
        ],
    ),
    "private-address-in-vpn-network": (
        1,
        [
            "nodes/private-address-in-vpn-network.yaml:5:18: warning: private_address 10.8.0.77 is in none of this node's subnets; add its VPC subnet (or its /32) so the mesh can reach it",
            "nodes/private-address-in-vpn-network.yaml:5:18: private_address 10.8.0.77 is inside vpn.network 10.8.0.0/24",
        ],
    ),
    "private-address-outside-subnets": (
        0,
        [
            "nodes/private-address-outside-subnets.yaml:5:18: warning: private_address 172.31.9.9 is in none of this node's subnets; add its VPC subnet (or its /32) so the mesh can reach it",
            "ok: 4 nodes, hub hub-1",
        ],
    ),
    "public-address-injection": (
        1,
        [
            "nodes/public-address-injection.yaml:8:17: public_address: '203.0.113.5 1194\\nscript-security 2' is not the public IPv4 address or DNS name spokes connect to",
        ],
    ),
    "quote-injection": (
        1,
        [
            "nodes/quote-injection.yaml:2:8: cloud: 'tencent\" push \"route 0.0.0.0' is not a cloud name: lowercase letters, digits and '-', such as aliyun",
        ],
    ),
    "second-hub": (
        1,
        [
            "nodes/second-hub.yaml:4:7: a second hub needs its own tunnel_network (e.g. tunnel_network: 10.8.1.0/24); only hub-1 may use vpn.network",
        ],
    ),
    "hub-small-network": (
        1,
        [
            "nodes/hub-small-network.yaml:9:17: tunnel_network 10.9.0.0/25 must be the size of vpn.network (/24): every node keeps the same host part on every hub",
        ],
    ),
    "hub-overlapping-network": (
        1,
        [
            "nodes/hub-overlapping-network.yaml:7:11: subnet 172.30.0.0/24 of hub-overlapping-network overlaps tunnel_network 172.30.0.0/24 of hub-overlapping-network (nodes/hub-overlapping-network.yaml:9:17); routes must not overlap",
        ],
    ),
    "hub-same-cloud": (
        0,
        [
            "nodes/hub-same-cloud.yaml:2:8: warning: hubs hub-1 and hub-same-cloud are both on aliyun: an outage of that cloud takes both; put the second hub on another cloud",
            "ok: 4 nodes, hubs hub-1, hub-same-cloud (spokes prefer them in this order)",
        ],
    ),
    "spoke-network": (
        1,
        [
            "nodes/spoke-network.yaml:9:17: tunnel_network: only a hub has one (its OpenVPN server hands it out); remove it",
        ],
    ),
    "acl-unknown-node": (
        1,
        [
            "nodes/acl-unknown-node.yaml:13:9: allow: no node 'nope' in nodes/; write an existing hostname",
        ],
    ),
    "acl-unknown-group": (
        1,
        [
            "nodes/acl-unknown-group.yaml:12:13: allow: no node is in group 'app'; add it to a node's groups, or fix the name",
        ],
    ),
    "acl-bad-network": (
        1,
        [
            "nodes/acl-bad-network.yaml:11:13: allow: 172.21.0.1/24 has host bits set; write 172.21.0.0/24 (or 172.21.0.1/32 for one host)",
        ],
    ),
    "acl-port-twice": (
        1,
        [
            "nodes/acl-port-twice.yaml:10:5: service 'db' is tcp/5432 like 'pg' on this node, with another allow list; one port has one list: give both the same allow",
        ],
    ),
    "acl-colon-in-flow-list": (
        1,
        [
            "nodes/acl-colon-in-flow-list.yaml:9:41: invalid YAML: found unexpected ':'; inside [ ] or { }, quote a value with a colon ('group:app'), or write the list one '- item' per line",
        ],
    ),
    "service-name-is-a-node-name": (
        1,
        [
            "nodes/service-name-is-a-node-name.yaml:8:19: service name 'spoke-2' is already used by nodes/spoke-2.yaml:1:11; DNS names must be unique",
        ],
    ),
    "subnet-overlaps-other-node": (
        1,
        [
            "nodes/subnet-overlaps-other-node.yaml:6:26: subnet 172.16.0.128/25 of subnet-overlaps-other-node overlaps subnet 172.16.0.0/24 of hub-1 (nodes/hub-1.yaml:7:11); routes must not overlap",
        ],
    ),
    "subnet-overlaps-vpn-network": (
        1,
        [
            "nodes/subnet-overlaps-vpn-network.yaml:6:26: subnet 10.0.0.0/8 of subnet-overlaps-vpn-network overlaps vpn.network 10.8.0.0/24 (mesh/mesh.yaml:4:12); routes must not overlap",
        ],
    ),
    "subnets-overlap-each-other": (
        1,
        [
            "nodes/subnets-overlap-each-other.yaml:6:26: subnet 172.30.5.0/24 of subnets-overlap-each-other overlaps subnet 172.30.0.0/16 of subnets-overlap-each-other (nodes/subnets-overlap-each-other.yaml:6:11); routes must not overlap",
        ],
    ),
    "trailing-newline": (
        1,
        [
            "nodes/trailing-newline.yaml:6:11: subnets[0]: '172.30.0.0/24\\n' is not an IPv4 network in CIDR form, such as 172.16.0.0/24 (a host is /32)",
        ],
    ),
    "unknown-key": (
        1,
        [
            "nodes/unknown-key.yaml:8:1: unknown key 'servces'; did you mean 'services'?",
        ],
    ),
    "vpn-address-broadcast": (
        1,
        [
            "nodes/vpn-address-broadcast.yaml:8:14: vpn_address 10.8.0.255 is the network or broadcast address of 10.8.0.0/24",
        ],
    ),
    "vpn-address-outside-network": (
        1,
        [
            "nodes/vpn-address-outside-network.yaml:8:14: vpn_address 10.9.0.7 is outside vpn.network 10.8.0.0/24",
        ],
    ),
    "vpn-address-reserved": (
        1,
        [
            "nodes/vpn-address-reserved.yaml:8:14: vpn_address 10.8.0.1 is reserved for the hub",
        ],
    ),
    "wrong-type": (
        1,
        [
            "nodes/wrong-type.yaml:8:30: services[0].port: expected a whole number, got a string",
        ],
    ),
}

MESH_CASES: dict[str, tuple[int, list[str]]] = {
    "address-space-holds-the-hub": (
        1,
        [
            "nodes/hub-1.yaml:5:17: public_address 203.0.113.1 is inside vpn.address_space (172.16.0.0/12, 203.0.113.0/24): spokes would route their tunnel into itself",
        ],
    ),
    "address-space-host-bits": (
        1,
        [
            "mesh/mesh.yaml:5:19: vpn.address_space[0]: 172.16.0.1/12 has host bits set; use 172.16.0.0/12",
        ],
    ),
    "address-space-misses-a-subnet": (
        1,
        [
            "nodes/spoke-1.yaml:6:11: subnet 172.21.0.0/24 of spoke-1 is outside vpn.address_space (172.16.0.0/16, 172.22.0.0/16); add a range that covers it to mesh/mesh.yaml (changing the address space restarts the hub)",
        ],
    ),
    "address-space-overlapping-ranges": (
        1,
        [
            "mesh/mesh.yaml:5:34: vpn.address_space[1]: 172.16.0.0/16 overlaps 172.16.0.0/12; list each range once",
        ],
    ),
    "domain-injection": (
        1,
        [
            "mesh/mesh.yaml:2:9: domain: 'inner.example.net\"; push \"route 0.0.0.0 0.0.0.0' is not a DNS domain of lowercase labels separated by dots, such as inner.example.com",
        ],
    ),
    "tls-crypt-v2-with-tls-auth": (
        1,
        [
            "mesh/mesh.yaml:6:17: vpn.tls_crypt_v2 and vpn.compat.tls_auth exclude each other: peers that need tls-auth cannot use tls-crypt-v2; turn one off",
        ],
    ),
    "keepalive-too-short": (
        1,
        [
            "mesh/mesh.yaml:6:38: vpn.keepalive.timeout: 15 must be at least twice the interval (20), or tunnels flap",
        ],
    ),
    "max-clients-too-low": (
        1,
        [
            "mesh/mesh.yaml:5:16: vpn.max_clients is 1 but the mesh has 2 spokes; raise it",
        ],
    ),
    "mesh-name-path-traversal": (
        1,
        [
            "mesh/mesh.yaml:1:7: name: '../../etc/x' is not a mesh name: 2-32 lowercase letters, digits and '-', starting with a letter (it names <name>.conf and the systemd unit)",
        ],
    ),
    "mesh-unknown-key": (
        1,
        [
            "mesh/mesh.yaml:8:1: unknown key 'dns_domain'; did you mean 'domain'?",
        ],
    ),
    "no-admins": (
        1,
        [
            "mesh/mesh.yaml:6:9: admins: needs at least 1 item(s)",
        ],
    ),
    "pool-exhausted": (
        1,
        [
            "nodes/spoke-2.yaml:1:11: no tunnel address left for 'spoke-2': vpn.network 10.8.0.0/30 has room for 1 spoke(s); widen it in mesh/mesh.yaml",
        ],
    ),
    "port-out-of-range": (
        1,
        [
            "mesh/mesh.yaml:6:9: vpn.port: 70000 is greater than the maximum of 65535",
        ],
    ),
    "renew-window-too-long": (
        1,
        [
            "mesh/mesh.yaml:8:50: pki.renew_before_days must be shorter than pki.cert_validity_days, or every render renews every certificate",
        ],
    ),
    "unsupported-cipher": (
        1,
        [
            "mesh/mesh.yaml:6:18: vpn.data_ciphers[0]: 'AES-256-CBC' is not one of: AES-256-GCM, AES-128-GCM, CHACHA20-POLY1305",
        ],
    ),
    "vpn-network-host-bits": (
        1,
        [
            "mesh/mesh.yaml:4:12: vpn.network: 10.8.0.1/24 has host bits set; use 10.8.0.0/24",
        ],
    ),
    "vpn-network-too-small": (
        1,
        [
            "mesh/mesh.yaml:4:12: vpn.network: 10.8.0.0/31 has no room for a hub and a spoke; use /30 or larger",
        ],
    ),
}


@pytest.mark.parametrize("kind, cases", [("nodes", NODE_CASES), ("mesh", MESH_CASES)])
def test_every_fixture_has_a_case(kind: str, cases: dict[str, object]) -> None:
    files = {p.stem for p in (FIXTURES / "invalid" / kind).glob("*.yaml")}
    assert files == set(cases)


@pytest.mark.parametrize("case", sorted(NODE_CASES))
def test_invalid_node(case: str, base_repo: Path) -> None:
    install_fixture(base_repo, FIXTURES / "invalid/nodes" / f"{case}.yaml", "nodes")
    result = invoke("validate", "--repo", base_repo)
    assert (result.exit_code, result.stderr.splitlines()) == NODE_CASES[case]


@pytest.mark.parametrize("case", sorted(MESH_CASES))
def test_invalid_mesh(case: str, base_repo: Path) -> None:
    install_fixture(base_repo, FIXTURES / "invalid/mesh" / f"{case}.yaml", "mesh")
    result = invoke("validate", "--repo", base_repo)
    assert (result.exit_code, result.stderr.splitlines()) == MESH_CASES[case]
