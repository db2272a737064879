"""The agent's metrics, as a file for node_exporter's textfile collector.

Written after every pull, whatever its result, with prometheus_client (its text format and
its write-then-rename, so node_exporter never reads half a file). Expiries are Unix
timestamps, Prometheus' convention: an alert subtracts time(). A hub adds a row per peer."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

from prometheus_client import CollectorRegistry, Gauge, write_to_textfile

from vpcmesh.agent.state import AgentState
from vpcmesh.bundle.manifest import parse_time
from vpcmesh.bundle.status import NodeRow
from vpcmesh.errors import VpcmeshError


def _stamp(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return parse_time(text).timestamp()
    except ValueError:
        return None


def write_metrics(path: Path, state: AgentState, tunnel_up: bool | None,
                  cert_expires: dt.datetime | None, crl_next_update: dt.datetime | None,
                  peers: Sequence[NodeRow] = (), acl: tuple[bool, int] | None = None) -> None:
    """`acl`: where the bundle has service ACLs, whether they are loaded and how many
    packets they dropped."""
    registry = CollectorRegistry()
    labels = {"mesh": state.mesh or "", "node": state.hostname or ""}

    def gauge(name: str, doc: str, value: float | None) -> None:
        if value is not None:
            Gauge(name, doc, list(labels), registry=registry).labels(**labels).set(value)

    ok = state.succeeded_at != "" and state.succeeded_at == state.checked_at
    gauge("vpcmesh_pull_last_run_timestamp_seconds", "When the agent last pulled.",
          _stamp(state.checked_at))
    gauge("vpcmesh_pull_last_success_timestamp_seconds",
          "When a pull last ended well (verified, installed or up to date).",
          _stamp(state.succeeded_at))
    gauge("vpcmesh_pull_success", "1 if the last pull ended well, else 0.",
          1.0 if ok else 0.0)
    gauge("vpcmesh_bundle_version", "The installed bundle version.", float(state.version))
    gauge("vpcmesh_pull_failed_attempts",
          "How often the newest version failed its health check.", float(state.attempts))
    gauge("vpcmesh_manifest_expiry_timestamp_seconds", "When the installed manifest expires.",
          _stamp(state.expires))
    gauge("vpcmesh_certificate_expiry_timestamp_seconds",
          "When this node's certificate expires.",
          cert_expires.timestamp() if cert_expires else None)
    gauge("vpcmesh_crl_next_update_timestamp_seconds",
          "When the installed CRL must be replaced.",
          crl_next_update.timestamp() if crl_next_update else None)
    gauge("vpcmesh_tunnel_up", "1 if this node has its tunnel address.",
          None if tunnel_up is None else float(tunnel_up))
    if acl is not None:
        gauge("vpcmesh_acl_loaded", "1 if the bundle's service ACLs are loaded in nftables.",
              float(acl[0]))
        gauge("vpcmesh_acl_dropped_packets", "Packets the service ACLs dropped since they were"
              " loaded.", float(acl[1]))
    if peers:
        peer = ["mesh", "node", "peer"]
        connected = Gauge("vpcmesh_peer_connected", "1 if the peer is connected to this hub.",
                          peer, registry=registry)
        in_sync = Gauge("vpcmesh_peer_config_in_sync",
                        "1 if the peer runs the config published for it, 0 if not, -1 if"
                        " unknown.", peer, registry=registry)
        received = Gauge("vpcmesh_peer_received_bytes", "Bytes from the peer this session.",
                         peer, registry=registry)
        sent = Gauge("vpcmesh_peer_sent_bytes", "Bytes to the peer this session.", peer,
                     registry=registry)
        for row in peers:
            names = {**labels, "peer": row.hostname}
            connected.labels(**names).set(1.0 if row.connected else 0.0)
            in_sync.labels(**names).set({"in sync": 1.0, "behind": 0.0}.get(row.sync, -1.0))
            received.labels(**names).set(float(row.bytes_received))
            sent.labels(**names).set(float(row.bytes_sent))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_to_textfile(str(path), registry)
    except OSError as exc:
        raise VpcmeshError.at(str(path), f"cannot write the metrics file:"
                                         f" {exc.strerror or exc}") from None
