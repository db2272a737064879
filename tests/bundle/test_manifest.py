"""The bundle contract: the compiler writes what the agent parses, and the agent refuses a
manifest it does not understand, naming the field, before it installs anything."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from vpcmesh.bundle import manifest as contract
from vpcmesh.errors import VpcmeshError

from bundlekit import resign, signing_key
from conftest import KEYS, invoke

HOST = "tencent-hz-1"


def test_what_the_compiler_writes_parses_back_byte_for_byte(build: Path) -> None:
    for bundle in sorted(p for p in build.iterdir() if (p / "manifest.json").exists()):
        raw = (bundle / "manifest.json").read_bytes()
        parsed = contract.parse(raw, str(bundle))
        assert parsed.to_bytes() == raw
        assert parsed.body.hostname == bundle.name and parsed.format == contract.FORMAT
        assert sorted(parsed.body.files) == sorted(
            str(p.relative_to(bundle)) for p in bundle.rglob("*")
            if p.is_file() and not p.name.startswith("manifest.json"))


def _message(change: Callable[[dict[str, object]], None], build: Path) -> str:
    raw = json.loads((build / HOST / "manifest.json").read_bytes())
    change(raw)
    with pytest.raises(VpcmeshError) as caught:
        contract.parse(contract.canonical(raw), "SRC")
    return str(caught.value)


@pytest.mark.parametrize(("change", "expected"), [
    (lambda m: m.update(format=3),
     "SRC: manifest format 3, but this agent reads formats 1 to 2; upgrade vpcmesh on this"
     " node"),
    (lambda m: m.update(format=2),
     "SRC: manifest field 'format' is 2, but the files listed need format 1; refusing the"
     " bundle"),
    (lambda m: m.pop("format"),
     "SRC: manifest field 'format' is missing or not a whole number; refusing the bundle"),
    (lambda m: m.update(version="7"),
     "SRC: manifest field 'version' is missing or not a whole number; refusing the bundle"),
    (lambda m: m.update(hostname="../etc"),
     "SRC: manifest field 'hostname' is missing or malformed; refusing the bundle"),
    (lambda m: m.update(config="x.conf\nscript-security 2"),
     "SRC: manifest field 'config' is missing or malformed; refusing the bundle"),
    (lambda m: m.update(openvpn_dir="server"),
     "SRC: manifest field 'role' is 'spoke', which does not go with openvpn_dir 'server';"
     " refusing the bundle"),
    (lambda m: m.update(expires="next week"),
     "SRC: manifest field 'expires' is not a time like %Y-%m-%dT%H:%M:%SZ; refusing the bundle"),
    (lambda m: m["files"].update({"../../etc/shadow": {"sha256": "0" * 64, "size": 1}}),
     "SRC: manifest field 'files' names '../../etc/shadow', a path outside the bundle; refusing"
     " the bundle"),
    (lambda m: m.update(files={f"f{i}": {"sha256": "0" * 64, "size": 1} for i in range(5000)}),
     "SRC: manifest field 'files' lists 5000 files, more than 4096; refusing the bundle"),
    (lambda m: m.update(files={f"f{i}": {"sha256": "0" * 64, "size": 1 << 20}
                               for i in range(100)}),
     "SRC: manifest field 'files' add up to 104857600 bytes, more than 67108864; refusing the"
     " bundle"),
    (lambda m: m["files"].update({"big": {"sha256": "0" * 64, "size": 1 << 30}}),
     "SRC: manifest field 'files' lists big at 1073741824 bytes, over 1048576; refusing the"
     " bundle"),
    (lambda m: m.update(units=[{"kind": "wireguard", "name": "wg@x", "listen": "10.0.0.1"}]),
     "SRC: manifest field 'units' names a unit of kind 'wireguard', which this agent does not"
     " run; upgrade vpcmesh on this node; refusing the bundle"),
    (lambda m: m.update(units=[{"kind": "resolver", "name": "x; reboot", "listen": "10.0.0.1"}]),
     "SRC: manifest field 'name' is missing or malformed; refusing the bundle"),
    (lambda m: m.update(units=[{"kind": "resolver", "name": "r@x", "listen": "10.0.0.1"}] * 2),
     "SRC: manifest field 'units' names a unit twice; refusing the bundle"),
    (lambda m: m.update(units={"kind": "resolver"}),
     "SRC: manifest field 'units' is not a list of at most 16 units; refusing the bundle"),
    (lambda m: m.update(units=[{"kind": "openvpn-client", "name": "openvpn-client@x-h",
                                "listen": "10.9.0.2"}]),
     "SRC: manifest field 'peer' is missing or malformed; refusing the bundle"),
    (lambda m: m.update(hubs=["a", "../b"]),
     "SRC: manifest field 'hubs' is not a list of distinct hostnames; refusing the bundle"),
    (lambda m: m.update(hubs=["a", "a"]),
     "SRC: manifest field 'hubs' is not a list of distinct hostnames; refusing the bundle"),
])
def test_a_manifest_the_agent_cannot_understand_is_refused_by_field(
        build: Path, change: Callable[[dict[str, object]], None], expected: str) -> None:
    assert _message(change, build) == expected


def test_not_json_at_all() -> None:
    with pytest.raises(VpcmeshError) as caught:
        contract.parse(b"\xff{", "SRC")
    assert str(caught.value) == "SRC: the manifest is not JSON; refusing the bundle"


def test_a_signed_manifest_of_a_newer_format_is_refused_by_pull(build: Path,
                                                                tmp_path: Path) -> None:
    # Signed with the real key: a newer compiler's bundle, not a forgery.
    def newer(manifest: dict[str, object]) -> None:
        manifest["format"] = contract.NEWEST + 1

    resign(build / HOST, signing_key(build.parent), newer)
    root = tmp_path / "node"
    result = invoke("pull", "--once", "--hostname", HOST, "--source", build, "--root", root,
                    "--age-key", KEYS / f"{HOST}.agekey", "--trust-key",
                    build.parent / "mesh/signing.pub", "--restart-cmd", "true",
                    "--health-cmd", "true")
    assert (result.exit_code, result.stderr) == (
        1, f"{build}: manifest format 3, but this agent reads formats 1 to 2; upgrade vpcmesh"
           " on this node\n")
    assert not (root / "etc").exists()


def test_units_are_listed_only_when_there_are_any(build: Path) -> None:
    """A bundle without units keeps the manifest an agent from before units reads; one with
    the resolver lists it, and parses back byte for byte."""
    raw = json.loads((build / HOST / "manifest.json").read_bytes())
    assert "units" not in raw
    raw["units"] = [{"kind": "resolver", "listen": "172.17.0.10",
                     "name": "vpcmesh-resolver@example"}]
    parsed = contract.parse(contract.canonical(raw), "SRC")
    assert parsed.body.units == (contract.Unit("resolver", "vpcmesh-resolver@example",
                                               "172.17.0.10"),)
    assert parsed.to_bytes() == contract.canonical(raw)


def test_a_tunnel_to_a_further_hub_and_the_hubs_parse_back(build: Path) -> None:
    """Two hubs: the extra tunnel is a unit naming its hub, and the hubs are listed in the
    order spokes prefer them; a one-hub bundle has neither field."""
    raw = json.loads((build / HOST / "manifest.json").read_bytes())
    assert "hubs" not in raw
    raw["units"] = [{"kind": "openvpn-client", "listen": "10.9.0.3", "peer": "hub-2",
                     "name": "openvpn-client@example-hub-2"}]
    raw["hubs"] = ["hub-1", "hub-2"]
    parsed = contract.parse(contract.canonical(raw), "SRC")
    assert parsed.body.units == (contract.Unit("openvpn-client", "openvpn-client@example-hub-2",
                                               "10.9.0.3", "hub-2"),)
    assert parsed.body.hubs == ("hub-1", "hub-2")
    assert parsed.to_bytes() == contract.canonical(raw)
