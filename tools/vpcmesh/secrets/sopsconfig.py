""".sops.yaml: creation rules, so that `sops edit` on a file under secrets/ encrypts it to
the same recipients vpcmesh uses."""

from __future__ import annotations

from vpcmesh.model.layout import ADMIN_SECRETS, node_secrets
from vpcmesh.planning.addresses import Plan

HEADER = "# Managed by vpcmesh (rewritten by 'vpcmesh render'): who can read which secret.\n"


def _escape(path: str) -> str:
    return path.replace(".", "\\.")  # names are [a-z0-9-] and dots only


def _rule(path_regex: str, recipients: list[str]) -> str:
    return f"  - path_regex: {path_regex}\n    age: {','.join(recipients)}\n"


def render_rules(admins: list[str], nodes: list[tuple[str, str]]) -> bytes:
    out = HEADER + "creation_rules:\n"
    for hostname, recipient in nodes:
        out += _rule(f"^{_escape(node_secrets(hostname))}$", sorted({*admins, recipient}))
    out += _rule(f"^{_escape(ADMIN_SECRETS)}$", sorted(admins))
    out += _rule("^secrets/", sorted(admins))
    return out.encode()


def render(plan: Plan) -> bytes:
    return render_rules(list(plan.mesh.admins),
                        [(n.hostname, n.age_recipient) for n in plan.nodes])
