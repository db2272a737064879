"""Rotations on a running mesh of real OpenVPN: two hubs, tls-crypt-v2 (as `vpcmesh init`
makes meshes). The bundle-signing key, then the CA's three steps (and in a second mesh, the
tls-crypt-v2 server keys' three steps), each published and
pulled the worst way round: the spokes first, while the hubs still run the old CA's
certificates and trust only it; then both hubs at the same moment, as their timers might.
Two spokes ping each other both ways throughout.

Each VM verifies bundles with its own copy of signing.pub (what `agent install` leaves in
/etc/vpcmesh), so following the key chain is what lets it take the next bundle."""

from __future__ import annotations

import contextlib
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bundlekit import git_bundles
from conftest import invoke
from meshlab import Ping, pid, pull
from netlab import Vm, wait_for
from test_two_hubs import TwoHubs, _all_pairs, _background_pull, _reaches, _up

pytestmark = pytest.mark.usefixtures("debian_tun", "admin_key")
# A hub that restarts sends its spokes to the other hub first, but a packet already on its
# way into it as it stops is lost: at 10 pings a second, at most one each way.
IN_FLIGHT = 1
# A spoke restarts its two tunnels one after the other, each moving its traffic to the other
# as it goes and back as it returns: a ping on its way at each move may be lost. Two spokes,
# two tunnels each: 1 to 3 lost each way in the lab; 15 to 19, when the lab waited for a
# slow init to reap each stopped OpenVPN before starting the next (tests/meshlab.py).
SPOKE_RESTARTS = 8


def _trust(vm: Vm) -> Path:
    return vm.workdir / "signing.pub"


def _publish(h: TwoHubs, *command: str) -> None:
    result = invoke(*command, "--repo", h.repo)
    assert result.exit_code == 0, result.stderr
    git_bundles(h.repo / "build", h.remote)


def _spokes_then_hubs(h: TwoHubs, step: str) -> tuple[list[str], tuple[int, int],
                                                      tuple[int, int]]:
    """What each pull said, and the pings lost (each way) while the spokes pulled, then
    while the hubs did."""
    said = []
    forth, back = Ping(h.a, h.b.private), Ping(h.b, h.a.private)
    time.sleep(1)
    for spoke in (h.a, h.b):
        code, err = pull(spoke, h.remote, h.repo, trust=_trust(spoke))
        assert code == 0, f"{step}: {spoke.name}: {err}\n{h.log()}"
        said.append(err)
    time.sleep(2)
    spokes = forth.stop()[1], back.stop()[1]
    forth, back = Ping(h.a, h.b.private), Ping(h.b, h.a.private)
    procs = [_background_pull(vm, h, _trust(vm)) for vm in (h.second, h.first)]
    outputs = [p.communicate(timeout=400) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], f"{step}: {outputs}\n{h.log()}"
    said += [err for _, err in outputs]
    time.sleep(2)
    return said, spokes, (forth.stop()[1], back.stop()[1])


def _restart_with(vm: Vm, conf: Path, files: dict[str, bytes]) -> None:
    """A spoke's tunnel to the first hub, restarted with some of its files from before."""
    vm.exec("sh", str(vm.workdir / "stop.sh"), check=False)
    for name, data in files.items():
        (conf / name).write_bytes(data)
    vm.exec("sh", "-c", f"cd {conf} && openvpn --config example.conf --daemon vpcmt"
            f" --writepid {vm.pidfile} --log-append {vm.logfile}")


@contextlib.contextmanager
def _rotating_mesh(lab_root: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TwoHubs]:
    """Two hubs and two spokes with tls-crypt-v2, each VM with its own copy of signing.pub."""
    up = _up(lab_root, monkeypatch, vpn_extra="  tls_crypt_v2: true\n")
    h = next(up)
    try:
        assert _reaches(h.a, h.b.private) and _reaches(h.b, h.a.private), h.log()
        for vm in (h.first, h.second, h.a, h.b):
            shutil.copyfile(h.repo / "mesh/signing.pub", _trust(vm))
        yield h
    finally:
        up.close()


def _pids(h: TwoHubs) -> dict[str, int]:
    return {vm.name: pid(vm) for vm in (h.first, h.second, h.a, h.b)}


def test_the_signing_key_and_the_ca_rotate_on_a_running_mesh(
        lab_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with _rotating_mesh(lab_root, monkeypatch) as h:
        started = _pids(h)

        # 1. The signing key: every VM follows the chain; nothing restarts, nothing is lost.
        _publish(h, "pki", "rotate", "signing-key")
        said, spokes, hubs = _spokes_then_hubs(h, "signing key")
        assert all("trusting signing key(s)" in s for s in said), said
        assert {_trust(vm).read_bytes() for vm in (h.first, h.second, h.a, h.b)} == {
            (h.repo / "mesh/signing.pub").read_bytes()}
        assert (spokes, hubs, _pids(h)) == ((0, 0), (0, 0), started), h.log()

        # 2. Introduce a new CA: both CRLs everywhere, both CAs on the clients; nothing
        # restarts, nothing is lost.
        _publish(h, "pki", "rotate", "ca")
        said, spokes, hubs = _spokes_then_hubs(h, "introduce")
        assert all("without a restart" in s for s in said), said
        assert (spokes, hubs, _pids(h)) == ((0, 0), (0, 0), started), h.log()

        # 3. Move: every node's certificate from the new CA, sent with the cross
        # certificate. Spokes first: the hubs, on the old CA alone, accept them through it.
        conf = h.b.workdir / "etc/openvpn/client"
        old_files = {p.name: p.read_bytes() for p in conf.glob("*")
                     if p.name.startswith(("ucloud-hz-1.", "tc2-"))}
        _publish(h, "pki", "rotate", "ca", "--no-wait")
        said, spokes, hubs = _spokes_then_hubs(h, "move")
        assert all("restarted OpenVPN" in s for s in said), said
        moved = _pids(h)
        assert all(moved[name] != started[name] for name in moved)  # each once
        # A spoke's own traffic moves to its other tunnel while each restarts (a renewal
        # does the same); the hubs restart one at a time, their spokes on the other meanwhile.
        assert max(spokes) <= SPOKE_RESTARTS and max(hubs) <= IN_FLIGHT, (spokes, hubs, h.log())
        print(f"move: {spokes} pings lost while the spokes restarted, {hubs} while the hubs"
              " did")

        # 4. Retire the old CA: the hubs' servers take the new CA alone, one at a time.
        _publish(h, "pki", "rotate", "ca", "--no-wait")
        said, spokes, hubs = _spokes_then_hubs(h, "retire")
        assert all("without a restart" in s for s in said[:2]), said
        assert all("restarted OpenVPN" in s for s in said[2:]), said
        retired = _pids(h)
        assert (retired[h.a.name], retired[h.b.name]) == (moved[h.a.name], moved[h.b.name])
        assert spokes == (0, 0) and max(hubs) <= IN_FLIGHT, (spokes, hubs, h.log())
        print(f"retire: {spokes} pings lost while the spokes pulled, {hubs} while the hubs"
              " restarted")
        assert _all_pairs(h) == [], h.log()

        # A certificate of the old CA gets in nowhere: the spoke's old files, restarted.
        _restart_with(h.b, conf, old_files)
        # (The hub, restarted on the new CA alone, finds no issuer for it; a node that has not
        # restarted since would find no CRL for it: tests/commands/test_rotate_ca.py.)
        refused = re.compile(r"VERIFY ERROR: depth=0, error=unable to get local issuer"
                             r" certificate: CN=ucloud-hz-1")
        assert wait_for(lambda: refused.search(h.first.log()) is not None, 30), h.log()


def test_the_tls_crypt_v2_server_keys_rotate_on_a_running_mesh(
        lab_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with _rotating_mesh(lab_root, monkeypatch) as h:
        conf = h.b.workdir / "etc/openvpn/client"
        first_keys = {p.name: p.read_bytes() for p in conf.glob("tc2-*.key")}

        # 1. Introduce: every client (the spokes, and each hub as the other's client) gets a
        # key for the next server keys and restarts once; the hubs' servers keep theirs.
        _publish(h, "pki", "rotate", "tls-crypt-v2")
        said, spokes, hubs = _spokes_then_hubs(h, "introduce")
        assert all("restarted OpenVPN" in s for s in said), said
        assert max(spokes) <= SPOKE_RESTARTS and max(hubs) <= IN_FLIGHT, (spokes, hubs,
                                                                          h.log())
        print(f"introduce: {spokes} pings lost while the spokes restarted, {hubs} while the"
              " hubs did")

        # 2. Switch: the hubs take their next server keys, and first tell their clients to
        # take their next block: no spoke waits out server-poll-timeout.
        _publish(h, "pki", "rotate", "tls-crypt-v2", "--no-wait")
        said, spokes, hubs = _spokes_then_hubs(h, "switch")
        assert all("restarted OpenVPN" not in s for s in said[:2]), said
        assert all("restarted OpenVPN" in s for s in said[2:]), said
        assert spokes == (0, 0) and max(hubs) <= IN_FLIGHT, (spokes, hubs, h.log())
        for spoke in (h.a, h.b):
            assert "Connection reset command was pushed by server ('[N]')" in spoke.log()
            assert "Server poll timeout" not in spoke.log(), spoke.log()
        print(f"switch: {hubs} pings lost while the hubs restarted")

        # 3. Retire: every client keeps only its new key and restarts once.
        _publish(h, "pki", "rotate", "tls-crypt-v2", "--no-wait")
        said, spokes, hubs = _spokes_then_hubs(h, "retire")
        assert all("restarted OpenVPN" in s for s in said), said
        assert max(spokes) <= SPOKE_RESTARTS and max(hubs) <= IN_FLIGHT, (spokes, hubs,
                                                                          h.log())
        print(f"retire: {spokes} pings lost while the spokes restarted, {hubs} while the hubs"
              " did")
        assert _all_pairs(h) == [], h.log()

        # A key for the old server key gets in nowhere, before any TLS.
        _restart_with(h.b, conf, first_keys)
        assert wait_for(lambda: "can not extract tls-crypt-v2 client key from" in
                        h.first.log(), 30), h.log()
