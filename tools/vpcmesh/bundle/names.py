"""The files of a node's bundle (`build/<hostname>/`), named once for both programs."""

MANIFEST = "manifest.json"
SIGNATURE = "manifest.json.sig"
SECRETS = "secrets.sops.yaml"  # the node's private key and TLS key, for its age key only
OPENVPN_PREFIX = "openvpn/"  # installed under /etc/openvpn/{server,client}/
# The hub's files that OpenVPN reads again on its own (a ccd file when its spoke connects,
# the CRL at every connection): changing them needs no restart.
CCD_DIR = "ccd"
# A hub of a mesh with two or more hubs is also a client of every other hub: those tunnels'
# files go to /etc/openvpn/client/, next to nothing else of this mesh.
LINK_PREFIX = "openvpn-client/"
CRL = "crl.pem"
CA = "ca.crt"  # the CAs a node trusts: one, or two while the CA rotates
SYSCTL = "sysctl.conf"
HOSTS = "hosts"  # spliced into /etc/hosts between BEGIN/END lines
SYSTEMD_DROPIN = "systemd/vpcmesh.conf"
# Forwarding rules between the tunnel and the node's subnets, which the agent puts first in
# Docker's DOCKER-USER chain (agent/firewall.py); installed as /etc/vpcmesh/firewall-MESH.nft.
FIREWALL = "firewall.nft"
# Service ACLs (README, "Least privilege"): an nftables table of the mesh's own, which the
# agent loads as one transaction; installed as /etc/vpcmesh/acl-MESH.nft. Only in meshes that
# restrict something (acl.default deny, or a service's allow list).
ACL = "acl.nft"
# mesh.yaml dns.resolver: vpcmesh's resolver (unbound), one more unit the agent runs. Its files
# go to /etc/vpcmesh/resolver-MESH/ and its template unit to /etc/systemd/system/.
RESOLVER_PREFIX = "resolver/"
RESOLVER_CONFIG = "unbound.conf"
RESOLVER_SERVICE = "systemd/vpcmesh-resolver@.service"
# A spoke's OpenVPN `up` script: where systemd-resolved runs, it routes the inner domain (and
# only it) to the hub's resolver over this tunnel.
DNS_UP = "vpcmesh-dns.sh"
FLEET = "fleet.json"  # the mesh as published (bundle/fleet.py); kept in the agent's state dir
# A hub's client-connect/disconnect script: it records what each spoke reports (its
# UV_VPCMESH_* peer info) under PEERS_DIR, next to the server config, for `vpcmesh status`.
PEER_SCRIPT = "vpcmesh-peer.sh"
# vpn.tls_crypt_v2: a hub's check of a connecting node's tls-crypt-v2 key, before any TLS,
# against the serials the CRL lists (kept beside it as text, which OpenVPN's scripts read).
TC2_VERIFY = "vpcmesh-tc2-verify.sh"
TC2_REVOKED = "vpcmesh-tc2-revoked"
TC2_SERVER_KEY = "tc2-server.key"  # in a hub's secrets: its own tls-crypt-v2 server key
PEERS_DIR = "vpcmesh-peers"
# A spoke's client.conf includes this file, which the agent writes (never the compiler):
# `setenv UV_VPCMESH_*` lines that push-peer-info sends to the hub at every connection.
REPORT = "vpcmesh-report.conf"
# In place of a removed node's bundle: a notice, signed with the mesh's key, that it left
# the mesh (bundle/removal.py); its agent then uninstalls itself.
REMOVAL = "removed.json"
# Beside every manifest once the mesh has rotated its signing key: the chain of key sets an
# agent follows before it verifies (bundle/keychain.py). Not listed in the manifest: it is
# what tells the agent which key the manifest is signed with.
SIGNING_KEYS = "signing-keys.json"
REMOVAL_SIGNATURE = "removed.json.sig"
# In the SOPS file: the files the node writes next to its OpenVPN config, by name.
SECRET_FILES_KEY = "files"


def dropin_path(unit: str) -> str:
    """Where the bundle's systemd drop-in goes for `unit`, relative to the root."""
    return f"etc/systemd/system/{unit}.service.d/vpcmesh.conf"


def tc2_client_key(hub: str) -> str:
    """In a node's secrets: its tls-crypt-v2 client key for `hub`."""
    return f"tc2-{hub}.key"


def tc2_next_client_key(hub: str) -> str:
    """While the server keys rotate: its client key for `hub`'s next server key."""
    return f"tc2-{hub}.next.key"


def acl_table(mesh: str) -> str:
    """The nftables table (family inet) of the mesh's service ACLs."""
    return f"vpcmesh-{mesh}"


def resolver_unit(mesh: str) -> str:
    return f"vpcmesh-resolver@{mesh}"


def resolver_dir(mesh: str) -> str:
    """Where the resolver's files go, relative to the root."""
    return f"etc/vpcmesh/resolver-{mesh}"


def link_instance(mesh: str, hub: str, preferred: bool) -> str:
    """The openvpn-client@ instance (and config name) of a tunnel to `hub`: the preferred
    hub's keeps the mesh's name, so a one-hub mesh's unit stays what it was."""
    return mesh if preferred else f"{mesh}-{hub}"
