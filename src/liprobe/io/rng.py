"""Oak Ridge ``.rng`` range files: read and write.

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
from ._files import atomic_write, read_text_lines
from .rrng import (
    RowIons,
    _check_writable,
    _decimal,
    _needs_charge_field,
    default_color,
    named_ions_warning,
    parse_count,
    parse_number,
)

__all__ = ["read_rng", "write_rng"]

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


# ---------------------------------------------------------------------------
# writing
# ---------------------------------------------------------------------------

def _element_order(table: RangeTable) -> list[str]:
    """The elements, ordered so that each ion's atoms follow the column order where they can.

    The reader gives a molecule its atoms in column order: a topological order
    of "comes before in some ion" (ties and cycles: first appearance) keeps
    ``NiO2`` from coming back as ``O2Ni``.
    """
    first = list(table.elements)
    after: dict[str, set[str]] = {el: set() for el in first}
    for ion in table.ions:
        els = ion.elements
        for a, b in zip(els, els[1:]):
            if a != b:
                after[a].add(b)
    order: list[str] = []
    left = list(first)
    while left:
        ready = [el for el in left if not any(el in after[o] for o in left if o != el)]
        pick = ready[0] if ready else left[0]
        order.append(pick)
        left.remove(pick)
    return order


def _rgb(color: str) -> str:
    """``#RRGGBB`` as the format's three components between 0 and 1 (4 decimals read back)."""
    return " ".join(f"{int(color[i:i + 2], 16) / 255:.4f}" for i in (1, 3, 5))


def _first_color(table: RangeTable, match, fallback: Ion) -> str:
    for r in table.ranges:
        if match(r.ion) and r.color:
            return r.color
    return default_color(fallback)


def write_rng(path, table: RangeTable) -> None:
    """Write a range table as an Oak Ridge ``.rng`` file, atomically.

    One column per element (then one per named ion), each with a colour; one
    row per window, ``. lo hi`` and the count of each column; molecular ions
    are listed again in a polyatomic extension block, one column per
    molecule, as AP Suite and IVAS write them (it names the molecule and gives
    its colour). Bounds are the shortest decimals that read back to the same
    float64.

    What the format keeps: the windows, their ions (with the atoms in column
    order; the columns are ordered so that each ion keeps its own order where
    the table allows) and the colours of single-atom ions and molecules
    (the first colour of each; colours are per column, not per window). It has
    no volumes and no charges: the reader infers each window's charge.

    Parameters
    ----------
    path : str or path-like
    table : RangeTable

    Raises
    ------
    FormatError
        The table has no window; a window whose charge the reader would not
        infer back from it (write ``.rrng``, which states it); a named ion whose
        label reads as a formula or an element; a non-finite bound, a colour
        that is not ``"#RRGGBB"``, a label with spaces, ``:`` or ``=``.

    Examples
    --------
    >>> import os, tempfile
    >>> from liprobe import Range, RangeTable, parse_ion, read_ranges
    >>> tmp = tempfile.TemporaryDirectory()
    >>> table = RangeTable.from_ranges([Range(6.9, 7.2, parse_ion("Li+"), color="#FF0000"),
    ...                                 Range(74.8, 75.2, parse_ion("NiO+"))])
    >>> path = os.path.join(tmp.name, "tiny.rng")
    >>> write_rng(path, table)
    >>> print(open(path).read())              # doctest: +NORMALIZE_WHITESPACE
    3 2
    Li
    Li 1.0000 0.0000 0.0000
    Ni
    Ni ...
    O
    O ...
    ------------------- Li Ni O
    . 6.9 7.2 1 0 0
    . 74.8 75.2 0 1 1
    --- polyatomic extension
    1 1
    NiO
    NiO ...
    ------------------- NiO
    . 74.8 75.2 1
    >>> [r.ion.name for r in read_ranges(path)]
    ['Li+', 'NiO+']
    >>> tmp.cleanup()
    """
    p = os.fspath(path)
    if not table.ranges:
        raise FormatError("the range table has no window to write", p)
    for r in table.ranges:
        _check_writable(r, p)
        if _needs_charge_field(r):
            raise FormatError(f"the window [{r.lo}, {r.hi}) of {r.ion.name} would read back "
                              "with another charge and .rng has no field for it (write .rrng, "
                              "which states it)", p)
        if r.ion.is_named:
            label = r.ion.formula
            try:
                parse_formula(label)
            except ValueError:
                pass
            else:
                raise FormatError(f"the named ion '{label}' would read back as a formula in "
                                  ".rng (write .rrng, whose Name: field keeps it)", p)
            if re.fullmatch(r"[A-Z][a-z]?", label):
                raise FormatError(f"the named ion '{label}' is shaped like an element symbol, "
                                  "which .rng readers refuse (write .rrng)", p)
    elements = _element_order(table)
    named = list(dict.fromkeys(r.ion.formula for r in table.ranges if r.ion.is_named))
    columns = elements + named
    index = {c: j for j, c in enumerate(columns)}
    out = [f"{len(columns)} {len(table.ranges)}"]
    for el in elements:
        single = Ion(((el, 1),), 1)
        color = _first_color(table, lambda ion, el=el: ion.atoms == ((el, 1),), single)
        out += [el, f"{el} {_rgb(color)}"]
    for label in named:
        ion = Ion((), None, label=label)
        color = _first_color(table, lambda i, label=label: i.is_named and i.formula == label,
                             ion)
        out += [label, f"{label} {_rgb(color)}"]
    out.append("-" * 19 + " " + " ".join(columns))
    molecules: dict[str, list[Range]] = {}
    for r in table.ranges:
        counts = [0] * len(columns)
        if r.ion.is_named:
            counts[index[r.ion.formula]] = 1
        else:
            for el, k in r.ion.atoms:
                counts[index[el]] += k
            if len(set(r.ion.elements)) > 1:
                molecules.setdefault(r.ion.formula, []).append(r)
        out.append(f". {_decimal(r.lo)} {_decimal(r.hi)} " + " ".join(map(str, counts)))
    if molecules:
        rows = [(f, r) for f, rs in molecules.items() for r in rs]
        out += ["--- polyatomic extension", f"{len(molecules)} {len(rows)}"]
        for f, rs in molecules.items():
            color = next((r.color for r in rs if r.color), None) or default_color(rs[0].ion)
            out += [f, f"{f} {_rgb(color)}"]
        out.append("-" * 19 + " " + " ".join(molecules))
        names = list(molecules)
        for f, r in rows:
            counts = [1 if m == f else 0 for m in names]
            out.append(f". {_decimal(r.lo)} {_decimal(r.hi)} " + " ".join(map(str, counts)))
    with atomic_write(p, "w", encoding="utf-8") as fh:
        fh.write("\n".join(out) + "\n")
