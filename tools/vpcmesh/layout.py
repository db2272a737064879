"""Where things live in a mesh repository (paths relative to its root)."""

MESH_FILE = "mesh/mesh.yaml"
STATE_FILE = "mesh/state.yaml"
NODES_DIR = "nodes"
SECRETS_DIR = "secrets"
BUILD_DIR = "build"
DNS_DIR = "dns"
