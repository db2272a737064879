"""YAML loading that keeps the origin (file, line, column) of every value."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError

from vpcmesh.errors import Location, VpcmeshError

JsonPath = Sequence[str | int]


@dataclass(frozen=True)
class Document:
    """A parsed YAML file: `raw` keeps ruamel's positions, `data` is plain JSON-like Python."""

    path: str
    raw: Any
    data: Any

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
        line, col = parent.lc.key(key)
        return Location(self.path, line + 1, col + 1)


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


def load(root: Path, relpath: str) -> Document:
    """Parse one YAML file; a syntax error or duplicate key becomes a located VpcmeshError."""
    yaml = YAML(typ="rt")
    try:
        text = (root / relpath).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise VpcmeshError.at(relpath, f"not UTF-8 text ({exc.reason})") from None
    except OSError as exc:
        raise VpcmeshError.at(relpath, f"cannot read: {exc.strerror}") from None
    try:
        raw = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        loc = Location(relpath, mark.line + 1, mark.column + 1) if mark else Location(relpath)
        problem = " ".join(str(exc.problem or exc.context or "invalid YAML").split())
        raise VpcmeshError.at(loc, f"invalid YAML: {problem}") from None
    return Document(relpath, raw, _plain(raw))
