"""YAML loading that keeps the origin (file, line, column) of every value."""

from __future__ import annotations

import datetime
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.reader import ReaderError

from vpcmesh.errors import Location, VpcmeshError

JsonPath = Sequence[str | int]


class Document:
    """A parsed YAML file. `data` is plain JSON-like Python from the fast (C) safe loader;
    positions come from a round-trip parse made only when a location is asked for, that is
    when there is a problem to report in this file."""

    __slots__ = ("_raw", "_text", "data", "path")

    def __init__(self, path: str, data: Any, text: str | None = None, raw: Any = None) -> None:
        self.path, self.data, self._text, self._raw = path, data, text, raw

    @property
    def raw(self) -> Any:
        if self._raw is None and self._text is not None:
            self._raw = YAML(typ="rt").load(self._text)
        return self._raw

    def at(self, path: JsonPath = ()) -> Location:
        """The location of the value at `path`, or of the nearest enclosing value that exists."""
        node = self.raw
        line, col = 0, 0
        if hasattr(node, "lc"):
            line, col = node.lc.line, node.lc.col
        for key in path:
            try:
                if isinstance(key, int):
                    line, col = node.lc.item(key)
                else:
                    line, col = node.lc.value(key)
                node = node[key]
            except (AttributeError, KeyError, IndexError, TypeError):
                break
        return Location(self.path, line + 1, col + 1)

    def key_at(self, path: JsonPath, key: str) -> Location:
        """The location of a mapping key itself (to point at an unknown key)."""
        parent = self.raw
        for part in path:
            parent = parent[part]
        # `data` has string keys; the round-trip parse keeps YAML's own (1: x has an int)
        found = next((k for k in parent if str(k) == key), key)
        line, col = parent.lc.key(found)
        return Location(self.path, line + 1, col + 1)

    def ref(self, *path: str | int) -> Ref:
        return Ref(self, path)


@dataclass(frozen=True)
class Ref:
    """A value's place, resolved to a line and column only when a message needs it."""

    doc: Document
    path: tuple[str | int, ...]

    def loc(self) -> Location:
        return self.doc.at(self.path)

    def __str__(self) -> str:
        return str(self.loc())


def _plain(value: Any) -> Any:
    # ruamel's round-trip types subclass dict/list/int; jsonschema wants exact JSON types,
    # and a bool anchored in YAML would otherwise be an int subclass, not a bool.
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, datetime.date):
        return value.isoformat()
    if value is None:
        return None
    return str(value)


MAX_BYTES = 1 << 20  # a node file is a few hundred bytes, a sops file a few KiB
MAX_DEPTH = 16  # vpcmesh's deepest file nests 4 levels


def _events(text: str | bytes) -> Iterator[Any]:
    try:
        from ruamel.yaml.cyaml import CParser  # type: ignore[attr-defined]
    except ImportError:  # no C extension: ruamel's own parser
        yield from YAML(typ="safe", pure=True).parse(text)
        return
    parser = CParser(text)
    try:
        while True:
            event = parser.get_event()
            yield event
            if type(event).__name__ == "StreamEndEvent":
                return
    finally:
        parser.dispose()


def check_limits(text: str | bytes, display: str) -> None:
    """Refuse, before anything is built, what would make parsing expensive or unsafe: a
    huge file, deep nesting (a recursion in the loader), and aliases (a 650-byte 'billion
    laughs' expands to gigabytes; vpcmesh's files never need one)."""
    if len(text) > MAX_BYTES:
        raise VpcmeshError.at(display, f"{len(text)} bytes, more than the {MAX_BYTES} a vpcmesh"
                                       " file may have")
    depth = 0
    for event in _events(text):
        kind = type(event).__name__
        mark = event.start_mark
        if kind == "AliasEvent":
            raise VpcmeshError.at(Location(display, mark.line + 1, mark.column + 1),
                                  "YAML aliases (*name) are not accepted in vpcmesh files;"
                                  " write the value out")
        if kind in ("MappingStartEvent", "SequenceStartEvent"):
            depth += 1
            if depth > MAX_DEPTH:
                raise VpcmeshError.at(Location(display, mark.line + 1, mark.column + 1),
                                      f"nested more than {MAX_DEPTH} levels deep; vpcmesh"
                                      " files are flat")
        elif kind in ("MappingEndEvent", "SequenceEndEvent"):
            depth -= 1


def parse(text: str | bytes, display: str = "(yaml)") -> Any:
    """Safe-load YAML 1.2 (duplicate keys refused), within check_limits, with libyaml when
    ruamel.yaml.clib is installed: five times faster than ruamel's YAML() front end, which
    matters at 1,000 node files."""
    check_limits(text, display)
    try:
        from ruamel.yaml import CSafeLoader
    except ImportError:  # no C extension (PyPy, or a failed build)
        return YAML(typ="safe", pure=True).load(text)
    loader = CSafeLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def load(relpath: str, data: bytes) -> Document:
    """Parse one YAML file's bytes; a syntax error or duplicate key becomes a located
    VpcmeshError."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise VpcmeshError.at(relpath, f"not UTF-8 text ({exc.reason})") from None
    try:
        raw = parse(text, relpath)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        loc = Location(relpath, mark.line + 1, mark.column + 1) if mark else Location(relpath)
        problem = " ".join(str(exc.problem or exc.context or "invalid YAML").split())
        if problem == "found unexpected ':'":  # allow: [group:app] reads as a mapping
            problem += ("; inside [ ] or { }, quote a value with a colon ('group:app'), or"
                        " write the list one '- item' per line")
        raise VpcmeshError.at(loc, f"invalid YAML: {problem}") from None
    except ReaderError as exc:  # a control character: it has a position, not a mark
        before = text[:exc.position]
        loc = Location(relpath, before.count("\n") + 1, len(before.rpartition("\n")[2]) + 1)
        raise VpcmeshError.at(loc, f"invalid YAML: control character #x{exc.character:04x};"
                                   " vpcmesh files are plain text") from None
    except YAMLError as exc:
        problem = " ".join(str(exc).split())
        raise VpcmeshError.at(relpath, f"invalid YAML: {problem}") from None
    return Document(relpath, _plain(raw), text)
