"""Debian's nginx on 127.0.0.1 over TLS, as a self-hosted git server (Gitea, a reverse
proxy) looks to a VM: git's smart HTTP through `git http-backend` (fcgiwrap) behind basic
auth, and a static folder behind a bearer token."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import shutil
import signal
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bundlekit import tls_files
from netlab import skip_or_fail, wait_for

HTTP_BACKEND = Path("/usr/lib/git-core/git-http-backend")

CONFIG = """\
daemon off;
user root;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{}}
http {{
  access_log {d}/access.log;
  client_body_temp_path {d}/tmp; proxy_temp_path {d}/tmp; fastcgi_temp_path {d}/tmp;
  uwsgi_temp_path {d}/tmp; scgi_temp_path {d}/tmp;
  server {{
    listen 127.0.0.1:{port} ssl;
    ssl_certificate {cert};
    ssl_certificate_key {key};
    location /static/ {{
      if ($http_authorization != "Bearer {token}") {{ return 401; }}
      alias {static}/;
    }}
    location ~ ^/git(/.*)$ {{
      auth_basic "git";
      auth_basic_user_file {d}/htpasswd;
      include /etc/nginx/fastcgi_params;
      fastcgi_param SCRIPT_FILENAME {backend};
      fastcgi_param GIT_PROJECT_ROOT {repos};
      fastcgi_param GIT_HTTP_EXPORT_ALL "";
      fastcgi_param PATH_INFO $1;
      fastcgi_param REMOTE_USER $remote_user;
      fastcgi_pass unix:{d}/fcgi.sock;
    }}
  }}
}}
"""


@dataclass(frozen=True)
class Server:
    base: str  # https://127.0.0.1:PORT
    ca: Path  # the CA to trust
    folder: Path

    def access_log(self) -> str:
        path = self.folder / "access.log"
        return path.read_text() if path.exists() else ""


def require_nginx() -> None:
    missing = [n for n, p in (("nginx", shutil.which("nginx")),
                              ("fcgiwrap", shutil.which("fcgiwrap") or "/usr/sbin/fcgiwrap"))
               if not p or not Path(p).exists()]
    if not HTTP_BACKEND.exists():
        missing.append(str(HTTP_BACKEND))
    if os.geteuid() != 0:
        missing.append("root")
    if missing:
        skip_or_fail(f"needs {', '.join(missing)} (make system-deps installs them)")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def nginx(folder: Path, repos: Path, static: Path, user: str, token: str) -> Iterator[Server]:
    """Serves the git repositories under `repos` at /git/ (user/token by basic auth) and
    `static` at /static/ (header 'Authorization: Bearer TOKEN'); stops both processes."""
    require_nginx()
    folder.mkdir(parents=True)
    (folder / "tmp").mkdir()
    ca, cert, key = tls_files(folder)
    digest = base64.b64encode(hashlib.sha1(token.encode()).digest()).decode()
    (folder / "htpasswd").write_text(f"{user}:{{SHA}}{digest}\n")
    port = _free_port()
    (folder / "nginx.conf").write_text(CONFIG.format(
        d=folder, port=port, cert=cert, key=key, token=token, static=static, repos=repos,
        backend=HTTP_BACKEND))
    fcgiwrap = shutil.which("fcgiwrap") or "/usr/sbin/fcgiwrap"
    procs = [subprocess.Popen([fcgiwrap, "-s", f"unix:{folder}/fcgi.sock"],
                              stderr=subprocess.DEVNULL)]
    try:
        procs.append(subprocess.Popen(["nginx", "-c", str(folder / "nginx.conf"),
                                       "-p", str(folder)], stderr=subprocess.PIPE))

        def listening() -> bool:
            with socket.socket() as sock:
                return sock.connect_ex(("127.0.0.1", port)) == 0

        assert wait_for(listening, 10), (folder / "error.log").read_text()
        assert wait_for(lambda: (folder / "fcgi.sock").exists(), 10)
        yield Server(f"https://127.0.0.1:{port}", ca, folder)
    finally:
        for proc in reversed(procs):
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
