"""Where each key of a TOML document is written: ``{key path: line}``.

:mod:`tomllib` parses the manifest but keeps no positions, and an error
about a key is only useful with its line. This scanner walks a document that
:mod:`tomllib` has already accepted (so it need not check syntax) and records
the 1-based line of every table header, every key (dotted keys, keys in
inline tables) and every element of an array. Paths use the names and
indices of the parsed document: ``("runs", 2, "segments", 0, "stop")`` is the
``stop`` of the first segment of the third ``[[runs]]``.
"""

from __future__ import annotations

import re

__all__ = ["key_lines", "locate"]

_BARE = re.compile(r"[A-Za-z0-9_-]+")


class _Scanner:
    def __init__(self, text: str):
        self.s = text
        self.i = 0
        self.lines: dict[tuple, int] = {}
        self.aot: dict[tuple, int] = {}       # array-of-tables path -> elements so far

    # -- positions -----------------------------------------------------------
    def line(self) -> int:
        return self.s.count("\n", 0, self.i) + 1

    def peek(self, k: int = 1) -> str:
        return self.s[self.i:self.i + k]

    def skip_space(self, newlines: bool = False) -> None:
        s = self.s
        while self.i < len(s):
            c = s[self.i]
            if c in " \t\r" or (newlines and c == "\n"):
                self.i += 1
            elif c == "#":
                j = s.find("\n", self.i)
                self.i = len(s) if j < 0 else j
            else:
                break

    # -- tokens --------------------------------------------------------------
    def string(self) -> str:
        s = self.s
        for q in ('"""', "'''"):
            if s.startswith(q, self.i):
                j = _closing_quote(s, q, self.i + 3)
                while s.startswith(q[0], j + 3):   # up to two quotes may close the string
                    j += 1
                text = s[self.i + 3:j]
                self.i = j + 3
                return text
        q = s[self.i]
        j = _closing_quote(s, q, self.i + 1)
        text = s[self.i + 1:j]
        self.i = j + 1
        return text

    def key(self) -> list[str]:
        parts = []
        while True:
            self.skip_space()
            if self.peek() in ('"', "'"):
                parts.append(self.string())
            else:
                m = _BARE.match(self.s, self.i)
                if not m:
                    break
                parts.append(m.group(0))
                self.i = m.end()
            self.skip_space()
            if self.peek() == ".":
                self.i += 1
                continue
            break
        return parts

    # -- values --------------------------------------------------------------
    def value(self, path: tuple) -> None:
        self.skip_space()
        c = self.peek()
        if c in ('"', "'"):
            self.string()
        elif c == "[":
            self.i += 1
            idx = 0
            while self.i < len(self.s):
                self.skip_space(newlines=True)
                if self.peek() == "]":
                    self.i += 1
                    return
                if self.peek() == ",":
                    self.i += 1
                    idx += 1
                    continue
                self.lines.setdefault(path + (idx,), self.line())
                at = self.i
                self.value(path + (idx,))
                if self.i == at:
                    self.i += 1
        elif c == "{":
            self.i += 1
            while self.i < len(self.s):
                self.skip_space(newlines=True)      # TOML 1.1 allows newlines here
                if self.peek() == "}":
                    self.i += 1
                    return
                if self.peek() == ",":
                    self.i += 1
                    continue
                at = self.i
                self.assignment(path)
                if self.i == at:                    # not TOML: never loop in place
                    self.i += 1
        else:   # number, boolean, date: up to a delimiter
            m = re.compile(r"[^,\]\}\n#]*").match(self.s, self.i)
            self.i = m.end()

    def assignment(self, table: tuple) -> None:
        line = self.line()
        parts = self.key()
        path = table
        for p in parts:
            path = path + (p,)
            self.lines.setdefault(path, line)
        self.skip_space()
        if self.peek() == "=":
            self.i += 1
        self.value(path)

    def resolve(self, parts: list[str]) -> tuple:
        """Names of a header -> path with the current index of every array of tables."""
        path: tuple = ()
        for p in parts:
            path = path + (p,)
            if path in self.aot:
                path = path + (self.aot[path] - 1,)
        return path

    def document(self) -> dict:
        table: tuple = ()
        while True:
            self.skip_space(newlines=True)
            if self.i >= len(self.s):
                return self.lines
            line = self.line()
            if self.s.startswith("[[", self.i):
                self.i += 2
                parts = self.key()
                parent = self.resolve(parts[:-1])
                full = parent + (parts[-1],)
                n = self.aot.get(full, 0)
                self.aot[full] = n + 1
                table = full + (n,)
                self.lines.setdefault(full, line)
                self.lines[table] = line
                self.i = self.s.index("]]", self.i) + 2
            elif self.peek() == "[":
                self.i += 1
                parts = self.key()
                table = self.resolve(parts)
                self.lines.setdefault(table, line)
                self.i = self.s.index("]", self.i) + 1
            else:
                at = self.i
                self.assignment(table)
                if self.i == at:
                    self.i += 1


def _closing_quote(s: str, q: str, j: int) -> int:
    """Index of the first ``q`` (one or three quote characters) at or after ``j`` that
    closes a string: in a basic (double-quoted) string, escaped quotes are skipped.
    ValueError when there is none."""
    while True:
        j = s.index(q, j)
        if q[0] == '"' and _escaped(s, j):
            j += 1
            continue
        return j


def _escaped(s: str, j: int) -> bool:
    """Whether the quote at ``s[j]`` is escaped by an odd number of backslashes."""
    k = j - 1
    n = 0
    while k >= 0 and s[k] == "\\":
        n += 1
        k -= 1
    return n % 2 == 1


def key_lines(text: str) -> dict[tuple, int]:
    """``{path: line}`` of every header, key and array element of a valid TOML text.

    Returns an empty dict if the scanner gets lost (the caller then reports no line).
    """
    try:
        return _Scanner(text).document()
    except (ValueError, IndexError):   # pragma: no cover - tomllib accepted the text
        return {}


def locate(lines: dict[tuple, int], path: tuple) -> int | None:
    """Line of ``path``, or of its longest prefix that has one."""
    for k in range(len(path), 0, -1):
        line = lines.get(tuple(path[:k]))
        if line is not None:
            return line
    return None
