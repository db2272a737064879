"""Sources that ask who is pulling, served by Debian's nginx on 127.0.0.1 over TLS: git's
smart HTTP (`git http-backend`) behind basic auth, as Gitea with a deploy token, and a
static folder behind a bearer header. The token is read from a root-only file and shows
in no command line, message or state file."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from bundlekit import git_bundles, https_server
from conftest import KEYS, invoke
from webserver import Server, nginx

HOST = "tencent-hz-1"
TOKEN = "8f2c1e0d9b7a6c5e4f3a2b1c0d9e8f7a6b5c4d3e"  # what Gitea's tokens look like


def _installed(build: Path) -> str:
    """What the first pull of the example's bundle says (its version, as signed)."""
    manifest = json.loads((build / HOST / "manifest.json").read_bytes())
    return f"installed version {manifest['version']} and restarted OpenVPN\n"


@pytest.fixture
def server(build: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Server:
    git_bundles(build, tmp_path / "repos/mesh")
    with nginx(tmp_path / "nginx", tmp_path / "repos", build, "deploy", TOKEN) as running:
        monkeypatch.setenv("GIT_SSL_CAINFO", str(running.ca))  # git's trust store
        monkeypatch.setenv("SSL_CERT_FILE", str(running.ca))  # Python's
        yield running


@pytest.fixture
def git_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every git command line and environment the agent starts, through a PATH shim."""
    shim, log = tmp_path / "shim", tmp_path / "git-calls.log"
    shim.mkdir()
    real = next(Path(p) / "git" for p in os.environ["PATH"].split(":")
                if (Path(p) / "git").exists())
    (shim / "git").write_text(f'#!/bin/sh\n{{ echo "$@"; env; }} >> {log}\nexec {real} "$@"\n')
    (shim / "git").chmod(0o755)
    monkeypatch.setenv("PATH", f"{shim}:{os.environ['PATH']}")
    return log


def secret_file(folder: Path, text: str, mode: int = 0o600) -> Path:
    path = folder / "secret"
    path.write_text(text)
    path.chmod(mode)
    return path


def pull(source: str, node: Path, trust: Path, *extra: str | Path) -> tuple[int, str]:
    result = invoke("pull", "--once", "--hostname", HOST, "--source", source, "--root", node,
                    "--age-key", KEYS / f"{HOST}.agekey", "--trust-key", trust,
                    "--restart-cmd", "true", "--health-cmd", "true", *extra)
    return result.exit_code, result.stderr


def everything_written(node: Path) -> str:
    return "\n".join(p.read_bytes().decode(errors="replace") for p in node.rglob("*")
                     if p.is_file() and "source.git" not in p.parts)


def test_git_over_https_with_a_token_file(server: Server, build: Path, node: Path,
                                          tmp_path: Path, git_log: Path) -> None:
    token = secret_file(tmp_path, TOKEN + "\n")
    url = f"git+https://deploy@{server.base.removeprefix('https://')}/git/mesh"
    code, stderr = pull(url, node, build.parent / "mesh/signing.pub", "--token-file", token)
    assert (code, stderr) == (0, _installed(build))
    assert (node / "etc/openvpn/client/example.conf").exists()
    assert '"GET /git/mesh/info/refs?service=git-upload-pack HTTP/1.1" 401' in \
        server.access_log()
    assert "deploy [" in server.access_log()  # the second request carried the user
    assert TOKEN not in git_log.read_text()  # no argument or variable of any git call
    assert TOKEN not in everything_written(node)
    assert TOKEN not in "".join(p.read_text(errors="replace") for p in
                                (node / "var/lib/vpcmesh/source.git").rglob("config*"))


def test_a_wrong_token_is_refused_without_showing_it(server: Server, build: Path, node: Path,
                                                    tmp_path: Path) -> None:
    token = secret_file(tmp_path, "not-the-token")
    url = f"git+{server.base}/git/mesh"
    code, stderr = pull(url, node, build.parent / "mesh/signing.pub", "--token-file", token)
    assert code == 1
    assert stderr.startswith(f"{url.removeprefix('git+')}: cannot fetch branch 'bundles':")
    assert "Authentication failed" in stderr and "not-the-token" not in stderr
    assert not (node / "etc/openvpn").exists()


def test_without_a_token_git_never_waits_for_a_prompt(server: Server, build: Path,
                                                      node: Path) -> None:
    code, stderr = pull(f"git+{server.base}/git/mesh", node, build.parent / "mesh/signing.pub")
    assert code == 1 and "terminal prompts disabled" in stderr


@pytest.mark.parametrize("mode", [0o640, 0o604])
def test_a_token_others_can_read_is_refused(build: Path, node: Path, tmp_path: Path,
                                            mode: int) -> None:
    token = secret_file(tmp_path, TOKEN, mode)
    code, stderr = pull("git+https://git.example.com/ops/mesh.git", node,
                        build.parent / "mesh/signing.pub", "--token-file", token)
    assert (code, stderr) == (1, f"{token}: the token must be readable by this user only;"
                                 " chown it to this user and chmod 600 it\n")


def test_a_token_in_the_url_is_refused(build: Path, node: Path) -> None:
    code, stderr = pull(f"git+https://deploy:{TOKEN}@git.example.com/ops/mesh.git", node,
                        build.parent / "mesh/signing.pub")
    assert (code, stderr) == (1, "git.example.com/ops/mesh.git: a password in the URL would"
                                 " show in the process list and logs; put it in a file named"
                                 " by --token-file\n")
    assert TOKEN not in stderr


def test_a_token_is_refused_for_a_source_that_cannot_use_it(build: Path, node: Path,
                                                            tmp_path: Path) -> None:
    token = secret_file(tmp_path, TOKEN)
    code, stderr = pull("https://bundles.example.com/mesh", node,
                        build.parent / "mesh/signing.pub", "--token-file", token)
    assert (code, stderr) == (1, "--token-file: is for git+https:// sources (a static https"
                                 " source takes --header-file)\n")


def test_static_https_with_an_auth_header(server: Server, build: Path, node: Path,
                                          tmp_path: Path) -> None:
    trust = build.parent / "mesh/signing.pub"
    code, stderr = pull(f"{server.base}/static", node, trust)
    assert (code, stderr) == (1, f"{server.base}/static/{HOST}/manifest.json: HTTP 401"
                                 " Unauthorized\n")
    header = secret_file(tmp_path, f"Authorization: Bearer {TOKEN}\n")
    code, stderr = pull(f"{server.base}/static", node, trust, "--header-file", header)
    assert (code, stderr) == (0, _installed(build))
    assert TOKEN not in everything_written(node)


def test_a_header_that_is_not_one_is_refused(build: Path, node: Path, tmp_path: Path) -> None:
    header = secret_file(tmp_path, TOKEN)
    code, stderr = pull("https://bundles.example.com/mesh", node,
                        build.parent / "mesh/signing.pub", "--header-file", header)
    assert (code, stderr) == (1, f"{header}: not a header line; write it as"
                                 " 'Authorization: Bearer TOKEN'\n")


def test_the_auth_header_does_not_follow_a_redirect_to_another_host(
        build: Path, node: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with https_server(build, tmp_path / "a") as (first, url, ca), \
            https_server(build, tmp_path / "b") as (second, other, other_ca):
        both = tmp_path / "cas.pem"
        both.write_bytes(ca.read_bytes() + other_ca.read_bytes())
        monkeypatch.setenv("SSL_CERT_FILE", str(both))
        first.redirects[f"/{HOST}/manifest.json"] = f"{other}/{HOST}/manifest.json"
        header = secret_file(tmp_path, f"Authorization: Bearer {TOKEN}")
        pull(url, node, build.parent / "mesh/signing.pub", "--header-file", header)
    assert [h.get("Authorization") for h in first.headers][:1] == [f"Bearer {TOKEN}"]
    assert second.headers and all("Authorization" not in h for h in second.headers)


def test_agent_install_carries_the_token_file_into_the_timer(
        build: Path, tmp_path: Path) -> None:
    token = secret_file(tmp_path, TOKEN)
    root = tmp_path / "vm"
    result = invoke("agent", "install", "--hostname", HOST, "--source",
                    "git+https://git.example.com/ops/mesh.git", "--token-file", token,
                    "--trust-key", build.parent / "mesh/signing.pub", "--root", root,
                    "--metrics", "")
    assert result.exit_code == 0, result.stderr
    unit = (root / "etc/systemd/system/vpcmesh-pull.service").read_text()
    assert "--source git+https://git.example.com/ops/mesh.git --ref bundles" in unit
    assert f" --token-file {token}\n" in unit
    assert TOKEN not in unit
    assert stat.S_IMODE(token.stat().st_mode) == 0o600


def test_a_token_file_that_is_a_link_is_refused(build: Path, node: Path, tmp_path: Path) -> None:
    """A link could point root's read at another file; the token must be a file of its own."""
    real = secret_file(tmp_path, TOKEN)
    link = tmp_path / "token-link"
    link.symlink_to(real)
    code, stderr = pull("git+https://git.example.com/ops/mesh.git", node,
                        build.parent / "mesh/signing.pub", "--token-file", link)
    assert (code, stderr) == (1, f"{link}: cannot read the token: Too many levels of symbolic"
                                 " links\n")
