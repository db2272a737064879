"""`vpcmesh pki rotate signing-key`: a new bundle-signing key, with no flag day.

The outgoing key signs a new link of mesh/signing-keys.json naming the new key; the new key
replaces it in secrets/mesh.sops.yaml and mesh/signing.pub; the render that follows signs
every manifest and removal notice again with it and puts the chain beside each. Each agent
follows the chain on its next pull (agent/trust.py) and trusts the old key no more, however
many rotations it slept through. The old private key is gone from the repository's head."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from vpcmesh import clock
from vpcmesh.bundle import keychain
from vpcmesh.bundle.manifest import format_time
from vpcmesh.compiler.lock import writing
from vpcmesh.compiler.pipeline import Request, build, load, snapshot
from vpcmesh.fsio import replace_file
from vpcmesh.model.layout import ADMIN_SECRETS, SIGNING_CHAIN, SIGNING_PUB

log = logging.getLogger(__name__)


def rotate_signing_key(root: Path) -> int:
    from vpcmesh.pki import x509 as pki
    from vpcmesh.pki.admin import admin_payload, read_admin_secrets, signing_key
    from vpcmesh.secrets import sops

    with writing(root):
        loaded = load(snapshot(root))
        store, mesh = loaded.store, loaded.plan.mesh
        admin = read_admin_secrets(loaded.snapshot, store)
        outgoing = signing_key(admin, store)
        private_pem, public_pem = pki.signing_keypair()
        incoming = keychain.load_keys(public_pem.encode(), "the new key")
        chain = (store.chain or keychain.Chain(mesh.name, ())).extend(
            incoming, format_time(clock.now()), outgoing.sign)
        sealed = sops.encrypt(admin_payload(admin.ca_key, admin.tls_key, private_pem,
                                            admin.tls_crypt_v2_key),
                              list(mesh.admins), ADMIN_SECRETS)
        # The secret first: cut short after it, the render refuses to sign with a key
        # mesh/signing.pub lacks (admin.signing_key), and says to start again from git.
        replace_file(root / ADMIN_SECRETS, sealed, durable=True)
        replace_file(root / SIGNING_CHAIN, chain.to_bytes(), durable=True)
        replace_file(root / SIGNING_PUB, keychain.to_pem(incoming), durable=True)
        built = build(root, snapshot(root), Request(require_signing=True))
    for warning in built.warnings:
        click.echo(str(warning), err=True)
    click.echo(f"rotated the bundle-signing key: {keychain.key_id(outgoing.public_key())}"
               f" -> {keychain.key_id(incoming[0])} (link {chain.version} of {SIGNING_CHAIN});"
               f" every manifest is signed again: commit mesh/, secrets/ and build/, then"
               f" publish. Agents move to the new key at their next pull.", err=True)
    return 0
