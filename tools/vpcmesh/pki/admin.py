"""The mesh's own secrets (secrets/mesh.sops.yaml): the CA key, the OpenVPN TLS key, the
bundle-signing key and the secret the hubs' tls-crypt-v2 server keys are derived from,
encrypted to the admins."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from vpcmesh.bundle import keychain
from vpcmesh.errors import VpcmeshError
from vpcmesh.model.layout import ADMIN_SECRETS, CA_CERT, ROTATION_CA, SIGNING_PUB, TC2_STATE
from vpcmesh.model.snapshot import Snapshot
from vpcmesh.pki import x509 as pki
from vpcmesh.pki.carotation import INTRODUCED
from vpcmesh.pki.store import Store
from vpcmesh.secrets import sops, sopsfile

SET_ADMIN_KEY = ("set SOPS_AGE_KEY_FILE to the age key file of one of the admins in"
                 " mesh/mesh.yaml")


@dataclass(frozen=True)
class AdminSecrets:
    ca_key: pki.PrivateKey
    tls_key: str
    signing_key: str
    tls_crypt_v2_key: str | None = None  # hex; meshes from before tls-crypt-v2 have none
    # While a CA rotation is introduced: the new CA's key, which issues from the move on.
    next_ca_key: pki.PrivateKey | None = None
    # While the hubs' tls-crypt-v2 server keys rotate: the secret the next ones derive from.
    next_tls_crypt_v2_key: str | None = None


def signing_key(admin: AdminSecrets, store: Store | None = None) -> Ed25519PrivateKey:
    """The bundle-signing key; with `store`, checked to be one the agents trust (a rotation
    cut short could otherwise sign every bundle with a key no VM knows)."""
    key = pki.load_key(admin.signing_key)
    if not isinstance(key, Ed25519PrivateKey):
        raise VpcmeshError.at(ADMIN_SECRETS, "signing_key is not an Ed25519 key")
    if store is not None and store.signing_pub and not any(
            keychain.raw(k) == keychain.raw(key.public_key())
            for k in keychain.load_keys(store.signing_pub, SIGNING_PUB)):
        raise VpcmeshError.at(ADMIN_SECRETS, f"its signing_key is not in {SIGNING_PUB} (an"
                                             " interrupted 'vpcmesh pki rotate signing-key'?);"
                                             " restore mesh/ and secrets/ from git and run it"
                                             " again")
    return key


def admin_payload(ca_key: pki.PrivateKey, tls_key: str, signing_key: str,
                  tls_crypt_v2_key: str | None = None,
                  next_ca_key: pki.PrivateKey | None = None,
                  next_tls_crypt_v2_key: str | None = None) -> dict[str, str]:
    out = {"ca_key": pki.key_pem(ca_key), "tls_key": tls_key, "signing_key": signing_key}
    if tls_crypt_v2_key is not None:
        out["tls_crypt_v2_key"] = tls_crypt_v2_key
    if next_ca_key is not None:
        out["next_ca_key"] = pki.key_pem(next_ca_key)
    if next_tls_crypt_v2_key is not None:
        out["next_tls_crypt_v2_key"] = next_tls_crypt_v2_key
    return out


def payload_of(admin: AdminSecrets) -> dict[str, str]:
    return admin_payload(admin.ca_key, admin.tls_key, admin.signing_key,
                         admin.tls_crypt_v2_key, admin.next_ca_key, admin.next_tls_crypt_v2_key)


def admin_key_configured() -> bool:
    if any(os.environ.get(v) for v in ("SOPS_AGE_KEY_FILE", "SOPS_AGE_KEY", "SOPS_AGE_KEY_CMD")):
        return True
    config = Path(os.environ.get("XDG_CONFIG_HOME", Path.home() / ".config"))
    return (config / "sops/age/keys.txt").is_file()


def read_admin_secrets(snap: Snapshot, store: Store) -> AdminSecrets:
    data = snap.read(ADMIN_SECRETS)
    sopsfile.metadata(data, ADMIN_SECRETS)  # a clear error for a file that is not SOPS at all
    secrets = sops.decrypt(data, ADMIN_SECRETS)
    try:
        v2, upcoming = secrets.get("tls_crypt_v2_key"), secrets.get("next_ca_key")
        next_v2 = secrets.get("next_tls_crypt_v2_key")
        admin = AdminSecrets(pki.load_key(secrets["ca_key"]), str(secrets["tls_key"]),
                             str(secrets["signing_key"]), str(v2) if v2 is not None else None,
                             pki.load_key(upcoming) if upcoming is not None else None,
                             str(next_v2) if next_v2 is not None else None)
    except (KeyError, ValueError, TypeError):
        raise VpcmeshError.at(ADMIN_SECRETS, "does not hold ca_key, tls_key and signing_key;"
                                             " restore it from git") from None
    if not pki.public_matches(admin.ca_key, store.ca):
        raise VpcmeshError.at(ADMIN_SECRETS, f"its CA key does not match {CA_CERT}; restore"
                                             " both from the same commit")
    introduced = store.rotation is not None and store.rotation.step == INTRODUCED
    if introduced != (admin.next_ca_key is not None) or (
            store.rotation is not None and admin.next_ca_key is not None
            and not pki.public_matches(admin.next_ca_key, store.rotation.other)):
        raise VpcmeshError.at(ADMIN_SECRETS, f"its next_ca_key does not go with {ROTATION_CA}"
                                             " (an interrupted 'vpcmesh pki rotate ca'?);"
                                             " restore mesh/ and secrets/ from git")
    if (store.tc2.step is not None) != (admin.next_tls_crypt_v2_key is not None):
        raise VpcmeshError.at(ADMIN_SECRETS, f"its next_tls_crypt_v2_key does not go with"
                                             f" {TC2_STATE} (an interrupted 'vpcmesh pki"
                                             " rotate tls-crypt-v2'?); restore mesh/ and"
                                             " secrets/ from git")
    return admin
