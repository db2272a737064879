"""The pipeline behind validate, render, sign and pki: one way through.

1. read: the repository's inputs, once, into a Snapshot (the parse cache rides along);
2. a pure middle: load and check, plan addresses, decide what the PKI must change;
3. issue and seal: certificates and CRL in memory, private keys sealed by sops on a pool
   while the bundles that do not wait for them are staged;
4. render and sign every bundle in memory;
5. write once, in a fixed order: secrets, certificates and CRL, build/ (swapped in bundle by
   bundle), .sops.yaml, and the lock file last, so an interrupted run is repeated whole."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from vpcmesh import clock
from vpcmesh.bundle import names
from vpcmesh.bundle.manifest import DIRTY
from vpcmesh.compiler import stamp
from vpcmesh.compiler.staging import Staging
from vpcmesh.errors import Location, Problem, Severity, VpcmeshError
from vpcmesh.fsio import replace_file
from vpcmesh.model.cache import ParseCache, key
from vpcmesh.model.layout import ADMIN_SECRETS, BUILD_DIR, CRL_FILE, SOPS_CONFIG, STATE_FILE
from vpcmesh.model.loading import load_inventory
from vpcmesh.model.snapshot import Snapshot, read_snapshot
from vpcmesh.model.state import State, as_data, dump_state, read_state
from vpcmesh.pki.decisions import PkiPlan, decide, expiry_problems
from vpcmesh.pki.store import Store, read_store
from vpcmesh.planning.addresses import Plan, make_plan

if TYPE_CHECKING:  # issuing (sops, keys) loads only when a render issues: not for validate
    from vpcmesh.pki.issuing import Changes, Progress


@dataclass(frozen=True)
class Request:
    """What a command asks of the PKI beyond what the files say."""

    renew: Collection[str] = ()
    revoke: Collection[str] = ()
    renew_crl: bool = False
    require_signing: bool = False  # `sign` and `publish`: a bundle left unsigned is an error


@dataclass(frozen=True)
class Loaded:
    snapshot: Snapshot
    plan: Plan
    previous: State
    store: Store
    actions: PkiPlan
    now: dt.datetime
    warnings: tuple[Problem, ...]


@dataclass(frozen=True)
class Built:
    plan: Plan
    actions: PkiPlan
    build_changed: bool
    written: tuple[str, ...] = ()
    warnings: tuple[Problem, ...] = field(default=())


def snapshot(root: Path) -> Snapshot:
    """The working tree's inputs, with this repository's parse cache."""
    return read_snapshot(root, ParseCache(root))


def load(snap: Snapshot, request: Request = Request()) -> Loaded:
    """Everything validate reports; raises VpcmeshError with every problem found."""
    inventory = load_inventory(snap)
    previous = read_state(snap)
    plan = make_plan(inventory, previous)
    store = read_store(snap)
    stale = store.problems(request.renew, request.renew_crl)
    if stale:
        raise VpcmeshError(stale)
    now = clock.now()
    actions = decide(plan, store, now, request.renew, request.revoke, request.renew_crl)
    return Loaded(snap, plan, previous, store, actions, now, inventory.warnings)


def _admin_key_missing(actions: PkiPlan) -> VpcmeshError:
    from vpcmesh.pki.admin import SET_ADMIN_KEY

    todo = [f"{h} ({why})" for h, why in actions.issue.items()]
    todo += [f"revoke {h} ({why})" for h, why in actions.revoke.items()]
    todo += [f"{h} ({why})" for h, why in actions.rewrap.items()]
    if actions.crl:
        todo.append(f"the CRL ({actions.crl})")
    if actions.admin_rewrap:
        todo.append("secrets/ for the new admins")
    return VpcmeshError.at(ADMIN_SECRETS, "the admin age key is needed to update "
                                          + ", ".join(todo) + f"; {SET_ADMIN_KEY}")


def _write_repository(root: Path, changes: Changes) -> list[str]:
    # The CRL first: a revocation is recorded before any new key exists (a crash after it
    # leaves a revoked certificate, which the next render replaces). Then keys before
    # certificates: a crash in between leaves a key without its certificate, which the
    # next render notices (fingerprint mismatch) and re-issues. Deletions last.
    def rank(rel: str) -> tuple[int, str]:
        data = changes[rel]
        return (3 if data is None else 0 if rel == CRL_FILE else
                1 if rel.startswith("secrets/") else 2, rel)

    written = []
    for rel in sorted(changes, key=rank):
        data = changes[rel]
        if data is None:
            (root / rel).unlink(missing_ok=True)
            written.append(rel)
        elif replace_file(root / rel, data):
            written.append(rel)
    return written


def build(root: Path, snap: Snapshot, request: Request = Request(),
          progress: Progress | None = None) -> Built:
    # The issuer (sops, keys), rendering and git only here: validate does without them.
    from vpcmesh.compiler import signing
    from vpcmesh.pki import issuing
    from vpcmesh.pki.admin import (
        SET_ADMIN_KEY,
        AdminSecrets,
        admin_key_configured,
        read_admin_secrets,
        signing_key,
    )
    from vpcmesh.rendering.render import render_build
    from vpcmesh.secrets import sopsconfig

    loaded = load(snap, request)
    checkout = _Checkout(root)  # before this render writes anything into the repository
    plan, store, actions = loaded.plan, loaded.store, loaded.actions
    warnings = list(loaded.warnings)
    written: list[str] = []
    if actions.needs_admin_key and not admin_key_configured():
        if not actions.optional:
            raise _admin_key_missing(actions)
        warnings.append(Problem(Location(ADMIN_SECRETS), "renewals are due but no admin age"
                                " key is set (SOPS_AGE_KEY_FILE); rendering without them",
                                Severity.WARNING))
        actions = PkiPlan()
    build_dir = root / BUILD_DIR
    with Staging(build_dir, known=stamp.known_files(root, build_dir)) as staging:
        admin: AdminSecrets | None = None
        if not actions.empty:
            admin = read_admin_secrets(snap, store)
            issued = issuing.issue(snap, plan, store, actions, admin, loaded.now)
            with issuing.Sealing(issued.jobs, progress) as sealing:
                # While sops seals the keys, stage what does not wait for them: the bundles
                # the issuing touches (the others mostly stay as they are).
                early = _early_store(plan, store, issued.public)
                touched = {*actions.issue, *actions.rewrap, plan.hub.hostname}
                files, _ = render_build(plan, loaded.previous, early, only=touched)
                staging.put({rel: data for rel, data in files.items()
                             if rel.rpartition("/")[2] != names.SECRETS})
                sealed = sealing.results()
            changes = issued.changes(sealed, snap.cache)
            written = _write_repository(root, changes)
            snap = snap.with_files(changes)
            store = read_store(snap)
        window = dt.timedelta(days=plan.mesh.pki.renew_before_days)
        remaining = expiry_problems(store, loaded.now, window, plan)
        if any(p.is_error for p in remaining):
            raise VpcmeshError(remaining)
        warnings += remaining
        files, state = render_build(plan, loaded.previous, store)
        signer = None
        previous = loaded.previous
        new_key = previous.signing_key != store.signing_id  # rotated since they were signed
        todo = signing.pending(plan, files, previous.bundles, loaded.now, checkout.stale,
                               new_key)
        retired = signing.retire(previous.bundles, previous.retired,
                                 {n.hostname for n in plan.nodes})
        if todo.due or signing.removals_due(retired, previous.removals, new_key):
            if admin_key_configured():
                admin = admin or read_admin_secrets(snap, store)
                signer = signing_key(admin, store).sign
            elif request.require_signing:
                raise VpcmeshError.at(ADMIN_SECRETS, "signing bundles needs the admin age key;"
                                                     f" {SET_ADMIN_KEY}")
        commit = checkout.label() if signer is not None else checkout.head
        signed = signing.sign_build(plan, files, todo, previous.bundles, loaded.now, commit,
                                    signer, previous.retired)
        notices, removals, waiting = signing.sign_removals(plan.mesh.name, retired,
                                                           previous.removals, signer, new_key)
        unsigned = [*signed.unsigned, *(f"{h} (removal notice)" for h in waiting)]
        chain = store.chain.to_bytes() if store.chain is not None else b""
        notices.update(signing.chain_files(chain, [*todo.bodies, *retired]))
        if unsigned:
            warnings.append(Problem(Location(ADMIN_SECRETS), "not signed (no admin age key set):"
                                    f" {', '.join(unsigned)}; their manifests are left out"
                                    " until 'vpcmesh sign' runs with the key", Severity.WARNING))
        state = replace(state, bundles=signed.bundles, retired=retired, removals=removals,
                        signing_key=previous.signing_key if unsigned else store.signing_id)
        changed = staging.finish({**signed.files, **notices})
        rules = sopsconfig.render_rules(list(plan.mesh.admins),
                                        [(n.hostname, n.age_recipient) for n in plan.nodes])
        if replace_file(root / SOPS_CONFIG, rules):
            written.append(SOPS_CONFIG)
        # The state goes last: if anything before failed, the next render plans the same again.
        state_bytes = dump_state(state)
        if replace_file(root / STATE_FILE, state_bytes):
            written.append(STATE_FILE)
        snap.cache.put(key("state", state_bytes), as_data(state))
        snap.cache.save()
        if warnings or unsigned:
            stamp.clear(root)  # something was left undone: the next render must look again
        else:
            after = snap.with_files({SOPS_CONFIG: rules, STATE_FILE: state_bytes})
            stamp.write(root, after, build_dir, staging.digests,
                        _horizon(plan, store, state, loaded.now))
        return Built(plan, actions, changed, tuple(written), tuple(warnings))


class _Checkout:
    """The git commit a render signs from, and whether its inputs had uncommitted changes
    when it started (what it writes itself does not count)."""

    def __init__(self, root: Path) -> None:
        from vpcmesh import git
        from vpcmesh.model.layout import INPUTS

        self.root, self.git = root, git
        self.head = git.head_commit(root) or "none"
        self.clean = self.head == "none" or not any(
            rel.split("/")[0] in INPUTS for rel in git.dirty_paths(root))
        self.known: dict[str, bool] = {}

    def stale(self, commit: str) -> bool:
        """A signature to make again from this clean checkout: its commit is marked dirty,
        or is not in this history (a copied repository, a rewritten branch)."""
        if not self.clean or self.head == "none" or commit == self.head:
            return False
        if commit.endswith(DIRTY):
            return True
        if commit not in self.known:
            # A shallow clone (CI's default) cannot tell: it trusts what it cannot check.
            found = self.git.in_history(self.root, commit, self.head) if commit != "none" \
                else False
            self.known[commit] = found is not False
        return not self.known[commit]

    def label(self) -> str:
        """What a manifest signed now names as its commit."""
        return self.head if self.clean else self.head + DIRTY


def _early_store(plan: Plan, store: Store, public: Changes) -> Store:
    """The store as it will be once sealing is done, but for the sealed files themselves."""
    from cryptography import x509

    from vpcmesh.model.layout import CRL_FILE, ISSUED_DIR
    from vpcmesh.pki.store import NodeSecret

    certs = {rel.removeprefix(f"{ISSUED_DIR}/").removesuffix(".crt"): data
             for rel, data in public.items() if rel.startswith(ISSUED_DIR) and data}
    waiting = NodeSecret(frozenset(), "", b"")
    parsed = {**store.certs,
              **{h: x509.load_pem_x509_certificate(pem) for h, pem in certs.items()}}
    return replace(store, cert_pems={**store.cert_pems, **certs}, certs=parsed,
                   crl_pem=public.get(CRL_FILE) or store.crl_pem,
                   secrets={n.hostname: store.secrets.get(n.hostname, waiting)
                            for n in plan.nodes})


def _horizon(plan: Plan, store: Store, state: State, now: dt.datetime) -> dt.datetime:
    """The first moment time alone changes what render does: a renewal window opens, or a
    manifest enters the last third of its validity."""
    from vpcmesh.bundle.manifest import parse_time

    window = dt.timedelta(days=plan.mesh.pki.renew_before_days)
    resign = dt.timedelta(days=plan.mesh.bundle_validity_days) / 3
    times = [store.ca.not_valid_after_utc - window]
    if store.crl is not None and store.crl.next_update_utc is not None:
        times.append(store.crl.next_update_utc - window)
    times += [c.not_valid_after_utc - window for c in store.certs.values()]
    times += [parse_time(b.expires) - resign for b in state.bundles.values()]
    return min(times, default=now)
