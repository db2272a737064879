"""`vpcmesh pki rotate signing-key|ca|tls-crypt-v2`: new keys with no flag day.

The signing key:

The outgoing key signs a new link of mesh/signing-keys.json naming the new key; the new key
replaces it in secrets/mesh.sops.yaml and mesh/signing.pub; the render that follows signs
every manifest and removal notice again with it and puts the chain beside each. Each agent
follows the chain on its next pull (agent/trust.py) and trusts the old key no more, however
many rotations it slept through. The old private key is gone from the repository's head."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import click

from vpcmesh import clock
from vpcmesh.bundle import keychain
from vpcmesh.bundle.manifest import format_time
from vpcmesh.compiler.lock import writing
from vpcmesh.compiler.pipeline import Loaded, Request, build, load, snapshot
from vpcmesh.errors import VpcmeshError
from vpcmesh.fsio import replace_file
from vpcmesh.model.layout import (
    ADMIN_SECRETS,
    CA_CERT,
    CRL_FILE,
    NODES_DIR,
    ROTATION_CA,
    ROTATION_CRL,
    ROTATION_CROSS,
    ROTATION_DIR,
    ROTATION_STEP,
    SIGNING_CHAIN,
    SIGNING_PUB,
    TC2_STATE,
)
from vpcmesh.pki import tc2rotation
from vpcmesh.pki.carotation import INTRODUCED, MIN_WAIT, MOVING, step_bytes

if TYPE_CHECKING:
    from vpcmesh.pki.admin import AdminSecrets

log = logging.getLogger(__name__)


def rotate_signing_key(root: Path) -> int:
    from vpcmesh.pki import x509 as pki
    from vpcmesh.pki.admin import payload_of, read_admin_secrets, signing_key
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
        sealed = sops.encrypt(payload_of(replace(admin, signing_key=private_pem)),
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


def rotate_ca(root: Path, no_wait: bool = False) -> int:
    """One step of the CA rotation each time it runs (pki/carotation.py): introduce, move,
    retire; a step waits until the one before has had time to reach every VM."""
    from vpcmesh.pki.admin import payload_of, read_admin_secrets

    with writing(root):
        loaded = load(snapshot(root), Request(renew=_all_nodes(root)))
        store, now = loaded.store, loaded.now
        rotation = store.rotation
        if rotation is not None and not no_wait and now - rotation.since < MIN_WAIT:
            raise VpcmeshError.at(ROTATION_STEP, f"the CA rotation became '{rotation.step}' at"
                                  f" {format_time(rotation.since)}, less than"
                                  f" {MIN_WAIT.seconds // 3600} hour ago: every VM must have"
                                  " pulled that step first (on a hub, `vpcmesh status`: every"
                                  " node in sync); run this again later, or with --no-wait")
        admin = read_admin_secrets(loaded.snapshot, store)
        renew: tuple[str, ...]
        if rotation is None:
            step, renew = _introduce(root, loaded, admin, payload_of), ()
        elif rotation.step == INTRODUCED:
            step, renew = _move(root, loaded, admin, payload_of), tuple(_all_nodes(root))
        elif store.foreign:  # a move cut short: the certificates still from the old CA
            step, renew = _move(root, loaded, admin, payload_of), tuple(sorted(store.foreign))
        else:
            step, renew = _retire(root), ()
        built = build(root, snapshot(root), Request(renew=renew, require_signing=True))
    for warning in built.warnings:
        click.echo(str(warning), err=True)
    for host, why in built.actions.issue.items():
        click.echo(f"issued {host} ({why})", err=True)
    click.echo(f"CA rotation: {step}; commit mesh/, secrets/ and build/, then publish.",
               err=True)
    return 0


def _all_nodes(root: Path) -> list[str]:
    return sorted(p.stem for p in (root / NODES_DIR).glob("*.yaml"))


def _introduce(root: Path, loaded: Loaded, admin: AdminSecrets,
               payload_of: Callable[[AdminSecrets], dict[str, str]]) -> str:
    from vpcmesh.pki import x509 as pki
    from vpcmesh.secrets import sops

    settings, store, now = loaded.plan.mesh.pki, loaded.store, loaded.now
    key, cert = pki.rollover_ca(store.ca, settings.algorithm, settings.ca_validity_days, now)
    cross = pki.cross_certify(admin.ca_key, store.ca, cert, now)
    crl = pki.make_crl(key, cert, {}, 1, settings.crl_validity_days, now)
    sealed = sops.encrypt(payload_of(replace(admin, next_ca_key=key)),
                          list(loaded.plan.mesh.admins), ADMIN_SECRETS)
    # The secret first: cut short, it does not go with mesh/pki/ and the next run says so.
    replace_file(root / ADMIN_SECRETS, sealed, durable=True)
    for rel, data in ((ROTATION_CA, pki.cert_pem(cert).encode()),
                      (ROTATION_CRL, pki.crl_pem(crl).encode()),
                      (ROTATION_CROSS, pki.cert_pem(cross).encode()),
                      (ROTATION_STEP, step_bytes(INTRODUCED, now))):
        replace_file(root / rel, data, durable=True)
    return ("introduced a new CA key (every node now trusts both CAs and holds both CRLs;"
            " nothing restarts). Once every VM has pulled it, run 'vpcmesh pki rotate ca'"
            " again to move the nodes to the new CA")


def _move(root: Path, loaded: Loaded, admin: AdminSecrets,
          payload_of: Callable[[AdminSecrets], dict[str, str]]) -> str:
    from vpcmesh.secrets import sops

    store, rotation = loaded.store, loaded.store.rotation
    assert rotation is not None
    if rotation.step == INTRODUCED:
        assert admin.next_ca_key is not None
        sealed = sops.encrypt(payload_of(replace(admin, ca_key=admin.next_ca_key,
                                                 next_ca_key=None)),
                              list(loaded.plan.mesh.admins), ADMIN_SECRETS)
        replace_file(root / ADMIN_SECRETS, sealed, durable=True)  # the old CA key is gone
        for rel, data in ((CA_CERT, rotation.other_pem), (CRL_FILE, rotation.other_crl_pem),
                          (ROTATION_CA, store.ca_pem), (ROTATION_CRL, store.crl_pem),
                          (ROTATION_STEP, step_bytes(MOVING, loaded.now))):
            replace_file(root / rel, data, durable=True)
    return ("the new CA issued every node a new certificate, sent with the old CA's"
            " certificate of the new key (each node restarts once, as for a renewal). Once"
            " every VM has pulled it, run 'vpcmesh pki rotate ca' again to retire the old CA")


def _retire(root: Path) -> str:
    for rel in (ROTATION_STEP, ROTATION_CROSS, ROTATION_CRL, ROTATION_CA):
        (root / rel).unlink()
    with contextlib.suppress(OSError):  # a file of the user's own there keeps the folder
        (root / ROTATION_DIR).rmdir()
    return ("retired the old CA: its CRL leaves every node, so a certificate it issued is"
            " refused at once; nothing restarts")


_TC2_STEPS = {
    None: (tc2rotation.INTRODUCED, "introduced the hubs' next tls-crypt-v2 server keys: every"
           " node gets a client key for them beside its own, in a second <connection> block"
           " (each node restarts once; the hubs run on). Once every VM has pulled it, run"
           " 'vpcmesh pki rotate tls-crypt-v2' again to switch the hubs"),
    tc2rotation.INTRODUCED: (tc2rotation.SWITCHED, "the hubs switch to their next server key"
                             " (each restarts once, and first tells its clients to reconnect"
                             " with their next key). Once every VM has pulled it, run 'vpcmesh"
                             " pki rotate tls-crypt-v2' again to retire the old keys"),
    tc2rotation.SWITCHED: (None, "retired the old tls-crypt-v2 keys: every node keeps only its"
                           " key for the new server keys (each node restarts once)"),
}


def rotate_tls_crypt_v2(root: Path, no_wait: bool = False) -> int:
    """One step of the rotation of the hubs' tls-crypt-v2 server keys each time it runs
    (pki/tc2rotation.py): introduce (a new secret for the next keys), switch, retire (the new
    secret replaces the old)."""
    from vpcmesh.pki import tlscrypt
    from vpcmesh.pki.admin import payload_of, read_admin_secrets
    from vpcmesh.secrets import sops

    with writing(root):
        loaded = load(snapshot(root))
        state, now = loaded.store.tc2, loaded.now
        if not loaded.plan.mesh.vpn.tls_crypt_v2:
            raise VpcmeshError.at(str(root / "mesh/mesh.yaml"), "vpn.tls_crypt_v2 is off: this"
                                  " mesh has no tls-crypt-v2 server keys to rotate (turn it"
                                  " on first: README, 'Least privilege')")
        if state.step is not None and state.since is not None and not no_wait \
                and now - state.since < MIN_WAIT:
            raise VpcmeshError.at(TC2_STATE, f"the tls-crypt-v2 rotation became '{state.step}'"
                                  f" at {format_time(state.since)}, less than"
                                  f" {MIN_WAIT.seconds // 3600} hour ago: every VM must have"
                                  " pulled that step first (on a hub, `vpcmesh status`: every"
                                  " node in sync); run this again later, or with --no-wait")
        admin = read_admin_secrets(loaded.snapshot, loaded.store)
        step, said = _TC2_STEPS[state.step]
        secret = None
        if state.step is None:
            secret = replace(admin, next_tls_crypt_v2_key=tlscrypt.new_master())
        elif state.step == tc2rotation.SWITCHED:
            secret = replace(admin, tls_crypt_v2_key=admin.next_tls_crypt_v2_key,
                             next_tls_crypt_v2_key=None)
        generation = state.generation + (state.step == tc2rotation.SWITCHED)
        files = [root / ADMIN_SECRETS, root / TC2_STATE]
        before = {p: p.read_bytes() if p.is_file() else None for p in files}
        try:
            # The secret first: cut short, it does not go with the state file, and the next
            # run that needs it says so.
            if secret is not None:
                replace_file(files[0], sops.encrypt(payload_of(secret),
                                                    list(loaded.plan.mesh.admins),
                                                    ADMIN_SECRETS), durable=True)
            replace_file(files[1], tc2rotation.Tc2State(generation, step, now).to_bytes(),
                         durable=True)
            built = build(root, snapshot(root), Request(require_signing=True))
        except VpcmeshError:
            for path, data in before.items():
                if data is None:
                    path.unlink(missing_ok=True)
                else:
                    replace_file(path, data, durable=True)
            raise
    for warning in built.warnings:
        click.echo(str(warning), err=True)
    for host, why in built.actions.issue.items():
        click.echo(f"issued {host} ({why})", err=True)
    click.echo(f"tls-crypt-v2 rotation: {said}; commit mesh/, secrets/ and build/, then"
               " publish.", err=True)
    return 0
