"""The pipeline behind validate, render and pki: load, check, plan, issue, render, write."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection
from dataclasses import dataclass, field, replace
from pathlib import Path

from vpcmesh import clock, stamp
from vpcmesh.cache import ParseCache, key
from vpcmesh.errors import Location, Problem, Severity, VpcmeshError
from vpcmesh.keystore import Store, read_store
from vpcmesh.layout import ADMIN_SECRETS, BUILD_DIR, CRL_FILE, ISSUED_DIR, SOPS_CONFIG, STATE_FILE
from vpcmesh.loader import load_inventory
from vpcmesh.output import Staging, replace_file
from vpcmesh.pkiplan import PkiPlan, decide, expiry_problems
from vpcmesh.plan import Plan, make_plan
from vpcmesh.state import State, as_data, dump_state, read_state


@dataclass(frozen=True)
class Loaded:
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


def load(root: Path, renew: Collection[str] = (), revoke: Collection[str] = (),
         renew_crl: bool = False, cache: ParseCache | None = None) -> Loaded:
    """Everything validate reports; raises VpcmeshError with every problem found."""
    own = cache is None
    cache = ParseCache(root) if cache is None else cache
    inventory = load_inventory(root, cache)
    previous = read_state(root, cache)
    plan = make_plan(inventory, previous)
    store = read_store(root, cache)
    if own:
        cache.save()
    stale = store.problems(renew, renew_crl)
    if stale:
        raise VpcmeshError(stale)
    now = clock.now()
    actions = decide(plan, store, now, renew, revoke, renew_crl)
    return Loaded(plan, previous, store, actions, now, inventory.warnings)


def _commit(root: Path, changes: dict[str, bytes | None]) -> list[str]:
    # Keys before certificates: a crash in between leaves a key without its certificate,
    # which the next render notices (fingerprint mismatch) and re-issues.
    order = sorted(changes, key=lambda rel: (not rel.startswith("secrets/"), rel))
    written = []
    for rel in order:
        data = changes[rel]
        if data is None:
            (root / rel).unlink(missing_ok=True)
            written.append(rel)
        elif replace_file(root / rel, data):
            written.append(rel)
    return written


_SET_ADMIN_KEY = ("set SOPS_AGE_KEY_FILE to the age key file of one of the admins in"
                  " mesh/mesh.yaml")


def _admin_key_missing(actions: PkiPlan) -> VpcmeshError:
    todo = [f"{h} ({why})" for h, why in actions.issue.items()]
    todo += [f"revoke {h} ({why})" for h, why in actions.revoke.items()]
    todo += [f"{h} ({why})" for h, why in actions.rewrap.items()]
    if actions.crl:
        todo.append(f"the CRL ({actions.crl})")
    if actions.admin_rewrap:
        todo.append("secrets/ for the new admins")
    return VpcmeshError.at(ADMIN_SECRETS, "the admin age key is needed to update "
                                          + ", ".join(todo) + f"; {_SET_ADMIN_KEY}")


def build(root: Path, renew: Collection[str] = (), revoke: Collection[str] = (),
          renew_crl: bool = False, require_signing: bool = False,
          progress: Callable[[int, int], None] | None = None) -> Built:
    # The issuer (sops, keys) only here: validate, which runs load() alone, does without it.
    from vpcmesh.issuer import (
        AdminSecrets,
        admin_key_configured,
        apply,
        read_admin_secrets,
        signing_key,
    )

    # One cache for the whole run: it keeps what this run used, so a second one would drop
    # the first one's entries.
    cache = ParseCache(root)
    loaded = load(root, renew, revoke, renew_crl, cache)
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
    from vpcmesh.keystore import NodeSecret
    from vpcmesh.render import SECRETS_FILE, render_build

    build_dir = root / BUILD_DIR
    with Staging(build_dir, known=stamp.known_files(root, build_dir)) as staging:
        admin: AdminSecrets | None = None
        if not actions.empty:
            admin = read_admin_secrets(root, store)

            def prestage(changes: dict[str, bytes | None]) -> None:
                # While sops encrypts, stage every bundle file that does not wait for it.
                certs = {rel.removeprefix(f"{ISSUED_DIR}/").removesuffix(".crt"): data
                         for rel, data in changes.items() if rel.startswith(ISSUED_DIR) and data}
                waiting = NodeSecret(frozenset(), "", b"")
                early = replace(store, cert_pems={**store.cert_pems, **certs},
                                crl_pem=changes.get(CRL_FILE) or store.crl_pem,
                                secrets={n.hostname: store.secrets.get(n.hostname, waiting)
                                         for n in plan.nodes})
                # Only bundles the issuing touches; others mostly stay as they are.
                touched = {*actions.issue, *actions.rewrap, plan.hub.hostname}
                files, _ = render_build(plan, loaded.previous, early, only=touched)
                staging.put({rel: data for rel, data in files.items()
                             if not rel.endswith(f"/{SECRETS_FILE}")})

            changes = apply(root, plan, store, actions, admin, loaded.now, cache, prestage,
                            progress)
            written = _commit(root, changes)
            store = read_store(root, cache)
        window = dt.timedelta(days=plan.mesh.pki.renew_before_days)
        remaining = expiry_problems(store, loaded.now, window, plan)
        if any(p.is_error for p in remaining):
            raise VpcmeshError(remaining)
        warnings += remaining
        # Rendering and git only here: validate (load alone) does without jinja2 and GitPython.
        from vpcmesh import bundles, git, sopsconfig

        files, state = render_build(plan, loaded.previous, store)
        signer = None
        todo = bundles.pending(plan, files, loaded.previous.bundles, loaded.now)
        if todo.due:
            if admin_key_configured():
                admin = admin or read_admin_secrets(root, store)
                signer = signing_key(admin).sign
            elif require_signing:
                raise VpcmeshError.at(ADMIN_SECRETS, "signing bundles needs the admin age key;"
                                                     f" {_SET_ADMIN_KEY}")
        commit = git.head_commit(root) or "none"
        signed = bundles.sign_build(plan, files, todo, loaded.previous.bundles, loaded.now, commit,
                                    signer)
        if signed.unsigned:
            warnings.append(Problem(Location(ADMIN_SECRETS), "not signed (no admin age key set):"
                                    f" {', '.join(signed.unsigned)}; their manifests are left out"
                                    " until 'vpcmesh sign' runs with the key", Severity.WARNING))
        state = replace(state, bundles=signed.bundles)
        changed = staging.finish(signed.files)
        if replace_file(root / SOPS_CONFIG, sopsconfig.render(plan)):
            written.append(SOPS_CONFIG)
        # The state goes last: if anything before failed, the next render plans the same again.
        state_bytes = dump_state(state)
        if replace_file(root / STATE_FILE, state_bytes):
            written.append(STATE_FILE)
        cache.put(key("state", state_bytes), as_data(state))
        cache.save()
        if warnings or signed.unsigned:
            stamp.clear(root)  # something was left undone: the next render must look again
        else:
            stamp.write(root, build_dir, staging.digests,
                        _horizon(plan, store, state, loaded.now))
        return Built(plan, actions, changed, tuple(written), tuple(warnings))


def _horizon(plan: Plan, store: Store, state: State, now: dt.datetime) -> dt.datetime:
    """The first moment time alone changes what render does: a renewal window opens, or a
    manifest enters the last third of its validity."""
    from vpcmesh.manifest import parse_time

    window = dt.timedelta(days=plan.mesh.pki.renew_before_days)
    resign = dt.timedelta(days=plan.mesh.bundle_validity_days) / 3
    times = [store.ca.not_valid_after_utc - window]
    if store.crl is not None and store.crl.next_update_utc is not None:
        times.append(store.crl.next_update_utc - window)
    times += [c.not_valid_after_utc - window for c in store.certs.values()]
    times += [parse_time(b.expires) - resign for b in state.bundles.values()]
    return min(times, default=now)
