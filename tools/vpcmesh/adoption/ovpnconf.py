"""Reading a hand-written OpenVPN config (server.conf, a ccd file) the way OpenVPN does:
one option per line, words split on blanks, "double" and 'single' quotes, backslash
escapes, `#` and `;` comments, `--` before a name allowed, and inline `<name>` blocks."""

from __future__ import annotations

from dataclasses import dataclass

from vpcmesh.errors import Location, Problem, VpcmeshError

MAX_BYTES = 1 << 20  # a config is a few KiB; more is not a config


@dataclass(frozen=True)
class Directive:
    name: str
    args: tuple[str, ...]
    at: Location
    inline: str | None = None  # the text of an inline block (`<tls-auth>` ... `</tls-auth>`)


def _words(line: str, at: Location) -> list[str]:
    words: list[str] = []
    word: list[str] | None = None
    quote = ""
    i = 0
    while i < len(line):
        c = line[i]
        if quote:
            if c == quote:
                quote = ""
            elif c == "\\" and quote == '"' and i + 1 < len(line):
                i += 1
                word.append(line[i])  # type: ignore[union-attr]
            else:
                word.append(c)  # type: ignore[union-attr]
        elif c in " \t\r":
            if word is not None:
                words.append("".join(word))
                word = None
        elif word is None and c in "#;":
            break
        elif c in "\"'" and word is None:  # a quote opens only a word (options.c parse_line)
            quote, word = c, []
        elif c == "\\" and i + 1 < len(line):
            i += 1
            word = (word or []) + [line[i]]
        else:
            word = (word or []) + [c]
        i += 1
    if quote:
        raise VpcmeshError.at(at, "a quote is not closed on this line; close it")
    if word is not None:
        words.append("".join(word))
    return words


def parse(data: bytes, display: str) -> list[Directive]:
    """Every directive with its file:line; raises with every line OpenVPN could not read."""
    if len(data) > MAX_BYTES:
        raise VpcmeshError.at(display, f"{len(data)} bytes: not an OpenVPN config")
    try:
        text = data.decode()
    except UnicodeDecodeError as exc:
        raise VpcmeshError.at(display, f"not UTF-8 text (byte {exc.start})") from None
    out: list[Directive] = []
    problems: list[Problem] = []
    lines = text.splitlines()
    n = 0
    while n < len(lines):
        at = Location(display, n + 1, 1)
        line = lines[n].strip()
        n += 1
        if line.startswith("<") and line.endswith(">") and not line.startswith("</"):
            name, body = line[1:-1], []
            while n < len(lines) and lines[n].strip() != f"</{name}>":
                body.append(lines[n])
                n += 1
            if n == len(lines):
                problems.append(Problem(at, f"<{name}> has no </{name}>; close the block"))
                break
            n += 1
            out.append(Directive(name, (), at, "\n".join(body) + "\n"))
            continue
        try:
            words = _words(line, at)
        except VpcmeshError as exc:
            problems.extend(exc.problems)
            continue
        if words:
            out.append(Directive(words[0].removeprefix("--"), tuple(words[1:]), at))
    if problems:
        raise VpcmeshError(problems)
    return out
