from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum


@dataclass(frozen=True, order=True)
class Location:
    """Where a value came from: a repository-relative path and 1-based line/column."""

    path: str
    line: int = 0
    col: int = 0

    def __str__(self) -> str:
        if self.line:
            return f"{self.path}:{self.line}:{self.col}"
        return self.path


class Severity(Enum):  # not StrEnum: the node side runs on Python 3.9
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Problem:
    location: Location
    message: str
    severity: Severity = Severity.ERROR

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def __str__(self) -> str:
        prefix = "warning: " if self.severity is Severity.WARNING else ""
        return f"{self.location}: {prefix}{self.message}"

    def as_json(self) -> dict[str, object]:
        return {
            "path": self.location.path,
            "line": self.location.line,
            "col": self.location.col,
            "severity": self.severity.value,
            "message": self.message,
        }


def sort_problems(problems: Iterable[Problem]) -> list[Problem]:
    """By file and line, each once (a schema can report the same problem by two rules)."""
    return sorted(set(problems), key=lambda p: (p.location, p.message))


class VpcmeshError(Exception):
    """The one error type for bad input: it carries every problem found, each with a location."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = tuple(sort_problems(problems))
        super().__init__("\n".join(str(p) for p in self.problems))

    @classmethod
    def at(cls, location: Location | str, message: str) -> VpcmeshError:
        loc = location if isinstance(location, Location) else Location(location)
        return cls([Problem(loc, message)])


def raise_if_errors(problems: Iterable[Problem]) -> None:
    problems = list(problems)
    if any(p.is_error for p in problems):
        raise VpcmeshError(problems)
