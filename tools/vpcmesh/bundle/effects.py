"""What a change to a bundle does to the running OpenVPN: the one rule both programs use,
the agent to act on it and `vpcmesh plan` to say it before anything is merged."""

from __future__ import annotations

import re
from collections.abc import Iterable

from vpcmesh.bundle import names

_CCD = f"{names.OPENVPN_PREFIX}{names.CCD_DIR}/"
_CRL = f"{names.OPENVPN_PREFIX}{names.CRL}"
# A hub's list of revoked serials, which its tls-crypt-v2-verify script reads at each connection.
_TC2_REVOKED = f"{names.OPENVPN_PREFIX}{names.TC2_REVOKED}"


def reread(rel: str) -> bool:
    """The CRL, and a hub's list of revoked serials: read again at each handshake (or
    connection), so a new one changes nothing that runs."""
    return rel in (_CRL, f"{names.LINK_PREFIX}{names.CRL}", _TC2_REVOKED)


def ca_list(rel: str, role: str) -> bool:
    """The CAs a TLS client trusts (a spoke, or a hub's tunnels to other hubs): OpenVPN reads
    them at start only, and a change alone waits for the next one. Such a change is a CA
    rotation's first or last step (pki/carotation.py), where the CRL, in force at once,
    decides meanwhile. A hub's server takes its new CA at the last step, by a restart."""
    return rel == f"{names.LINK_PREFIX}{names.CA}" or (
        role != "hub" and rel == f"{names.OPENVPN_PREFIX}{names.CA}")


def applies_in_place(rel: str, role: str) -> bool:
    """A file whose change alone restarts nothing on a node of this role: the CRL, a hub's
    ccd files, a client's list of CAs."""
    return reread(rel) or ca_list(rel, role) or (role == "hub" and rel.startswith(_CCD))


def openvpn_changed(changed: Iterable[str]) -> bool:
    """`changed`: bundle-relative paths that are added, changed or removed."""
    return any(rel.startswith(names.OPENVPN_PREFIX) for rel in changed)


def needs_restart(role: str, changed: Iterable[str]) -> bool:
    """Every node reads its CRL again at each handshake, and a hub a spoke's ccd file when
    that spoke connects: changes to those alone need no restart, nor does a new list of
    CAs alone. Any other change to OpenVPN's files does (on a spoke, only that spoke)."""
    ovpn = [rel for rel in changed if rel.startswith(names.OPENVPN_PREFIX)
            and not reread(rel) and not ca_list(rel, role)]
    return any(role != "hub" or not rel.startswith(_CCD) for rel in ovpn)


# The line of a hub's ccd file (rendering/templates/ccd.j2) that names the spoke's serial.
SERIAL_LINE = re.compile(rb"^# certificate serial (\d+)$", re.M)


def serial_only(old: bytes, new: bytes) -> bool:
    """A spoke's ccd file whose only change is its certificate's serial (it was renewed):
    the hub keeps it to cut the spoke off if that serial is revoked, but the spoke need not
    reconnect for it; it restarts with its new certificate by itself, and asking it too
    would make it reconnect twice (first with the old one, if the hub pulls first)."""
    return old != new and SERIAL_LINE.sub(b"", old) == SERIAL_LINE.sub(b"", new)


def ccd_spoke(rel: str) -> str | None:
    """The spoke a hub's bundle file is the ccd file of, or None."""
    return rel.removeprefix(_CCD) if rel.startswith(_CCD) else None


def resolver_changed(changed: Iterable[str]) -> bool:
    """The agent restarts the resolver (and only it) for these: OpenVPN keeps running."""
    return any(rel.startswith(names.RESOLVER_PREFIX) or rel == names.RESOLVER_SERVICE
               for rel in changed)
