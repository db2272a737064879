"""`vpcmesh import` of the runbook's manual setup (tests/runbook.py): what it keeps, what it
reports, and that it writes nothing when it cannot carry a line over."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from vpcmesh.model.yamlio import load
from vpcmesh.pki import x509 as pki
from vpcmesh.secrets import sops

from conftest import KEYS, invoke
from runbook import REVOKED, import_args


def _der(path: Path) -> bytes:
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    return cert.public_bytes(serialization.Encoding.DER)


def _secret_lines(runbook: Path) -> set[str]:
    """Lines of every private key and of ta.key: none may reach the new repository."""
    lines = set()
    for path in [*(runbook / "pki/private").glob("*.key"), runbook / "ta.key"]:
        lines |= {line for line in path.read_text().splitlines()
                  if len(line) >= 32 and "-----" not in line}
    return lines


def test_import_keeps_the_ca_certificates_keys_addresses_and_revocations(
        runbook: Path, tmp_path: Path, admin_key: Path) -> None:
    repo = tmp_path / "mesh"
    result = invoke(*import_args(runbook, repo))
    assert result.exit_code == 0, result.stderr
    assert "Kept certificates: huawei-hz-1, tencent-hz-1" in result.stderr
    git = ["git", "-C", str(repo)]
    assert subprocess.run([*git, "status", "--porcelain"], capture_output=True, text=True,
                          check=True).stdout == ""
    # The CA and the clients' certificates, byte for byte; the hub's is new, from that CA.
    assert _der(repo / "mesh/pki/ca.crt") == _der(runbook / "pki/ca.crt")
    for host in ("tencent-hz-1", "huawei-hz-1"):
        assert _der(repo / f"mesh/pki/issued/{host}.crt") == \
            _der(runbook / f"pki/issued/{host}.crt")
    assert not (repo / f"mesh/pki/issued/{REVOKED}.crt").exists()
    ca = x509.load_pem_x509_certificate((repo / "mesh/pki/ca.crt").read_bytes())
    hub = x509.load_pem_x509_certificate((repo / "mesh/pki/issued/aliyun-hz-1.crt").read_bytes())
    assert pki.signed_by(hub, ca) and pki.is_server(hub)
    # What was revoked stays revoked, in a CRL signed by the same CA.
    crl = x509.load_pem_x509_crl((repo / "mesh/pki/crl.pem").read_bytes())
    old = x509.load_pem_x509_crl((runbook / "pki/crl.pem").read_bytes())
    assert pki.signed_by(crl, ca)
    assert {r.serial_number for r in crl} == {r.serial_number for r in old} != set()
    # Addresses from ipp.txt and ccd/, subnets from the iroutes and the hub's pushed route.
    nodes = {p.stem: load(p.name, p.read_bytes()).data for p in (repo / "nodes").glob("*")}
    assert {h: (n.get("vpn_address"), n["subnets"]) for h, n in nodes.items()} == {
        "aliyun-hz-1": (None, ["172.16.0.0/24"]),
        "tencent-hz-1": ("10.8.0.2", ["172.17.0.0/24"]),
        "huawei-hz-1": ("10.8.0.20", ["172.18.0.0/24", "192.168.50.0/24"])}
    mesh = load("mesh.yaml", (repo / "mesh/mesh.yaml").read_bytes()).data
    assert mesh["vpn"]["compat"] == {"tls_auth": True, "comp_lzo": True,
                                     "cipher_fallback": "AES-256-CBC"}
    assert mesh["vpn"]["keepalive"] == {"interval": 10, "timeout": 120}
    assert (mesh["vpn"]["network"], mesh["pki"]["algorithm"]) == ("10.8.0.0/24", "rsa-2048")
    # Each kept node's own key, readable by that node alone (and the admins).
    secret = sops.decrypt((repo / "secrets/nodes/tencent-hz-1.sops.yaml").read_bytes(), "t",
                          KEYS / "tencent-hz-1.agekey")
    key = pki.load_key(secret["files"]["tencent-hz-1.key"])
    old_cert = x509.load_pem_x509_certificate((runbook / "pki/issued/tencent-hz-1.crt")
                                              .read_bytes())
    assert pki.public_matches(key, old_cert)
    assert secret["files"]["tls.key"] == (runbook / "ta.key").read_text()
    admin = sops.decrypt((repo / "secrets/mesh.sops.yaml").read_bytes(), "a", admin_key)
    assert pki.public_matches(pki.load_key(admin["ca_key"]), ca)
    # No private key or ta.key line in any file of the repository or of its git history.
    blobs = subprocess.run([*git, "log", "-p", "--all"], capture_output=True, text=True,
                           check=True).stdout
    tree = "".join(p.read_text(errors="replace") for p in repo.rglob("*")
                   if p.is_file() and ".git" not in p.parts)
    assert [line for line in _secret_lines(runbook) if line in blobs + tree] == []
    # The imported repository is complete: validate is clean and render issues nothing.
    assert invoke("validate", "--repo", repo).exit_code == 0
    rendered = invoke("-v", "render", "--repo", repo)
    assert rendered.exit_code == 0, rendered.stderr
    assert "issued" not in rendered.stderr and "revoked" not in rendered.stderr
    assert _der(repo / "mesh/pki/issued/tencent-hz-1.crt") == \
        _der(runbook / "pki/issued/tencent-hz-1.crt")


def test_a_line_that_cannot_be_carried_over_is_an_error_and_nothing_is_written(
        runbook: Path, tmp_path: Path) -> None:
    conf = runbook / "server.conf"
    lines = conf.read_text().splitlines()
    lines[lines.index("client-to-client")] = "duplicate-cn"
    lines.insert(5, 'push "redirect-gateway def1"')
    lines.append("frobnicate 3")
    conf.write_text("\n".join(lines) + "\n")
    repo = tmp_path / "mesh"
    result = invoke(*import_args(runbook, repo))
    assert result.exit_code == 1
    found = re.findall(r"server\.conf:(\d+):1: (?:error: )?'([a-z-]+)'", result.stderr)
    assert sorted(found) == sorted([("6", "push"),
                                    (str(lines.index("duplicate-cn") + 1), "duplicate-cn"),
                                    (str(len(lines)), "frobnicate")]), result.stderr
    assert "Traceback" not in result.stderr
    assert not repo.exists() and list(tmp_path.iterdir()) == [runbook]


def test_mapping_problems_point_at_the_mapping(runbook: Path, tmp_path: Path) -> None:
    mapping = runbook / "mapping.yaml"
    text = mapping.read_text()
    text = text.replace("age1", "age2", 2)  # the admin's and the hub's recipients
    text += (f"  {REVOKED}:\n    cloud: x\n    region: y\n    private_address: 10.0.0.1\n"
             "    age_recipient: age1hw9ydpajx306rjeu0e4c0gxrdxsdp79mqn2n9up2z9dhwwzm7uqqsp3ke6\n"
             "  ucloud-hz-1:\n    cloud: ucloud\n    region: cn-hz\n"
             "    private_address: 172.19.0.10\n    subnets: [172.19.0.0/24]\n"
             "    age_recipient: age1hw9ydpajx306rjeu0e4c0gxrdxsdp79mqn2n9up2z9dhwwzm7uqqsp3ke6\n")
    mapping.write_text(text)
    repo = tmp_path / "mesh"
    result = invoke(*import_args(runbook, repo))
    assert result.exit_code == 1
    first = len(text.splitlines()) - 9  # the line of each added entry
    errors = {line.split(": ")[0].rsplit("/", 1)[1]: line for line in result.stderr.splitlines()
              if "mapping.yaml" in line and "warning" not in line}
    assert sorted(errors) == [f"mapping.yaml:{first}:5", f"mapping.yaml:{first + 5}:5"]
    assert "its certificate is revoked (" in errors[f"mapping.yaml:{first}:5"]
    assert "index.txt:4:1)" in errors[f"mapping.yaml:{first}:5"]
    assert "no certificate issued/ucloud-hz-1.crt" in errors[f"mapping.yaml:{first + 5}:5"]
    assert not repo.exists()
    mapping.write_text(mapping.read_text().split(f"  {REVOKED}:")[0])
    result = invoke(*import_args(runbook, repo))
    assert result.exit_code == 1
    # Values are checked as mesh.yaml and node files are, and reported in the mapping.
    assert re.search(r"mapping\.yaml:6:7: .*admins\[0\]", result.stderr), result.stderr
    assert re.search(r"mapping\.yaml:14:20: .*age_recipient", result.stderr), result.stderr
    assert not repo.exists()


def test_the_mesh_may_not_take_the_old_configs_names(runbook: Path, tmp_path: Path) -> None:
    mapping = runbook / "mapping.yaml"
    for name in ("server", "client"):
        mapping.write_text(re.sub(r"  name: \w+", f"  name: {name}", mapping.read_text()))
        result = invoke(*import_args(runbook, tmp_path / "mesh"))
        assert result.exit_code == 1
        assert re.search(rf"mapping\.yaml:3:9: '{name}' is the name of the old setup's",
                         result.stderr), result.stderr


def test_import_without_a_mapping_is_a_usage_error(runbook: Path, tmp_path: Path) -> None:
    args = ["import", "--from-easyrsa", runbook / "pki", "--server-conf", runbook / "server.conf"]
    for extra in ([], ["--repo", tmp_path / "mesh"], ["--draft-mapping", tmp_path / "d.yaml",
                                                      "--mapping", runbook / "mapping.yaml"]):
        result = invoke(*args, *extra)
        assert result.exit_code == 2, result.stderr
    assert list(tmp_path.iterdir()) == [runbook]


def test_import_never_writes_into_a_folder_that_has_files(runbook: Path, tmp_path: Path) -> None:
    repo = tmp_path / "mesh"
    repo.mkdir()
    (repo / "notes.txt").write_text("mine\n")
    result = invoke(*import_args(runbook, repo))
    assert result.exit_code == 1 and "not an empty folder" in result.stderr
    assert [p.name for p in repo.iterdir()] == ["notes.txt"]


def test_a_ca_key_with_a_passphrase_needs_the_passphrase_file(runbook: Path,
                                                              tmp_path: Path) -> None:
    key_path = runbook / "pki/private/ca.key"
    key = serialization.load_pem_private_key(key_path.read_bytes(), None)
    key_path.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"runbook secret")))
    repo = tmp_path / "mesh"
    result = invoke(*import_args(runbook, repo))
    assert result.exit_code == 1 and "ca.key: encrypted with a passphrase" in result.stderr
    passphrase = tmp_path / "pass"
    passphrase.write_text("runbook secret\n")
    result = invoke(*import_args(runbook, repo), "--ca-passphrase-file", passphrase)
    assert result.exit_code == 0, result.stderr


def test_the_report_says_what_the_cut_over_costs_and_what_stays_behind(
        runbook: Path, tmp_path: Path) -> None:
    conf = runbook / "server.conf"
    conf.write_text(conf.read_text().replace("explicit-exit-notify 1\n", "")
                    + 'push "dhcp-option DNS 172.16.0.2"\n')
    (runbook / "ccd/old-laptop").write_text("iroute 10.99.0.0 255.255.255.0\n")
    result = invoke("-v", *import_args(runbook, tmp_path / "mesh"))
    assert result.exit_code == 0, result.stderr
    warnings = dict(line.replace(f"{runbook}/", "").split(": warning: ")
                    for line in result.stderr.splitlines() if ": warning: " in line)
    last = f"server.conf:{len(conf.read_text().splitlines())}:1"
    assert sorted(warnings) == ["ccd/old-laptop", "pki/issued/server.crt", "server.conf", last]
    assert "ping-restart (up to 120 s here)" in warnings["server.conf"]
    assert "not carried over" in warnings[last]
    assert "not routed by the new hub" in warnings["ccd/old-laptop"]
    # -v shows where every other line went.
    assert "server.conf:2:1: port: vpn.port" in result.stderr
    assert "server.conf:23:1: tls-auth: compat.tls_auth: true" in result.stderr


def test_a_drafted_mapping_lists_the_clients_and_imports_once_filled_in(
        runbook: Path, tmp_path: Path) -> None:
    draft = tmp_path / "draft.yaml"
    args = ["import", "--from-easyrsa", runbook / "pki", "--server-conf", runbook / "server.conf"]
    result = invoke(*args, "--draft-mapping", draft)
    assert result.exit_code == 0, result.stderr
    text = draft.read_text()
    # Every client the PKI can keep, with what the old setup says; not the revoked one, not
    # the old server's certificate.
    nodes = text.split("\nnodes:\n")[1]
    assert re.findall(r"^  ([a-z0-9-]+):", nodes, re.M) == ["huawei-hz-1", "tencent-hz-1"]
    assert "# subnets 172.17.0.0/24, tunnel address 10.8.0.2" in text
    assert invoke(*args, "--draft-mapping", draft).exit_code == 1  # never over a file
    repo = tmp_path / "mesh"
    result = invoke(*args, "--repo", repo, "--mapping", draft)
    assert result.exit_code == 1 and not repo.exists()
    todo = [line for line in result.stderr.splitlines() if line.endswith("TODO: fill this in")]
    assert len(todo) == text.count("TODO") - text.count("every TODO")
    # The filled-in draft: the values of the runbook's own mapping.
    filled = load("mapping.yaml", (runbook / "mapping.yaml").read_bytes()).data
    text = text.replace("  TODO:", "  aliyun-hz-1:").replace("hub: TODO", "hub: aliyun-hz-1")
    text = text.replace("name: TODO", "name: example").replace("domain: TODO",
                                                              "domain: inner.example.com")
    text = text.replace("- TODO", f"- {filled['mesh']['admins'][0]}")
    out = []
    host = ""
    for line in text.splitlines():
        found = re.match(r"^  ([a-z0-9-]+-[a-z0-9-]+):", line)
        host = found[1] if found else host
        key = re.match(r"^    ([a-z_]+): TODO", line)
        out.append(line.replace("TODO", str(filled["nodes"][host][key[1]])) if key else line)
    draft.write_text("\n".join(out) + "\n")
    result = invoke(*args, "--repo", repo, "--mapping", draft)
    assert result.exit_code == 0, result.stderr


def test_an_input_that_is_not_a_regular_file_is_refused(runbook: Path, tmp_path: Path) -> None:
    (runbook / "server.conf").unlink()
    (runbook / "server.conf").symlink_to("/dev/zero")  # would never end
    result = invoke(*import_args(runbook, tmp_path / "mesh"))
    assert result.exit_code == 1
    assert "server.conf: not a regular file" in result.stderr
    assert not (tmp_path / "mesh").exists()
