"""What a hand-written server.conf, its ccd/ files and ipp.txt say, in vpcmesh's terms.

Every line is accounted for: mapped (and to what), left out because vpcmesh does the same
another way (a warning that says how), or not mappable (an error: import writes nothing).
Nothing is guessed: an option this table does not know is an error."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Network
from pathlib import Path

from vpcmesh.adoption.easyrsa import read_bytes
from vpcmesh.adoption.ovpnconf import Directive, parse
from vpcmesh.errors import Location, Problem, Severity, VpcmeshError
from vpcmesh.model.types import Compat

STATIC_KEY = "-----BEGIN OpenVPN Static key V1-----"
WARN = Severity.WARNING
# Options vpcmesh's hub has in its own form, or that only say where the old one keeps files.
SAME = {
    "ca": "the CA comes from the PKI folder", "cert": "the hub gets its own certificate",
    "key": "the hub gets its own key", "dh": "vpcmesh uses ECDHE (dh none); clients from 2.4 on"
    " support it", "crl-verify": "the CRL comes from the PKI folder",
    "ifconfig-pool-persist": "read for the addresses", "client-config-dir": "read for iroutes",
    "ccd-exclusive": "vpcmesh's hub has it", "persist-key": "vpcmesh's hub has it",
    "persist-tun": "vpcmesh's hub has it", "user": "user nobody",
    "group": "from the node's os", "status": "vpcmesh status reports",
    "status-version": "vpcmesh status reports", "log": "journald", "log-append": "journald",
    "verb": "verb 3", "mute": "not needed", "explicit-exit-notify": "vpcmesh's hub has it",
    "tls-server": "implied", "mode": "implied", "dev-type": "tun", "remote-cert-tls": "same",
    "tls-version-min": "1.2", "daemon": "systemd runs it", "writepid": "systemd",
    "fast-io": "vpcmesh's hub has it", "sndbuf": "1 MiB", "rcvbuf": "1 MiB",
    "txqueuelen": "1000", "allow-compression": "see comp-lzo", "ecdh-curve": "OpenSSL's",
    "management": "vpcmesh's hub has its own socket", "topology": "vpcmesh uses subnet",
    "local": "the hub listens on every address", "float": "not needed",
}
# What changes what a client gets or who may connect: vpcmesh cannot keep it.
REFUSED = {
    "duplicate-cn": "vpcmesh gives every node its own certificate; give each client one",
    "client-cert-not-required": "vpcmesh authenticates every node by certificate",
    "verify-client-cert": "vpcmesh authenticates every node by certificate",
    "auth-user-pass-verify": "vpcmesh has no password logins",
    "plugin": "vpcmesh runs no plugins", "server-bridge": "vpcmesh routes (dev tun)",
    "server-ipv6": "vpcmesh's tunnels are IPv4", "tls-crypt-v2": "not supported yet",
    "compress": "vpcmesh never compresses; only comp-lzo framing is kept (compat.comp_lzo)",
    "client-connect": "vpcmesh's hub runs its own", "client-disconnect": "vpcmesh's own",
    "learn-address": "vpcmesh's hub runs none", "script-security": "vpcmesh's own",
}
# Where what a line says goes (the others note it themselves).
TARGETS = {
    "port": "vpn.port", "proto": "vpn.proto", "dev": "dev tun, as vpcmesh's", "server":
    "vpn.network (the hub keeps the first address)", "keepalive": "vpn.keepalive",
    "max-clients": "vpn.max_clients", "client-to-client": "vpn.client_to_client: true",
    "route": "checked against the ccd files' iroutes", "comp-lzo": "compat.comp_lzo: true",
    "auth": "compat.auth (the tls-auth HMAC digest; SHA1 is the default)",
    "tls-crypt": "tls-crypt as before, the key to secrets/mesh.sops.yaml (encrypted)",
    "key-direction": "read with tls-auth",
}
CBC = ("AES-256-CBC", "AES-192-CBC", "AES-128-CBC")
AEAD = ("AES-256-GCM", "AES-128-GCM", "CHACHA20-POLY1305")


@dataclass
class OldServer:
    """Filled in by `read_server`, line by line."""

    conf: Path
    network: IPv4Network | None = None
    net30: bool = True  # OpenVPN 2.x's default topology
    port: int = 1194
    proto: str = "udp"
    keepalive: tuple[int, int] | None = None
    max_clients: int | None = None
    client_to_client: bool = False
    tls_auth: bool = False
    tls_key: str | None = None
    tls_key_at: Location | None = None
    comp_lzo: bool = False
    cipher_fallback: str | None = None
    auth: str | None = None
    pushed: list[tuple[IPv4Network, Location]] = field(default_factory=list)
    routes: list[tuple[IPv4Network, Location]] = field(default_factory=list)
    ccd: Path | None = None
    ipp: Path | None = None
    mapped: list[tuple[Location, str]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def compat(self) -> Compat:
        return Compat(self.tls_auth, self.comp_lzo, self.cipher_fallback, self.auth)

    def note(self, d: Directive, text: str, severity: Severity | None = None) -> None:
        if severity is None:
            self.mapped.append((d.at, f"{d.name}: {text}"))
        else:
            self.problems.append(Problem(d.at, f"'{d.name}': {text}", severity))


def network(words: tuple[str, ...], at: Location) -> IPv4Network:
    try:
        return IPv4Network(f"{words[0]}/{words[1]}")
    except (IndexError, ValueError):
        raise VpcmeshError.at(at, "expected NETWORK NETMASK, such as 172.16.0.0"
                                  " 255.255.255.0") from None


def _integer(d: Directive, index: int) -> int:
    try:
        return int(d.args[index])
    except (IndexError, ValueError):
        raise VpcmeshError.at(d.at, f"'{d.name}' needs a number") from None


def _key_text(old: OldServer, d: Directive, given: Path | None) -> None:
    if d.inline is not None:
        text = d.inline
    else:
        path = given or (old.conf.parent / d.args[0] if d.args else old.conf)
        text = read_bytes(path, "missing: give the key file with --tls-key FILE").decode(
            errors="replace")
    if STATIC_KEY not in text:
        raise VpcmeshError.at(d.at, "its key is not an OpenVPN static key"
                                    " (`openvpn --genkey secret ta.key`)")
    old.tls_key, old.tls_key_at = text, d.at


def _tls_auth(old: OldServer, d: Directive, given: Path | None, direction: str | None) -> None:
    if direction != "0":
        raise VpcmeshError.at(d.at, "vpcmesh's hub uses key direction 0 and its peers 1;"
                                    " set `tls-auth ta.key 0` here and `tls-auth ta.key 1` on"
                                    " the clients first")
    _key_text(old, d, given)
    old.tls_auth = True
    old.note(d, "compat.tls_auth: true, the key to secrets/mesh.sops.yaml (encrypted)")


def _push(old: OldServer, d: Directive) -> None:
    words = d.args[0].split() if d.args else []
    if words[:1] == ["route"]:
        old.pushed.append((network(tuple(words[1:]), d.at), d.at))
        old.note(d, "a subnet of the hub, or of the client whose iroute it is")
    elif words[:1] == ["comp-lzo"] or words[:1] == ["topology"]:
        old.note(d, "vpcmesh's hub pushes what it needs")
    elif words[:1] == ["dhcp-option"]:
        old.note(d, "not carried over: vpcmesh puts the mesh's names in each node's"
                    " /etc/hosts; clients keep their own resolver", Severity.WARNING)
    else:
        old.note(d, "not mappable: vpcmesh pushes only routes; remove it from a copy of the"
                    " file (and from the clients' needs) and import again", Severity.ERROR)


def _apply(old: OldServer, d: Directive, tls_key: Path | None,
           key_direction: str | None) -> None:
    handlers: dict[str, Callable[[], None]] = {
        "port": lambda: setattr(old, "port", _integer(d, 0)),
        "proto": lambda: _proto(old, d),
        "dev": lambda: _dev(d),
        "server": lambda: setattr(old, "network", network(d.args, d.at)),
        "keepalive": lambda: setattr(old, "keepalive", (_integer(d, 0), _integer(d, 1))),
        "max-clients": lambda: setattr(old, "max_clients", _integer(d, 0)),
        "client-to-client": lambda: setattr(old, "client_to_client", True),
        "route": lambda: old.routes.append((network(d.args, d.at), d.at)),
        "push": lambda: _push(old, d),
        "tls-auth": lambda: _tls_auth(old, d, tls_key, d.args[1] if len(d.args) > 1
                                      else key_direction),
        "tls-crypt": lambda: _key_text(old, d, tls_key),
        "comp-lzo": lambda: setattr(old, "comp_lzo", True),
        "cipher": lambda: _cipher(old, d),
        "data-ciphers-fallback": lambda: _cipher(old, d),
        "auth": lambda: setattr(old, "auth", None if d.args[:1] == ("SHA1",) else
                                (d.args[0] if d.args else None)),
        "key-direction": lambda: None,
    }
    if d.name in handlers:
        handlers[d.name]()
        if d.name in TARGETS:
            old.note(d, TARGETS[d.name])
    elif d.name == "topology":
        old.net30 = d.args[:1] != ("subnet",) and d.args[:1] != ("p2p",)
        old.note(d, SAME["topology"])
    elif d.name in ("client-config-dir", "ifconfig-pool-persist"):
        path = old.conf.parent / d.args[0] if d.args else None
        setattr(old, "ccd" if d.name == "client-config-dir" else "ipp", path)
        old.note(d, SAME[d.name])
    elif d.name in SAME:
        old.note(d, f"left out: {SAME[d.name]}")
    elif d.name in ("data-ciphers", "ncp-ciphers", "tls-cipher", "reneg-sec", "tun-mtu",
                    "mssfix", "fragment", "link-mtu", "hand-window", "tran-window"):
        old.note(d, "not carried over: vpcmesh's defaults apply (README, render)",
                 Severity.WARNING)
    elif d.name in REFUSED:
        old.note(d, f"not mappable: {REFUSED[d.name]}", Severity.ERROR)
    else:
        old.note(d, "not an option vpcmesh knows how to carry over; remove it from a copy of"
                    " the file if it is not needed and import again", Severity.ERROR)


def _proto(old: OldServer, d: Directive) -> None:
    proto = (d.args or ("udp",))[0]
    if proto in ("udp", "udp4"):
        old.proto = "udp"
    elif proto in ("tcp", "tcp4", "tcp-server", "tcp4-server"):
        old.proto = "tcp"
    else:
        raise VpcmeshError.at(d.at, f"proto {proto}: vpcmesh's tunnels run over IPv4 udp or"
                                    " tcp")


def _dev(d: Directive) -> None:
    if not d.args or not d.args[0].startswith("tun"):
        raise VpcmeshError.at(d.at, "vpcmesh routes (dev tun); a bridged dev tap mesh cannot"
                                    " be imported")


def _cipher(old: OldServer, d: Directive) -> None:
    cipher = d.args[0].upper() if d.args else ""
    if cipher in CBC:
        old.cipher_fallback = cipher
        old.note(d, f"compat.cipher_fallback: {cipher} (clients negotiate AES-256-GCM)")
    elif cipher not in AEAD:
        raise VpcmeshError.at(d.at, f"cipher {cipher or '?'}: vpcmesh can fall back to"
                                    f" {', '.join(CBC)} only")


def read_server(conf: Path, tls_key: Path | None, ccd: Path | None,
                ipp: Path | None) -> OldServer:
    old = OldServer(conf)
    directives = parse(read_bytes(conf), str(conf))
    direction = next((d.args[0] for d in directives if d.name == "key-direction" and d.args),
                     None)
    for d in directives:
        try:
            _apply(old, d, tls_key, direction)
        except VpcmeshError as exc:
            old.problems.extend(exc.problems)
    if old.network is None:
        old.problems.append(Problem(Location(str(conf)), "has no `server NETWORK NETMASK`"
                                    " line: vpcmesh imports a routed OpenVPN server"))
    if not any(d.name in ("tls-auth", "tls-crypt") for d in directives):
        old.problems.append(Problem(Location(str(conf)), "has neither tls-auth nor tls-crypt:"
                                    " vpcmesh always uses one; add `tls-auth ta.key 0` to the"
                                    " old setup first"))
    if old.proto == "udp" and not any(d.name == "explicit-exit-notify" for d in directives):
        timeout = old.keepalive[1] if old.keepalive else 120
        old.problems.append(Problem(Location(str(conf)), "has no explicit-exit-notify: when the"
                                    " old server stops, its clients notice only at their"
                                    f" ping-restart (up to {timeout} s here); add"
                                    " `explicit-exit-notify 1` and restart it (a reconnect)"
                                    " before the cut-over, or accept that wait once", WARN))
    old.ccd = ccd or old.ccd
    old.ipp = ipp or old.ipp
    return old
