"""Two hubs, measured (part of `make bench`; root and openvpn needed): the lab of
tests/test_two_hubs.py, every node configured by `vpcmesh pull`.

- Failover: the preferred hub's public interface goes down (its cloud is cut off); the
  seconds until two spokes reach each other again, both ways (the later of the two), as
  the median of 5 trials. Target: <= 5 s.
- Return: the packets two spokes lose (ping 10/s, both ways) while the hub comes back and
  their traffic moves back to it. Target: 0.
- Rolling change: a change that restarts both hubs, both agents pulling at once; the
  packets two spokes lose meanwhile. Target: 0.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "tests")]

import live  # noqa: E402

from meshlab import Ping  # noqa: E402
from netlab import wait_for  # noqa: E402
from test_two_hubs import TwoHubs, _recovery, _up, change_both_hubs  # noqa: E402

TRIALS = 5


class _Env:
    """What _up needs of pytest's monkeypatch."""

    def delenv(self, name: str) -> None:
        os.environ.pop(name, None)


def _trial(h: TwoHubs) -> tuple[float, tuple[int, int]]:
    """One cut of the preferred hub: seconds to recover; then packets lost as it returns."""
    assert wait_for(lambda: h.a.ping(h.b.private) and h.b.ping(h.a.private), 60)
    cut = time.monotonic()
    h.first.exec("ip", "link", "set", "wan0", "down")
    with ThreadPoolExecutor(2) as pool:
        took = max(pool.map(lambda pair: _recovery(*pair, cut), ((h.a, h.b), (h.b, h.a))))
    forth, back = Ping(h.a, h.b.private), Ping(h.b, h.a.private)
    h.first.exec("ip", "link", "set", "wan0", "up")
    wait_for(lambda: h.a.route_dev(h.b.private) == "tun-vpcm0"
             and h.b.route_dev(h.a.private) == "tun-vpcm0", 60)
    time.sleep(3)
    return took, (forth.stop()[1], back.stop()[1])


def measure() -> dict[str, str]:
    with live.lab_root() as root:
        setup = _up(root, _Env())  # type: ignore[arg-type]
        h = next(setup)
        try:
            trials = [_trial(h) for _ in range(TRIALS)]
            rolling, _ = change_both_hubs(h)
        finally:
            setup.close()
    times = sorted(t for t, _ in trials)
    returned = [sum(lost) for _, lost in trials]
    return {"failover": f"median {statistics.median(times):.1f} s"
                        f" ({', '.join(f'{t:.1f}' for t in times)})",
            "return": f"{sum(returned)} packets in {TRIALS} returns",
            "rolling": f"{sum(rolling)} packets ({rolling[0]} one way, {rolling[1]} back)"}


if __name__ == "__main__":
    for name, figure in measure().items():
        print(f"{name}: {figure}")
