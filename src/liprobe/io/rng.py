"""Oak Ridge ``.rng`` range files: read.

The layout, blank lines aside::

    5 25                          number of ions, number of ranges
    Si                            per ion: its name,
    Si 0.80 0.80 0.80             then a short name and its colour (r g b, 0-1)
    ...
    ----------- Si Cr O Cu C      dashes, then one column per ion, in that order
    . 13.8745 14.2410 1 0 0 0 0   per range: bounds in Da, how many of each column
    . 67.6220 69.5740 0 1 1 0 0   (several columns: a molecular ion, here CrO); the
    3 28.8260 29.2550 1 0 0 0 0   leading '.' may be missing or be the row's number
    ...
    --- polyatomic extension      optional: a block of the same layout whose
    3 9                           columns are molecules (CrO, CrO2, Cr2O) and
    ...                           whose rows name windows of the first block

Columns are matched to ions by position, not by label (``all02.rng`` labels
the column of its ion ``All`` as ``a``). An ion whose name (or short name) is
a chemical formula carries those atoms; a name in lower case that is an
element (``si``) is that element, with a warning; a name shaped like an
element symbol that is none (``Xx``) is an error (as a named ion its atoms
would silently leave the composition); any other name (``unknown``, ``All``)
is a named ion without atoms. A row of the extension with the same bounds as
a row of the first block is the same window: if its molecule has the same
atoms (or it is a named ion) it only lends its colour; other atoms are an
error. Extension rows with new bounds are windows of their own.

The format has no volumes (``Range.volume`` is None) and no charge: the
charge is inferred from the window (:func:`liprobe.chemistry.infer_charge`); a
window holding no isotope of its ion is kept with the charge unknown and a
warning, as in :func:`~liprobe.io.rrng.read_rrng`.
"""

from __future__ import annotations

import os
import re

from ..chemistry import MAX_ION_ATOMS, Ion, format_formula, parse_formula
from ..errors import FormatError, RangeError
from ..rangetable import Range, RangeTable
from ._files import read_text_lines
from .rrng import RowIons, named_ions_warning, parse_count, parse_number

__all__ = ["read_rng"]

_EXTENSION = re.compile(r"^-+\s*polyatomic", re.IGNORECASE)


class _Lines:
    """The non-blank lines of a file with their 1-based numbers, read in order."""

    def __init__(self, lines, path):
        self.items = [(i, s.strip()) for i, s in enumerate(lines, 1) if s.strip()]
        self.pos = 0
        self.path = path
        self.last = len(lines)

    def peek(self):
        return self.items[self.pos] if self.pos < len(self.items) else None

    def take(self, expected: str):
        item = self.peek()
        if item is None:
            raise FormatError(f"file ends where {expected} was expected", self.path,
                              f"line {self.last}")
        self.pos += 1
        return item


def _column_ion(name: str, short: str, rows: RowIons, path, line: int):
    """(atoms, label) of an ion column: a formula's atoms, else a named ion.

    ``si`` is the element Si (noted in ``rows``); ``Xx``, shaped like an element
    symbol but none, is a RangeError naming the line of the ion's name.
    """
    for text in (name, short):
        try:
            return parse_formula(text), None
        except ValueError:
            pass
    element = rows.element(name, line)
    if element is not None:
        return ((element, 1),), None
    if re.fullmatch(r"[A-Z][a-z]?", name):
        raise RangeError(f"ion '{name}' is not a chemical element (a named ion would carry "
                         "no atoms; write the element's symbol, or a longer name for an "
                         "ion without elements)", path, f"line {line}")
    return (), name


def _read_block(cur: _Lines, path, what: str, rows: RowIons):
    """One block: counts line, ion definitions, column line, range rows.

    Returns
    -------
    columns : list of (atoms, label, color)
    rows : list of (line, lo_Da, hi_Da, counts)
    """
    ln, s = cur.take(f"the {what} line 'number_of_ions number_of_ranges'")
    tok = s.split()
    if len(tok) != 2:
        raise FormatError(f"expected the {what} counts 'number_of_ions number_of_ranges', "
                          f"found '{s}'", path, f"line {ln}")
    n_ions = parse_count(tok[0], "number of ions", path, ln)
    n_ranges = parse_count(tok[1], "number of ranges", path, ln)
    columns = []
    for i in range(1, n_ions + 1):
        name_line, name = cur.take(f"the name of ion {i} of {n_ions}")
        if len(name.split()) != 1:
            raise FormatError(f"expected the name of ion {i} of {n_ions} alone on its line, "
                              f"found '{name}'", path, f"line {name_line}")
        ln, s = cur.take(f"the line 'short_name r g b' of ion {name}")
        tok = s.split()
        if len(tok) != 4:
            raise FormatError(f"expected 'short_name r g b' for ion {name}, found '{s}'",
                              path, f"line {ln}")
        rgb = [parse_number(t, "colour component", path, ln) for t in tok[1:]]
        if not all(0.0 <= c <= 1.0 for c in rgb):
            raise FormatError(f"colour components {' '.join(tok[1:])} of ion {name} are not "
                              "between 0 and 1", path, f"line {ln}")
        color = "#" + "".join(f"{round(c * 255):02X}" for c in rgb)
        atoms, label = _column_ion(name, tok[0], rows, path, name_line)
        columns.append((atoms, label, color))
    ln, s = cur.take(f"the {what} column line (dashes, then one name per ion)")
    if not s.startswith("-") or _EXTENSION.match(s):
        raise FormatError(f"expected the {what} column line (dashes, then one name per ion), "
                          f"found '{s}'", path, f"line {ln}")
    labels = s.lstrip("-").split()
    if len(labels) != n_ions:
        raise FormatError(f"the column line names {len(labels)} columns for {n_ions} ions",
                          path, f"line {ln}")
    out = []
    for j in range(1, n_ranges + 1):
        ln, s = cur.take(f"range row {j} of {n_ranges} ({what})")
        tok = s.split()
        # the row starts with '.', with its number (other tools), or with its lower bound
        if tok and (tok[0] == "." or (len(tok) == 3 + n_ions and tok[0].isdigit())):
            tok = tok[1:]
        if len(tok) != 2 + n_ions:
            raise FormatError(f"range row '{s}' should hold two bounds and {n_ions} counts "
                              "(after a '.' or the row's number)", path, f"line {ln}")
        lo = parse_number(tok[0], "lower bound", path, ln)
        hi = parse_number(tok[1], "upper bound", path, ln)
        counts = [parse_count(t, f"count of column {labels[k]}", path, ln, MAX_ION_ATOMS)
                  for k, t in enumerate(tok[2:])]
        out.append((ln, lo, hi, counts))
    return columns, out


def _row_ion(columns, counts, path, line: int):
    """(atoms, label, color) of one range row from its column counts."""
    used = [(col, k) for col, k in zip(columns, counts) if k]
    if not used:
        raise FormatError("range row assigns no ion (every count is 0)", path, f"line {line}")
    named = [col[1] for col, _ in used if col[1] is not None]
    if named:
        if len(used) > 1:
            raise RangeError(f"range row combines the named ion '{named[0]}' with other columns",
                             path, f"line {line}")
        return (), named[0], used[0][0][2]
    atoms: dict[str, int] = {}
    for (col_atoms, _, _), k in used:
        for el, n in col_atoms:
            atoms[el] = atoms.get(el, 0) + n * k
    color = used[0][0][2] if len(used) == 1 and used[0][1] == 1 else None
    return tuple(atoms.items()), None, color


def _name(atoms, label) -> str:
    return format_formula(atoms) if atoms else label


def read_rng(path) -> RangeTable:
    """Read an Oak Ridge ``.rng`` range file, with its polyatomic extension.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    RangeTable
        Windows in Da with their ions (charge inferred from the window),
        ``"#RRGGBB"`` colours from the ions' r g b (0-1), no volumes.
        Same-ion duplicates are merged and named ions are listed, both in
        ``warnings``.

    Warnings name an ion name read as an element in lower case, a window
    that holds no isotope of its ion (kept, charge unknown), an element
    without natural isotopes, named ions and merged windows.

    Raises
    ------
    FormatError
        Missing, empty or binary file, a malformed line, counts that do not
        match the lines that follow, no range row.
    RangeError
        An ion named like an element symbol that is none (``Xx``), an ion
        above the atom limit, an extension row that gives a window other
        atoms than the first block, windows of different ions that overlap.
    """
    p = os.fspath(path)
    cur = _Lines(read_text_lines(p), p)
    ions = RowIons(p)
    columns, rows = _read_block(cur, p, "first block", ions)
    if not rows:
        raise FormatError("the file has no range row (its count line gives 0 ranges)", p,
                          f"line {cur.items[0][0]}")
    entries = []     # [line, lo, hi, atoms, label, color]
    by_window: dict[tuple[float, float], list] = {}  # the first entry of each window
    for ln, lo, hi, counts in rows:
        e = [ln, lo, hi, *_row_ion(columns, counts, p, ln)]
        entries.append(e)
        by_window.setdefault((lo, hi), e)
    nxt = cur.peek()
    if nxt is not None and _EXTENSION.match(nxt[1]):
        cur.take("the polyatomic extension")
        ext_columns, ext_rows = _read_block(cur, p, "polyatomic extension", ions)
        for ln, lo, hi, counts in ext_rows:
            atoms, label, color = _row_ion(ext_columns, counts, p, ln)
            first = by_window.get((lo, hi))
            if first is None:
                entries.append([ln, lo, hi, atoms, label, color])
            elif label is not None or (first[3] and sorted(atoms) == sorted(first[3])):
                first[5] = first[5] or color    # names a window of the first block
            else:
                raise RangeError(f"the polyatomic extension ranges [{lo}, {hi}) as "
                                 f"{_name(atoms, label)} but line {first[0]} ranges it as "
                                 f"{_name(first[3], first[4])}", p, f"line {ln}")
    extra = cur.peek()
    if extra is not None:
        raise FormatError(f"unexpected line after the range rows: '{extra[1]}'", p,
                          f"line {extra[0]}")

    ranges, named = [], []
    for ln, lo, hi, atoms, label, color in entries:
        if atoms:
            ion = ions.ion(atoms, lo, hi, ln)
        else:
            ion = Ion((), None, label=label)
            named.append(label)
        ranges.append(Range(lo, hi, ion, None, color, ln))
    return RangeTable.from_ranges(ranges, p, ions.warnings() + named_ions_warning(named))
