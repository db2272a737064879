"""The runbook's FAQ, as patterns in OpenVPN's own log lines (2.5 and 2.6 wording, checked
against their source), each with what it means and how to fix it."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Known:
    name: str
    pattern: re.Pattern[str]
    meaning: str
    fix: str


KNOWN = (
    Known("tls-key-mismatch",
          re.compile(r"packet HMAC authentication failed|cannot locate HMAC in incoming packet"
                     r"|incoming packet authentication failed|tls-crypt unwrapping failed"
                     r"|packet authentication failed"),
          "the two ends use different control-channel keys (tls-crypt or tls-auth), or"
          " tls-auth with the wrong key direction",
          "pull the bundle on both ends (`vpcmesh pull --once`): every node of a mesh gets"
          " the key in its own bundle. In a hand-made config, the server has `tls-auth ta.key"
          " 0`, the clients `tls-auth ta.key 1`, and all the same ta.key"),
    Known("ccd-missing",
          re.compile(r"client-config-dir authentication failed for common name '([^']*)'"
                     r"|AUTH_FAILED"),
          "the hub refused the spoke: with ccd-exclusive, a spoke needs its ccd file on the"
          " hub, and the hub has none for it (the hub has not pulled the bundle that adds"
          " it, or the node was removed or revoked)",
          "run `vpcmesh pull --once` on the hub; check the node is in nodes/ and published"
          " (`vpcmesh plan`), and not revoked (`vpcmesh pki status`)"),
    Known("compression-mismatch",
          re.compile(r"Bad (LZO|LZ4|LZ4v2|compression stub|compression stubv2|compression stub"
                     r" \(swap\)) decompression header byte|comp-lzo.*(missing|mismatch)"
                     r"|peer does not support compression"),
          "one end compresses (comp-lzo or compress) and the other does not",
          "set vpn.compat.comp_lzo the same for the whole mesh (mesh.yaml) and render; remove"
          " comp-lzo/compress from any hand-made config"),
    Known("handshake-timeout",
          re.compile(r"TLS key negotiation failed to occur within \d+ seconds"
                     r"|TLS handshake failed"),
          "no answer from the other end within the handshake window: its port is blocked"
          " (security group, firewall), it is down, or this node reaches the wrong address",
          "open the hub's port (vpn.port, UDP by default) to the spokes' public addresses in"
          " the hub's security group; check `remote` in this node's config and that the hub"
          " runs (`vpcmesh doctor` there)"),
    Known("missing-iroute",
          re.compile(r"MULTI: bad source address from client \[([^\]]+)\]"),
          "a spoke sent packets from an address the hub does not route to it (no iroute):"
          " a subnet behind that spoke that its node file does not list",
          "add the subnet to that node's `subnets` in nodes/<hostname>.yaml, then render and"
          " publish; the hub reads the new iroute when the spoke reconnects"),
    Known("tun-device",
          re.compile(r"Cannot open TUN/TAP dev|Cannot ioctl TUNSETIFF|ERROR: Cannot open"
                     r" TUN"),
          "OpenVPN could not open /dev/net/tun",
          "load the tun module (`modprobe tun`) and check /dev/net/tun exists (mode 0666 on"
          " Debian); in a container, pass the device in (--device /dev/net/tun)"),
    Known("certificate-time",
          re.compile(r"certificate is not yet valid|certificate has expired"
                     r"|CRL has expired|CRL is not yet valid"),
          "a certificate or the CRL is outside its validity: expired, or this clock is wrong",
          "check the clock (timedatectl; enable NTP), then `vpcmesh pki status` in the"
          " repository and `vpcmesh pki renew`"),
)


@dataclass(frozen=True)
class Sighting:
    known: Known
    line: str  # the last line it was seen in
    count: int


def scan(log: str) -> list[Sighting]:
    """Each known failure the log shows, with its last line and how often it appears."""
    found: dict[str, Sighting] = {}
    for line in log.splitlines():
        for known in KNOWN:
            if known.pattern.search(line):
                seen = found.get(known.name)
                found[known.name] = Sighting(known, line.strip()[:300],
                                             (seen.count if seen else 0) + 1)
    return [found[k.name] for k in KNOWN if k.name in found]
