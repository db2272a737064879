"""Where a node fetches its bundle from: a local build/ tree, a git branch, or an https URL.

Each source reads `<hostname>/<file>` and never more than a caller-given number of bytes."""

from __future__ import annotations

import http.client
import ssl
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from vpcmesh.bundle import names
from vpcmesh.errors import VpcmeshError

MAX_MANIFEST = 1 << 20


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
            raise VpcmeshError.at(str(path), "missing from the source") from None
        except OSError as exc:
            raise VpcmeshError.at(str(path), f"cannot read: {exc.strerror}") from None

    def manifest(self, host: str, etag: str | None) -> Fetched | None:
        return Fetched(self._read(host, names.MANIFEST, MAX_MANIFEST),
                       self._read(host, names.SIGNATURE, 4096))

    def read(self, host: str, rel: str, limit: int) -> bytes:
        return self._read(host, rel, limit)


class GitSource:
    def __init__(self, url: str, ref: str, cache: Path) -> None:
        from vpcmesh.git import Mirror  # GitPython only for git sources

        self.name = f"{url}#{ref}"
        self.mirror = Mirror(cache, url, ref)
        self.commit: str | None = None

    def where(self, host: str, rel: str) -> str:
        return f"{self.name}:{host}/{rel}"

    def _read(self, host: str, rel: str, limit: int) -> bytes:
        assert self.commit is not None
        data = self.mirror.read(self.commit, f"{host}/{rel}")
        if data is None:
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
    http:// location would hand the manifest to whoever sits on the path."""

    def redirect_request(self, req: urllib.request.Request, fp: Any, code: int, msg: str,
                         headers: Any, newurl: str) -> urllib.request.Request | None:
        if not newurl.startswith("https://"):
            raise VpcmeshError.at(req.full_url, f"redirected to {newurl}, which is not https;"
                                                " refusing it")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


class HttpsSource:
    TIMEOUT = 30  # each connect and read
    DEADLINE = 120  # a whole file: a source that drips a byte a minute is still refused

    def __init__(self, base: str) -> None:
        self.name = base
        self.base = base.rstrip("/")
        # A TLS context of its own, made now: the system's CA store as it is for this run
        # (Python 3.13's module-wide default opener would keep the first one it saw).
        context = ssl.create_default_context()
        self.opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=context),
                                                  _HttpsOnly())

    def where(self, host: str, rel: str) -> str:
        return f"{self.base}/{host}/{rel}"

    def _get(self, url: str, limit: int, etag: str | None = None
             ) -> tuple[bytes | None, str | None]:
        request = urllib.request.Request(url, headers={"User-Agent": "vpcmesh-agent"})
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


def open_source(spec: str, ref: str, cache: Path) -> Source:
    # '--upload-pack=...' would be an option to git, which would run it as a command.
    for value, what in ((spec, "source"), (ref, "ref")):
        if value.startswith("-") or any(ord(c) < 32 for c in value):
            raise VpcmeshError.at(value, f"not a {what}: it starts with '-' or has a control"
                                         " character")
    if spec.startswith("https://"):
        return HttpsSource(spec)
    if spec.startswith("http://"):
        raise VpcmeshError.at(spec, "plain http is not accepted; use https://, git or a folder")
    path = Path(spec)
    if path.is_dir() and not (path / ".git").exists() and not (path / "HEAD").exists():
        return LocalSource(path)
    return GitSource(spec, ref, cache)
