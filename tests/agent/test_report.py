"""What a spoke reports and what the hub keeps of it: the records a nobody-owned folder
holds are read as data, never followed, never trusted beyond plain tokens."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from vpcmesh.agent import report
from vpcmesh.bundle.fleet import Fleet, FleetNode

from conftest import invoke

RECORD = "event=connect\ntime=1764150000\naddress=203.0.113.7\nconfig={}\nversion=3\npull=ok\n"


def _peers(tmp_path: Path) -> Path:
    (tmp_path / "vpcmesh-peers").mkdir()
    return tmp_path / "vpcmesh-peers"


def test_a_record_is_read_as_the_script_wrote_it(tmp_path: Path) -> None:
    (_peers(tmp_path) / "spoke-1").write_text(RECORD.format("a" * 64))
    assert report.read_peer(tmp_path, "spoke-1") == report.PeerRecord(
        "connect", 1764150000, "203.0.113.7", "a" * 64, "3", "ok")


def test_a_link_a_huge_file_or_odd_values_are_no_record(tmp_path: Path) -> None:
    peers = _peers(tmp_path)
    secret = tmp_path / "secret"
    secret.write_text(RECORD.format("b" * 64))
    (peers / "linked").symlink_to(secret)
    (peers / "huge").write_text(RECORD.format("c" * 64) + "x=" + "y" * 5000 + "\n")
    (peers / "odd").write_text(RECORD.format("$(reboot)"))
    assert [report.read_peer(tmp_path, h) for h in ("linked", "huge", "odd", "none")] == \
        [None] * 4


def _fleet(**configs: str) -> bytes:
    """hostname=config, or hostname=config/settled."""
    return Fleet("m", "d", (), tuple(FleetNode(
        h, "spoke", "c", "r", "10.8.0.2", None, (), config=c.partition("/")[0],
        settled=c.partition("/")[2] or None) for h, c in configs.items())).to_bytes()


def test_a_change_that_restarts_nothing_keeps_the_older_report_good(tmp_path: Path) -> None:
    """A new CRL: the spoke applies it without reconnecting, so its last report names the
    config before; the hub takes that one for the new, and does not start a clock on it."""
    t1, t2, t3 = (dt.datetime(2026, 1, d, tzinfo=dt.timezone.utc) for d in (1, 2, 3))
    c1, c2, c3, s1, s2 = ("1" * 64, "2" * 64, "3" * 64, "a" * 64, "b" * 64)
    report.track_fleet(tmp_path, None, _fleet(x=f"{c1}/{s1}"), t1)
    report.track_fleet(tmp_path, _fleet(x=f"{c1}/{s1}"), _fleet(x=f"{c2}/{s1}"), t2)
    assert report.read_since(tmp_path) == {"x": "2026-01-01T00:00:00Z"}
    assert report.read_alike(tmp_path) == {"x": (c1,)}
    # Then a change it restarts for: only a new report will do, from now.
    report.track_fleet(tmp_path, _fleet(x=f"{c2}/{s1}"), _fleet(x=f"{c3}/{s2}"), t3)
    assert report.read_since(tmp_path) == {"x": "2026-01-03T00:00:00Z"}
    assert report.read_alike(tmp_path) == {"x": ()}
    # A fleet.json from before `settled` changes nothing of this.
    report.track_fleet(tmp_path, _fleet(x=c3), _fleet(x=c1), t3)
    assert report.read_alike(tmp_path) == {"x": ()}


def test_the_hub_notes_when_each_nodes_published_config_changed(tmp_path: Path) -> None:
    t1, t2 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC), dt.datetime(2026, 1, 2, tzinfo=dt.UTC)
    report.track_fleet(tmp_path, None, _fleet(a="1" * 64, b="2" * 64), t1)
    report.track_fleet(tmp_path, _fleet(a="1" * 64, b="2" * 64),
                       _fleet(a="1" * 64, b="3" * 64, c="4" * 64), t2)
    assert report.read_since(tmp_path) == {"a": "2026-01-01T00:00:00Z",
                                           "b": "2026-01-02T00:00:00Z",
                                           "c": "2026-01-02T00:00:00Z"}


def test_the_report_file_is_rewritten_only_when_it_changes(tmp_path: Path) -> None:
    report.write_report(tmp_path, "d" * 64, 4, True)
    path = tmp_path / "vpcmesh-report.conf"
    assert path.read_text().splitlines()[2:] == [
        f"setenv UV_VPCMESH_CONFIG {'d' * 64}", "setenv UV_VPCMESH_VERSION 4",
        "setenv UV_VPCMESH_PULL ok"]
    inode = path.stat().st_ino
    report.write_report(tmp_path, "d" * 64, 4, True)
    assert path.stat().st_ino == inode
    report.write_report(tmp_path, "d" * 64, 4, False)
    assert path.read_text().endswith("setenv UV_VPCMESH_PULL failed\n")


def test_an_oversized_status_is_refused_before_it_is_parsed(tmp_path: Path) -> None:
    big = tmp_path / "status.json"
    with open(big, "wb") as handle:
        handle.truncate((16 << 20) + 1)
    result = invoke("status", "--from", big)
    assert (result.exit_code, result.stderr) == (
        1, f"{big}: larger than 16 MiB; not a vpcmesh status\n")
