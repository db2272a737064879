"""The repository's commands: run by people and CI in the mesh repository."""

from __future__ import annotations

from pathlib import Path

import click

from vpcmesh import error_handler
from vpcmesh.cli.group import main
from vpcmesh.cli.params import ALGORITHMS, HOSTNAME, SCHEMA_NAMES, repo_option
from vpcmesh.cli.params import exit_with as _exit


@main.command("validate")
@repo_option
@click.option("--json", "as_json", is_flag=True, help="Print the problems as JSON on stdout.")
def validate_cmd(repo: Path, as_json: bool) -> None:
    """Check every mesh and node file; report all problems as path:line:col."""
    from vpcmesh.commands.validate import validate

    _exit(error_handler.run(lambda: validate(repo, as_json)))


@main.command("render")
@repo_option
def render_cmd(repo: Path) -> None:
    """Validate, issue what is due, then write build/<hostname>/ for every node and build/dns/.

    Bundles are signed when the admin key is available (SOPS_AGE_KEY_FILE); otherwise new
    manifests are left out with a warning."""
    from vpcmesh.commands.render import render

    _exit(error_handler.run(lambda: render(repo)))


@main.command("sign")
@repo_option
def sign_cmd(repo: Path) -> None:
    """Render and sign every bundle that needs it; fails without the admin key (CI on main)."""
    from vpcmesh.commands.render import sign

    _exit(error_handler.run(lambda: sign(repo)))


@main.command("schema")
@repo_option
@click.argument("name", type=click.Choice(SCHEMA_NAMES), default="node")
def schema_cmd(repo: Path, name: str) -> None:
    """Print the JSON Schema of mesh.yaml or of a node file (for editors)."""
    from vpcmesh.commands.schema import print_schema

    _exit(error_handler.run(lambda: print_schema(name)))


@main.command("init")
@repo_option
@click.option("--name", help="Mesh name (names <name>.conf and the systemd units).")
@click.option("--domain", help="Inner DNS domain, such as inner.example.com.")
@click.option("--network", help="Tunnel network in CIDR form, such as 10.8.0.0/24.")
@click.option("--admin-recipient", "admins", multiple=True,
              help="Age recipient of an admin who can read secrets/ (repeat for more).")
@click.option("--algorithm", type=click.Choice(ALGORITHMS), default="ec-p256",
              show_default=True, help="Key algorithm of the CA and certificates.")
@click.option("--replace", is_flag=True,
              help="Remove the mesh --repo has first (the example, in a copy of the vpcmesh"
                   " repository); refused while any of it is not committed.")
@click.option("--tool-repo", help="The git repository a new mesh repository installs vpcmesh"
                                  " from (requirements.txt, pre-commit).")
@click.option("--tool-rev", help="The tag or commit of --tool-repo to pin.")
def init_cmd(repo: Path, name: str | None, domain: str | None, network: str | None,
             admins: tuple[str, ...], algorithm: str, replace: bool, tool_repo: str | None,
             tool_rev: str | None) -> None:
    """Create a new mesh: layout, mesh.yaml, .sops.yaml, CA, TLS key and signing key. A new
    folder becomes a complete mesh repository (Makefile, pinned vpcmesh, workflows for
    GitHub and Gitea, pre-commit, schemas) with a first commit.

    With no --name etc., add the PKI to the mesh/mesh.yaml already in --repo."""
    given = [name, domain, network, admins]
    if any(given) and not all(given):
        raise click.UsageError("--name, --domain, --network and --admin-recipient go together")
    if replace and not all(given):
        raise click.UsageError("--replace needs --name, --domain, --network and"
                               " --admin-recipient: the mesh that takes its place")
    from vpcmesh.authoring.init import NewMesh
    from vpcmesh.authoring.scaffold import ToolPin
    from vpcmesh.commands.init import init_mesh

    pin = ToolPin(tool_repo or ToolPin.repo, tool_rev or ToolPin.rev)
    new = NewMesh(name, domain, network, admins, algorithm) if all(given) else None  # type: ignore[arg-type]
    _exit(error_handler.run(lambda: init_mesh(repo, new, pin, replace)))


@main.command("cloud")
@repo_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--terraform", "terraform_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Write Terraform JSON (alicloud, tencentcloud, huaweicloud) to this folder.")
def cloud_cmd(repo: Path, as_json: bool, terraform_dir: Path | None) -> None:
    """What each VPC needs from its cloud: route entries to its mesh VM, security-group
    rules, the source/destination check, and the limits worth knowing."""
    from vpcmesh.commands.cloud import cloud

    _exit(error_handler.run(lambda: cloud(repo, as_json, terraform_dir)))


@main.command("import")
@click.option("--repo", type=click.Path(file_okay=False, path_type=Path),
              help="The new mesh repository (a folder that does not exist yet, or is empty).")
@click.option("--from-easyrsa", "pki_dir", required=True,
              type=click.Path(file_okay=False, exists=True, path_type=Path),
              help="The easy-rsa 3 PKI folder (ca.crt, issued/, private/, index.txt).")
@click.option("--server-conf", required=True,
              type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="The old hub's server.conf.")
@click.option("--mapping", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="YAML: mesh name, domain and admins, the hub, and each node's cloud,"
                   " addresses and age recipient (README: Adopting an existing OpenVPN setup).")
@click.option("--draft-mapping", type=click.Path(dir_okay=False, path_type=Path),
              help="Write a first mapping to this new file (every client the PKI can keep,"
                   " TODO for the rest) instead of importing.")
@click.option("--ccd", type=click.Path(file_okay=False, path_type=Path),
              help="The client-config-dir (default: server.conf's, beside it).")
@click.option("--ipp", type=click.Path(dir_okay=False, path_type=Path),
              help="The ifconfig-pool-persist file (default: server.conf's, beside it).")
@click.option("--tls-key", type=click.Path(dir_okay=False, path_type=Path),
              help="The tls-auth or tls-crypt key (default: server.conf's, beside it).")
@click.option("--ca-passphrase-file", type=click.Path(dir_okay=False, path_type=Path),
              help="A file holding the passphrase of private/ca.key, if it has one.")
@click.option("--tool-repo", help="The git repository the new mesh repository installs"
                                  " vpcmesh from.")
@click.option("--tool-rev", help="The tag or commit of --tool-repo to pin.")
def import_cmd(repo: Path | None, pki_dir: Path, server_conf: Path, mapping: Path | None,
               draft_mapping: Path | None, ccd: Path | None, ipp: Path | None,
               tls_key: Path | None, ca_passphrase_file: Path | None, tool_repo: str | None,
               tool_rev: str | None) -> None:
    """Make a mesh repository from an existing OpenVPN setup: its CA, the clients'
    certificates and keys, tunnel addresses, subnets, revocations and tls-auth key, so no
    VM is re-keyed. Every line it cannot carry over is reported with file:line.

    First run it with --draft-mapping FILE, fill in the file, then with --mapping FILE."""
    from vpcmesh.adoption.adopt import Sources
    from vpcmesh.authoring.scaffold import ToolPin
    from vpcmesh.commands.import_mesh import import_mesh, write_draft

    if draft_mapping is not None:
        if repo is not None or mapping is not None:
            raise click.UsageError("--draft-mapping writes a mapping: give it without --repo"
                                   " and --mapping")
        sources = Sources(pki_dir, server_conf, draft_mapping, ccd, ipp, tls_key,
                          ca_passphrase_file)
        _exit(error_handler.run(lambda: write_draft(sources)))
    if repo is None or mapping is None:
        raise click.UsageError("give --repo and --mapping (or --draft-mapping FILE first)")
    sources = Sources(pki_dir, server_conf, mapping, ccd, ipp, tls_key, ca_passphrase_file)
    pin = ToolPin(tool_repo or ToolPin.repo, tool_rev or ToolPin.rev)
    _exit(error_handler.run(lambda: import_mesh(repo, sources, pin)))


@main.group("pki")
def pki_group() -> None:
    """Certificates and keys: status, revoke, renew, rotate."""


@pki_group.command("status")
@repo_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def pki_status_cmd(repo: Path, as_json: bool) -> None:
    """List every certificate (and the CRL) with its expiry; needs no key."""
    from vpcmesh.commands import pki as pki_commands

    _exit(error_handler.run(lambda: pki_commands.status(repo, as_json)))


@pki_group.command("revoke")
@repo_option
@click.argument("hostname", type=HOSTNAME)
def pki_revoke_cmd(repo: Path, hostname: str) -> None:
    """Revoke HOSTNAME's certificate (a node still in nodes/ gets a new key). Needs the
    admin key (SOPS_AGE_KEY_FILE)."""
    from vpcmesh.commands import pki as pki_commands

    _exit(error_handler.run(lambda: pki_commands.revoke(repo, hostname)))


@pki_group.command("renew")
@repo_option
@click.argument("hostname", required=False, type=HOSTNAME)
@click.option("--rekey", is_flag=True, help="Say so: every renewal makes the node a new"
                                            " private key (and new tls-crypt-v2 keys).")
def pki_renew_cmd(repo: Path, hostname: str | None, rekey: bool) -> None:
    """Re-issue HOSTNAME's certificate with a new private key, or without it everything
    due, and always the CRL. Needs the admin key (SOPS_AGE_KEY_FILE)."""
    from vpcmesh.commands import pki as pki_commands

    _exit(error_handler.run(lambda: pki_commands.renew(repo, hostname)))


@pki_group.command("rotate")
@repo_option
@click.argument("what", type=click.Choice(["signing-key", "ca", "tls-crypt-v2"]))
@click.option("--no-wait", is_flag=True, help="ca, tls-crypt-v2: take the next step although"
                                              " the last one is under an hour old.")
def pki_rotate_cmd(repo: Path, what: str, no_wait: bool) -> None:
    """Rotate a key without a flag day. signing-key: the old key signs the new one into
    mesh/signing-keys.json, which every agent follows at its next pull. ca: one step each
    run (introduce a new CA, move every node to it, retire the old one); tls-crypt-v2 (the
    hubs' server keys): one step each run (introduce, switch, retire); each step published
    and pulled before the next. Needs the admin key (SOPS_AGE_KEY_FILE)."""
    from vpcmesh.commands import rotate

    if what == "ca":
        _exit(error_handler.run(lambda: rotate.rotate_ca(repo, no_wait)))
    if what == "tls-crypt-v2":
        _exit(error_handler.run(lambda: rotate.rotate_tls_crypt_v2(repo, no_wait)))
    _exit(error_handler.run(lambda: rotate.rotate_signing_key(repo)))


def _service(value: str) -> tuple[str, int]:
    name, sep, port = value.partition(":")
    if not sep or not port.isdigit():
        raise click.BadParameter(f"{value!r} is not NAME:PORT")
    return name, int(port)


@main.group("node")
def node_group() -> None:
    """Add or remove a node file."""


@node_group.command("add")
@repo_option
@click.argument("hostname")  # checked with every other option, all problems at once
@click.option("--role", type=click.Choice(["hub", "spoke"]), default="spoke", show_default=True)
@click.option("--cloud", required=True, help="aliyun, tencent, huawei, ...")
@click.option("--region", required=True, help="The cloud's region id, such as ap-guangzhou.")
@click.option("--public-ip", help="Public address (required for the hub).")
@click.option("--private-ip", required=True, help="The VM's VPC address.")
@click.option("--subnet", "subnets", multiple=True, required=True,
              help="A VPC subnet or /32 routed through this VM (repeat for more).")
@click.option("--age-recipient", required=True, help="From 'vpcmesh agent install' on the VM.")
@click.option("--service", "services", multiple=True, help="NAME:PORT it hosts (repeatable).")
@click.option("--vpn-ip", help="Pin a tunnel address (default: the lowest free one).")
@click.option("--os", "os_family", type=click.Choice(["debian", "rhel"]), default="debian",
              show_default=True, help="debian (Debian, Ubuntu) or rhel (Alibaba Cloud Linux,"
              " CentOS, Rocky, TencentOS, openEuler).")
def node_add_cmd(repo: Path, hostname: str, role: str, cloud: str, region: str,
                 public_ip: str | None, private_ip: str, subnets: tuple[str, ...],
                 age_recipient: str, services: tuple[str, ...], vpn_ip: str | None,
                 os_family: str) -> None:
    """Write nodes/HOSTNAME.yaml, refusing a name or address the mesh already uses."""
    from vpcmesh.authoring.nodefile import NewNode
    from vpcmesh.commands.node import add_node

    node = NewNode(hostname, role, cloud, region, private_ip, subnets, age_recipient,
                   public_ip, vpn_ip, tuple(_service(s) for s in services), os_family)
    _exit(error_handler.run(lambda: add_node(repo, node)))


@node_group.command("remove")
@repo_option
@click.argument("hostname", type=HOSTNAME)
def node_remove_cmd(repo: Path, hostname: str) -> None:
    """Remove nodes/HOSTNAME.yaml (the next render revokes its certificate)."""
    from vpcmesh.commands.node import remove_node

    _exit(error_handler.run(lambda: remove_node(repo, hostname)))


@main.command("plan")
@repo_option
@click.option("--base", "base_ref", help="Compare with this commit or branch (default: the"
                                         " merge base of HEAD with main).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def plan_cmd(repo: Path, base_ref: str | None, as_json: bool) -> None:
    """Show what the working tree changes against REF, node by node: new bundles, changed
    files, OpenVPN restarts, certificates to issue or revoke, DNS records. Needs no key."""
    from vpcmesh.commands.plan import plan

    _exit(error_handler.run(lambda: plan(repo, base_ref, as_json)))


@main.command("publish")
@repo_option
@click.option("--to", "to", required=True, help="A git remote URL or path to publish to.")
@click.option("--branch", default="bundles", show_default=True, help="The branch nodes pull.")
@click.option("--allow-dirty", is_flag=True,
              help="Publish even with uncommitted changes, an unpushed HEAD, or bundles"
                   " signed elsewhere (for the brave).")
def publish_cmd(repo: Path, to: str, branch: str, allow_dirty: bool) -> None:
    """Commit build/ of a clean, pushed checkout to BRANCH of a git remote (one commit per
    publish, none when nothing changed); refuses anything the published bundles could
    diverge from. Run 'vpcmesh sign' and commit what it writes first."""
    from vpcmesh.commands.publish import publish

    _exit(error_handler.run(lambda: publish(repo, to, branch, allow_dirty)))


@main.command("guard")
@repo_option
@click.argument("files", nargs=-1)
def guard_cmd(repo: Path, files: tuple[str, ...]) -> None:
    """Refuse plaintext private keys anywhere and unencrypted files under secrets/ (FILES, or
    every file git tracks or would add). For pre-commit and CI."""
    from vpcmesh.commands.guard import guard

    _exit(error_handler.run(lambda: guard(repo, files)))


@main.command("graph")
@repo_option
@click.option("--format", "fmt", type=click.Choice(["mermaid", "dot", "svg"]),
              default="mermaid", show_default=True,
              help="Mermaid (for Markdown), Graphviz DOT, or SVG (through Graphviz's dot).")
@click.option("--status", metavar="FILE",
              help="Colour nodes up or down from `vpcmesh status --json` ('-' for stdin).")
@click.option("--base", "base_ref", metavar="REF",
              help="Mark the nodes that change against this commit (as `plan` does).")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
              help="Write here instead of stdout.")
def graph_cmd(repo: Path, fmt: str, status: str | None, base_ref: str | None,
              output: Path | None) -> None:
    """Draw the mesh: clouds as groups, the hub and its spokes, tunnel addresses, subnets and
    services; who is up with --status, what a change touches with --base."""
    from vpcmesh.commands.graph import draw

    _exit(error_handler.run(lambda: draw(repo, fmt, status, base_ref, output)))
