"""A hub's restart with two hubs, decided without a lab: it waits while another live hub
does not carry its spokes, gives up with a clear error when that lasts, and goes ahead
without a hub that has been gone for a while. (The lab runs it for real in
tests/test_two_hubs.py.)"""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from vpcmesh.agent import links
from vpcmesh.agent.links import Link
from vpcmesh.agent.service import Health, ServiceOptions
from vpcmesh.bundle.manifest import Body, Unit
from vpcmesh.errors import VpcmeshError

BODY = Body("example", "tencent-hz-1", "hub", "server", "example.conf", "10.9.0.1", {},
            (Unit("openvpn-client", "openvpn-client@example", "10.8.0.3", "aliyun-hz-1"),),
            ("aliyun-hz-1", "tencent-hz-1"))
NETWORKS = {"10.9.0.1": "10.9.0.0/24", "10.8.0.3": "10.8.0.0/24"}


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    found = Clock()
    monkeypatch.setattr(links.time, "sleep", found.sleep)
    monkeypatch.setattr(links, "_network_of", lambda a: ipaddress.IPv4Network(NETWORKS[a])
                        if a in NETWORKS else None)
    monkeypatch.setattr(links, "spokes_here", lambda *a: {"huawei-hz-1": "10.9.0.2"})
    return found


def _link(monkeypatch: pytest.MonkeyPatch, health: Health) -> Link:
    link = links.links(ServiceOptions(restart_cmd="true"), BODY, Path("/nonexistent"))[0]
    monkeypatch.setattr(link, "probe", lambda: health)
    return link


def test_it_waits_until_the_other_hub_carries_its_spokes(monkeypatch: pytest.MonkeyPatch,
                                                         clock: Clock) -> None:
    asked: list[str] = []

    def echo(address: str) -> bool:
        asked.append(address)
        return clock.now >= 5  # the spoke is back on the other hub after 5 s

    monkeypatch.setattr(links, "echo", echo)
    links.before_restart(BODY, Path("/conf"), [_link(monkeypatch, Health.UP)], 60, clock)
    assert set(asked) == {"10.8.0.2"}  # its address on the other hub's network
    assert clock.now >= 5 + links.SETTLE  # the later hub looked twice


def test_it_gives_up_and_says_why_when_the_other_hub_never_carries_them(
        monkeypatch: pytest.MonkeyPatch, clock: Clock) -> None:
    monkeypatch.setattr(links, "echo", lambda address: False)
    with pytest.raises(VpcmeshError) as caught:
        links.before_restart(BODY, Path("/conf"), [_link(monkeypatch, Health.UP)], 20, clock)
    assert str(caught.value) == (
        "/conf: not restarting this hub yet: hub aliyun-hz-1 does not carry huawei-hz-1 (after"
        " 20s); restarting now would cut them off. Is that hub restarting too? The next pull"
        " tries again")


def test_a_hub_gone_for_a_while_is_not_waited_for(monkeypatch: pytest.MonkeyPatch,
                                                  clock: Clock) -> None:
    monkeypatch.setattr(links, "echo", lambda address: False)
    links.before_restart(BODY, Path("/conf"), [_link(monkeypatch, Health.WAITING)], 300, clock)
    assert links.GONE_AFTER <= clock.now < 300
