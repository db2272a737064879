"""The lab cleans up every namespace and process it started, also when the test fails."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from netlab import Lab, require, run


def test_failure_inside_the_lab_leaves_nothing_behind(tmp_path: Path) -> None:
    require()
    with pytest.raises(RuntimeError), Lab(tmp_path) as lab:
        vm = lab.add_vm("a", "203.0.113.1", "172.16.0.1", 24, tmp_path)
        sleeper = subprocess.Popen(["ip", "netns", "exec", vm.netns, "sleep", "300"])
        names = [lab.wan, vm.netns]
        raise RuntimeError("the test failed here")
    assert sleeper.wait(timeout=5) != 0
    listed = run("ip", "netns", "list").stdout
    assert [n for n in names if n in listed] == []


# What iputils' ping prints when SIGINT stops it with its last request still unanswered.
FAKE_PING = """\
import signal, sys, time
print("64 bytes from 10.8.0.3: icmp_seq=1 ttl=63 time=1.2 ms")
{more}
print("--- 10.8.0.3 ping statistics ---", flush=True)
signal.signal(signal.SIGINT, lambda *_: (print({summary!r}), sys.exit(0)))
open({ready!r}, "w").close()
time.sleep(30)
"""


@pytest.mark.parametrize(("more", "summary", "expected", "missing"), [
    ("", "2 packets transmitted, 1 received, 50% packet loss", (1, 0), []),  # #2 on its way
    ('print("64 bytes from 10.8.0.3: icmp_seq=3 ttl=63 time=1.2 ms")',
     "3 packets transmitted, 2 received, 33% packet loss", (3, 1), ["#2"]),  # #2 lost
])
def test_ping_counts_no_request_still_on_its_way_as_lost(
        more: str, summary: str, expected: tuple[int, int], missing: list[str],
        tmp_path: Path) -> None:
    from meshlab import Ping
    from netlab import wait_for

    ready = tmp_path / "ready"
    ping = Ping(None, "", (sys.executable, "-c", FAKE_PING.format(more=more, summary=summary,
                                                                  ready=str(ready))))
    assert wait_for(ready.exists, 10)
    assert ping.stop() == expected
    assert [item.split()[0] for item in ping.missing().split(", ")] == (missing or ["none"])


def test_the_tests_that_start_a_lab_are_marked_so_test_pythons_can_leave_them_out() -> None:
    def collected(*args: str) -> set[str]:
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "--co", "-p",
                               "no:cacheprovider", *args], capture_output=True, text=True,
                              cwd=Path(__file__).parent.parent, check=False)
        return {line.split("::")[0] for line in proc.stdout.splitlines() if "::" in line}

    labs = collected("-m", "lab")
    assert {"tests/test_two_hubs.py", "tests/test_tunnel.py", "tests/test_rotation.py",
            "tests/agent/test_firewall.py"} <= labs
    rest = collected("-m", "not lab", "tests/test_two_hubs.py", "tests/test_tunnel.py",
                     "tests/test_rotation.py", "tests/test_cli.py")
    assert rest == {"tests/test_cli.py"}
