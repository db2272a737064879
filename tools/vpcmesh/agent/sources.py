"""Where a node fetches its bundle from: a local build/ tree, a git branch (ssh, a path, or
git+https:// with a token), or a static https URL (with an auth header if it needs one).

Each source reads `<hostname>/<file>` and never more than a caller-given number of bytes."""

from __future__ import annotations

import http.client
import os
import ssl
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from vpcmesh.bundle import names
from vpcmesh.errors import VpcmeshError

MAX_MANIFEST = 1 << 20
# A node removed from the mesh has no bundle any more: say what to do on it.
NOT_IN_SOURCE = ("missing from the source; if this node was removed from the mesh, run"
                 " 'vpcmesh agent uninstall' on it")


class NotInSource(VpcmeshError):
    """The source has no manifest for this node: removed from the mesh, or not yet added."""


@dataclass(frozen=True)
class Fetched:
    manifest: bytes
    signature: bytes
    etag: str | None = None


class Source(Protocol):
    name: str

    def where(self, host: str, rel: str) -> str:
        """How to name a bundle file of this source in a message."""

    def manifest(self, host: str, etag: str | None) -> Fetched | None:
        """The manifest and its signature; None when an https source says nothing changed."""

    def read(self, host: str, rel: str, limit: int) -> bytes:
        """A bundle file, at most `limit` bytes (one more is read to notice an overlong one)."""


def _capped(data: bytes, limit: int, what: str) -> bytes:
    if len(data) > limit:
        raise VpcmeshError.at(what, f"larger than the {limit} bytes allowed")
    return data


class LocalSource:
    def __init__(self, folder: Path) -> None:
        self.folder, self.name = folder, str(folder)

    def where(self, host: str, rel: str) -> str:
        return str(self.folder / host / rel)

    def _read(self, host: str, rel: str, limit: int) -> bytes:
        path = self.folder / host / rel
        try:
            with path.open("rb") as handle:
                return _capped(handle.read(limit + 1), limit, str(path))
        except FileNotFoundError:
            if rel == names.MANIFEST:
                raise NotInSource.at(str(path), NOT_IN_SOURCE) from None
            raise VpcmeshError.at(str(path), "missing from the source") from None
        except OSError as exc:
            raise VpcmeshError.at(str(path), f"cannot read: {exc.strerror}") from None

    def manifest(self, host: str, etag: str | None) -> Fetched | None:
        return Fetched(self._read(host, names.MANIFEST, MAX_MANIFEST),
                       self._read(host, names.SIGNATURE, 4096))

    def read(self, host: str, rel: str, limit: int) -> bytes:
        return self._read(host, rel, limit)


class GitSource:
    def __init__(self, url: str, ref: str, cache: Path, token_file: Path | None = None
                 ) -> None:
        from vpcmesh.git import Mirror  # GitPython only for git sources

        self.name = f"{url}#{ref}"
        self.mirror = Mirror(cache, url, ref, token_file)
        self.commit: str | None = None

    def where(self, host: str, rel: str) -> str:
        return f"{self.name}:{host}/{rel}"

    def _read(self, host: str, rel: str, limit: int) -> bytes:
        assert self.commit is not None
        data = self.mirror.read(self.commit, f"{host}/{rel}")
        if data is None:
            if rel == names.MANIFEST:
                raise NotInSource.at(self.where(host, rel), NOT_IN_SOURCE)
            raise VpcmeshError.at(self.where(host, rel), "missing from the source")
        return _capped(data, limit, self.where(host, rel))

    def manifest(self, host: str, etag: str | None) -> Fetched | None:
        self.commit = self.mirror.fetch()
        return Fetched(self._read(host, names.MANIFEST, MAX_MANIFEST),
                       self._read(host, names.SIGNATURE, 4096))

    def read(self, host: str, rel: str, limit: int) -> bytes:
        return self._read(host, rel, limit)


class _HttpsOnly(urllib.request.HTTPRedirectHandler):
    """A redirect may move the bundle, never off TLS: an https source that answers with an
    http:// location would hand the manifest to whoever sits on the path. Nor does the auth
    header follow a redirect to another host: it is for the source's host only."""

    def __init__(self, header: str | None) -> None:
        self.header = header

    def redirect_request(self, req: urllib.request.Request, fp: Any, code: int, msg: str,
                         headers: Any, newurl: str) -> urllib.request.Request | None:
        if not newurl.startswith("https://"):
            raise VpcmeshError.at(req.full_url, f"redirected to {newurl}, which is not https;"
                                                " refusing it")
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and self.header and \
                urlsplit(newurl).netloc != urlsplit(req.full_url).netloc:
            new.remove_header(self.header.capitalize())
        return new


def read_secret_file(path: Path, what: str) -> str:
    """A token or header kept for root alone: refused when others can read it, so that it
    is not left readable by mistake; never named in a message but by its path."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        raise VpcmeshError.at(str(path), f"cannot read the {what}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if info.st_mode & 0o077 or info.st_uid != os.geteuid():
            raise VpcmeshError.at(str(path), f"the {what} must be readable by this user only;"
                                             f" chown it to this user and chmod 600 it")
        data = handle.read(4097)
    if len(data) > 4096:
        raise VpcmeshError.at(str(path), f"larger than the 4096 bytes a {what} may have")
    try:
        text = data.decode().strip()
    except UnicodeDecodeError:
        raise VpcmeshError.at(str(path), f"the {what} is not text") from None
    if not text or any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise VpcmeshError.at(str(path), f"the {what} must be one line of text")
    return text


def _header(path: Path) -> tuple[str, str]:
    name, sep, value = read_secret_file(path, "auth header").partition(":")
    if not sep or not name or not all(c.isalnum() or c in "-_" for c in name):
        raise VpcmeshError.at(str(path), "not a header line; write it as"
                                         " 'Authorization: Bearer TOKEN'")
    return name.strip(), value.strip()


class HttpsSource:
    TIMEOUT = 30  # each connect and read
    DEADLINE = 120  # a whole file: a source that drips a byte a minute is still refused

    def __init__(self, base: str, header_file: Path | None = None) -> None:
        self.name = base
        self.base = base.rstrip("/")
        self.header = _header(header_file) if header_file else None
        # A TLS context of its own, made now: the system's CA store as it is for this run
        # (Python 3.13's module-wide default opener would keep the first one it saw).
        context = ssl.create_default_context()
        self.opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=context),
                                                  _HttpsOnly(self.header and self.header[0]))

    def where(self, host: str, rel: str) -> str:
        return f"{self.base}/{host}/{rel}"

    def _get(self, url: str, limit: int, etag: str | None = None
             ) -> tuple[bytes | None, str | None]:
        request = urllib.request.Request(url, headers={"User-Agent": "vpcmesh-agent"})
        if self.header:
            request.add_header(*self.header)
        if etag:
            request.add_header("If-None-Match", etag)
        try:
            with self.opener.open(request, timeout=self.TIMEOUT) as response:
                data = self._read_body(response, url, limit)
                length = response.headers.get("Content-Length")
                if length is not None and length.isdigit() and len(data) < int(length):
                    raise VpcmeshError.at(url, f"truncated: {len(data)} of {length} bytes"
                                               " arrived")
                return _capped(data, limit, url), response.headers.get("ETag")
        except urllib.error.HTTPError as exc:
            if exc.code == 304:
                return None, etag
            if exc.code == 404 and url.endswith("/" + names.MANIFEST):
                raise NotInSource.at(url, f"HTTP 404: {NOT_IN_SOURCE}") from None
            raise VpcmeshError.at(url, f"HTTP {exc.code} {exc.reason}") from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            reason = getattr(exc, "reason", exc)
            raise VpcmeshError.at(url, f"cannot fetch: {reason}") from None

    def _read_body(self, response: Any, url: str, limit: int) -> bytes:
        """At most limit + 1 bytes (one more shows an overlong file), within DEADLINE."""
        deadline = time.monotonic() + self.DEADLINE
        chunks, size = [], 0
        while size <= limit:
            chunk = response.read1(min(65536, limit + 1 - size))  # what has arrived
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if time.monotonic() > deadline:
                raise VpcmeshError.at(url, f"too slow: {size} bytes in {self.DEADLINE}s")
        return b"".join(chunks)

    def manifest(self, host: str, etag: str | None) -> Fetched | None:
        data, new_etag = self._get(f"{self.base}/{host}/{names.MANIFEST}", MAX_MANIFEST, etag)
        if data is None:
            return None
        signature, _ = self._get(f"{self.base}/{host}/{names.SIGNATURE}", 4096)
        assert signature is not None
        return Fetched(data, signature, new_etag)

    def read(self, host: str, rel: str, limit: int) -> bytes:
        data, _ = self._get(f"{self.base}/{host}/{rel}", limit)
        assert data is not None
        return data


@dataclass(frozen=True)
class Credentials:
    """Files, never values: a token on a command line would show in the process list."""

    token_file: Path | None = None  # git+https: the password or access token
    header_file: Path | None = None  # static https: 'Authorization: Bearer ...'


NO_CREDENTIALS = Credentials()


def open_source(spec: str, ref: str, cache: Path,
                credentials: Credentials = NO_CREDENTIALS) -> Source:
    # '--upload-pack=...' would be an option to git, which would run it as a command.
    for value, what in ((spec, "source"), (ref, "ref")):
        if value.startswith("-") or any(ord(c) < 32 for c in value):
            raise VpcmeshError.at(value, f"not a {what}: it starts with '-' or has a control"
                                         " character")
    if spec.startswith(("http://", "git+http://")):
        raise VpcmeshError.at(spec, "plain http is not accepted; use https://, git+https://,"
                                    " ssh or a folder")
    if spec.startswith(("https://", "git+https://")) and urlsplit(spec).password is not None:
        raise VpcmeshError.at(spec.split("@")[-1], "a password in the URL would show in the"
                                                   " process list and logs; put it in a file"
                                                   " named by --token-file")
    git_https = spec.startswith("git+https://")
    if credentials.token_file and not git_https:
        raise VpcmeshError.at("--token-file", "is for git+https:// sources (a static https"
                                              " source takes --header-file)")
    if credentials.header_file and not spec.startswith("https://"):
        raise VpcmeshError.at("--header-file", "is for static https:// sources (a git+https://"
                                               " source takes --token-file)")
    if spec.startswith("https://"):
        return HttpsSource(spec, credentials.header_file)
    if git_https:
        if credentials.token_file:
            read_secret_file(credentials.token_file, "token")  # refused before git runs
        return GitSource(spec.removeprefix("git+"), ref, cache, credentials.token_file)
    path = Path(spec)
    if path.is_dir() and not (path / ".git").exists() and not (path / "HEAD").exists():
        return LocalSource(path)
    return GitSource(spec, ref, cache)
