"""Carrying out a PkiPlan: new certificates, CRL and encrypted keys, all in memory first.

`issue` is quick and pure: certificates and the CRL are ready at once. Sealing the new
private keys with sops is slow (one process per node), so `Sealing` runs those calls on a
pool while the caller goes on with other work (staging bundles), and hands back every
encrypted file, or every failure, when asked."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

from vpcmesh.bundle import names
from vpcmesh.errors import Problem, VpcmeshError
from vpcmesh.model.cache import ParseCache, key
from vpcmesh.model.layout import ADMIN_SECRETS, CRL_FILE, issued_cert, node_secrets
from vpcmesh.model.snapshot import Snapshot
from vpcmesh.model.types import Node
from vpcmesh.pki import tlscrypt
from vpcmesh.pki import x509 as pki
from vpcmesh.pki.admin import AdminSecrets, payload_of
from vpcmesh.pki.carotation import MOVING
from vpcmesh.pki.decisions import PkiPlan, Reason, tls_crypt_v2_keys
from vpcmesh.pki.store import CERT_SHA256, TLS_CRYPT_V2, Store
from vpcmesh.pki.tc2rotation import Tc2State
from vpcmesh.planning.addresses import Plan
from vpcmesh.secrets import sops

Changes = dict[str, bytes | None]  # repo-relative path -> new bytes, or None to delete
TLS_KEY_FILE = "tls.key"
Progress = Callable[[int, int], None]  # (done, total): the caller decides how to show it


def node_payload(hostname: str, key: pki.PrivateKey, tls_key: str, cert_sha256: str,
                 tls_crypt_v2: dict[str, str] | None = None, v2_keys: str = "") -> dict[str, Any]:
    """File names are what the node installs next to its OpenVPN config. With tls-crypt-v2
    the node gets its own keys and not the shared one."""
    shared = {} if tls_crypt_v2 else {TLS_KEY_FILE: tls_key}
    out = {"files": {f"{hostname}.key": pki.key_pem(key), **shared, **(tls_crypt_v2 or {})},
           CERT_SHA256: cert_sha256}
    if v2_keys:
        out[TLS_CRYPT_V2] = v2_keys
    return out


class _TlsCryptV2:
    """The tls-crypt-v2 keys of the nodes this render issues: each hub's server key derived
    from the admins' secret (made now if the mesh has none yet), a client key per hub."""

    def __init__(self, plan: Plan, admin: AdminSecrets, state: Tc2State) -> None:
        self.plan, self.on, self.state = plan, plan.mesh.vpn.tls_crypt_v2, state
        self.created = self.on and admin.tls_crypt_v2_key is None
        self.master = admin.tls_crypt_v2_key or tlscrypt.new_master()
        # While they rotate, the next generation derives from a new secret (read_admin_secrets
        # checks it is there): whoever read the old one learns nothing of the new keys.
        self.next_master = admin.next_tls_crypt_v2_key or ""
        self._servers: dict[tuple[str, int], str] = {}

    def server(self, hub: str, generation: int) -> str:
        if (hub, generation) not in self._servers:
            master = self.master if generation == self.state.generation else self.next_master
            self._servers[hub, generation] = tlscrypt.server_key(master, hub, generation)
        return self._servers[hub, generation]

    def files(self, node: Node, serial: int) -> tuple[dict[str, str], str]:
        if not self.on:
            return {}, ""
        out = {names.TC2_SERVER_KEY: self.server(node.hostname, self.state.server_generation)
               } if node.is_hub else {}
        meta = tlscrypt.metadata(node.hostname, serial)
        for _, hub in self.plan.links(node):
            for name, generation in zip((names.tc2_client_key, names.tc2_next_client_key),
                                        self.state.client_generations):
                out[name(hub.hostname)] = tlscrypt.new_client_key(
                    self.server(hub.hostname, generation), meta)
        return out, tls_crypt_v2_keys(self.plan, node.hostname, self.state)


@dataclass(frozen=True)
class Issued:
    public: Changes  # new certificates and CRL, and what is deleted: ready now
    jobs: dict[str, Callable[[], bytes]]  # path -> the sops call that makes its bytes
    # What vpcmesh already knows of each file it encrypts (recipients, readable fields), so
    # reading it back needs no scan.
    readable: dict[str, tuple[list[str], dict[str, str]]]

    def changes(self, sealed: dict[str, bytes], cache: ParseCache) -> Changes:
        for rel, (recipients, fields) in self.readable.items():
            cache.put(key("sops", sealed[rel]), [recipients, fields])
        return {**self.public, **sealed}


def issue(snap: Snapshot, plan: Plan, store: Store, actions: PkiPlan, admin: AdminSecrets,
          now: dt.datetime) -> Issued:
    settings, admins = plan.mesh.pki, list(plan.mesh.admins)
    nodes = {n.hostname: n for n in plan.nodes}
    public: Changes = {}
    readable: dict[str, tuple[list[str], dict[str, str]]] = {}
    jobs: dict[str, Callable[[], bytes]] = {}
    sops_binary = sops.binary()  # once for the whole pool
    v2 = _TlsCryptV2(plan, admin, store.tc2)
    for host in actions.issue:
        node = nodes[host]
        # With two or more hubs, a hub is also a client of the others: both usages.
        made = pki.issue(admin.ca_key, store.ca, host, node.is_hub, settings.algorithm,
                         settings.cert_validity_days, now,
                         client=not node.is_hub or len(plan.hubs) > 1)
        pem = pki.cert_pem(made.cert).encode()
        if store.rotation is not None and store.rotation.step == MOVING:
            # Sent with the leaf, so a peer that trusts only the old CA still accepts it; it
            # stays until the node's next renewal (peers that trust the new CA skip it).
            pem += store.rotation.cross_pem
        public[issued_cert(host)] = pem
        snap.cache.put(key("signed", pem, store.ca_pem), True)
        payload = node_payload(host, made.key, admin.tls_key, pki.fingerprint(made.cert),
                               *v2.files(node, made.cert.serial_number))
        recipients = [*admins, node.age_recipient]
        readable[node_secrets(host)] = (sorted(set(recipients)), {
            k: payload[k] for k in (CERT_SHA256, TLS_CRYPT_V2) if k in payload})
        jobs[node_secrets(host)] = partial(sops.encrypt, payload, recipients, node_secrets(host),
                                           sops_binary)
    for host in actions.rewrap:
        wanted = {*admins, nodes[host].age_recipient}
        have = store.secrets[host].recipients
        rel = node_secrets(host)
        jobs[rel] = partial(sops.rotate, snap.read(rel), rel, sorted(wanted - have),
                            sorted(have - wanted), sops_binary)
    if actions.admin_rewrap:
        have, wanted = store.admin_recipients, set(admins)
        jobs[ADMIN_SECRETS] = partial(sops.rotate, snap.read(ADMIN_SECRETS), ADMIN_SECRETS,
                                      sorted(wanted - have), sorted(have - wanted), sops_binary)
    if v2.created and actions.issue:  # after any rewrap: a fresh encryption to the admins
        jobs[ADMIN_SECRETS] = partial(sops.encrypt, payload_of(
            replace(admin, tls_crypt_v2_key=v2.master)), admins, ADMIN_SECRETS, sops_binary)
    if actions.crl:
        revoked = {r.serial_number: r.revocation_date_utc for r in store.crl or []}
        revoked.update({store.certs[h].serial_number: now for h in actions.revoke})
        number = pki.crl_number(store.crl) + 1 if store.crl is not None else 1
        crl = pki.make_crl(admin.ca_key, store.ca, revoked, number,
                           settings.crl_validity_days, now)
        public[CRL_FILE] = pki.crl_pem(crl).encode()
    for host, decision in actions.revoke.items():
        if decision.reason is Reason.NODE_REMOVED:
            public[issued_cert(host)] = None
            public[node_secrets(host)] = None
    return Issued(public, jobs, readable)


class Sealing:
    """The sops calls of an Issued, on a pool sized to the machine, from `with` on."""

    def __init__(self, jobs: dict[str, Callable[[], bytes]],
                 progress: Progress | None = None) -> None:
        self.jobs, self.progress = jobs, progress
        self.pool: ThreadPoolExecutor | None = None
        self.futures: dict[str, Future[bytes]] = {}

    def __enter__(self) -> Sealing:
        self.pool = ThreadPoolExecutor(max_workers=max(1, os.cpu_count() or 1))
        self.futures = {path: self.pool.submit(job) for path, job in sorted(self.jobs.items())}
        return self

    def results(self) -> dict[str, bytes]:
        """Every sealed file; raises with every failure, not the first."""
        results: dict[str, bytes] = {}
        problems: list[Problem] = []
        for done, (path, future) in enumerate(self.futures.items(), start=1):
            try:
                results[path] = future.result()
            except VpcmeshError as exc:
                problems.extend(exc.problems)
            if self.progress is not None:
                self.progress(done, len(self.futures))
        if problems:
            raise VpcmeshError(problems)
        return results

    def __exit__(self, *exc: object) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
