"""The files of a node's bundle (`build/<hostname>/`), named once for both programs."""

MANIFEST = "manifest.json"
SIGNATURE = "manifest.json.sig"
SECRETS = "secrets.sops.yaml"  # the node's private key and TLS key, for its age key only
OPENVPN_PREFIX = "openvpn/"  # installed under /etc/openvpn/{server,client}/
# The hub's files that OpenVPN reads again on its own (a ccd file when its spoke connects,
# the CRL at every connection): changing them needs no restart.
CCD_DIR = "ccd"
CRL = "crl.pem"
SYSCTL = "sysctl.conf"
HOSTS = "hosts"  # spliced into /etc/hosts between BEGIN/END lines
SYSTEMD_DROPIN = "systemd/vpcmesh.conf"
# In the SOPS file: the files the node writes next to its OpenVPN config, by name.
SECRET_FILES_KEY = "files"


def dropin_path(unit: str) -> str:
    """Where the bundle's systemd drop-in goes for `unit`, relative to the root."""
    return f"etc/systemd/system/{unit}.service.d/vpcmesh.conf"
