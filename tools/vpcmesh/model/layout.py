"""Where things live in a mesh repository (paths relative to its root)."""

MESH_FILE = "mesh/mesh.yaml"
STATE_FILE = "mesh/state.yaml"
NODES_DIR = "nodes"
SECRETS_DIR = "secrets"
BUILD_DIR = "build"
DNS_DIR = "dns"
PKI_DIR = "mesh/pki"
CA_CERT = "mesh/pki/ca.crt"
CRL_FILE = "mesh/pki/crl.pem"
ISSUED_DIR = "mesh/pki/issued"
# While the CA rotates (pki/rotation.py): the CA that is not issuing, its CRL, the new CA's key
# certified by the old one, and which step the rotation is at.
ROTATION_DIR = "mesh/pki/rotation"
ROTATION_CA = "mesh/pki/rotation/ca.crt"
ROTATION_CRL = "mesh/pki/rotation/crl.pem"
ROTATION_CROSS = "mesh/pki/rotation/cross.crt"
ROTATION_STEP = "mesh/pki/rotation/step.json"
# The generation of the hubs' tls-crypt-v2 server keys, and a rotation under way
# (pki/tc2rotation.py); no file: generation 0, never rotated.
TC2_STATE = "mesh/pki/tls-crypt-v2.json"
SIGNING_PUB = "mesh/signing.pub"  # the key set agents trust (one key, but while rotating)
# Each rotation of the bundle-signing key, signed by the key before (bundle/keychain.py).
SIGNING_CHAIN = "mesh/signing-keys.json"
ADMIN_SECRETS = "secrets/mesh.sops.yaml"
NODE_SECRETS_DIR = "secrets/nodes"
SOPS_CONFIG = ".sops.yaml"


def issued_cert(hostname: str) -> str:
    return f"{ISSUED_DIR}/{hostname}.crt"


def node_secrets(hostname: str) -> str:
    return f"{NODE_SECRETS_DIR}/{hostname}.sops.yaml"

# What a render reads: the repository's inputs (build/ and .vpcmesh-* are its outputs).
INPUTS = ("mesh", "nodes", "secrets", SOPS_CONFIG)
