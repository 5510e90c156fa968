"""Cameca ``.rrng`` range files (IVAS, AP Suite): read and write.

The format is INI-like::

    [Ions]
    Number=2
    Ion1=Si
    Ion2=O
    [Ranges]
    Number=2
    Range1=13.8745 14.2410 Vol:0.02003 Si:1 Color:CCCCCC
    Range2=31.8470 33.7480 Vol:0.05766 O:2 Color:009999

A range line gives the window in Da, the ion's volume in nm^3 (``Vol:``;
``Vol:0``, what AP Suite writes for a named ion, is no volume), its atoms
(``El:n``) or, for an ion that is not a formula, ``Name:X``, and a colour
(``Color:RRGGBB``). Section names and keys are case-insensitive, unknown
sections (``[Info]``...) are skipped, decimal commas (``22,8615``, written on
German-locale PCs) are read as points, and any line ending is accepted. An
element written in lower case (``si:1``) is read as that element, with a
warning.

The charge is not in the format: it is inferred from the window's position
against the ion's isotope peaks (:func:`liprobe.chemistry.infer_charge`),
unless the file states it, with a ``Charge:n`` field on the range line or a
``RangeN=n`` line in a ``[Charges]`` section (what :func:`write_rrng` writes).
A window that holds no isotope of its ion at any charge (a mislabel, "Si" at
46 Da) is kept with the charge unknown (the ion ``Si?``: its atoms count,
ratios of ions leave it out) and a warning naming the line.
:func:`write_rrng` states a charge only for a range whose charge the window
alone would not give back, and in ``[Charges]``, which other readers skip (apav
refuses a ``Charge:`` field, pyccapt reads it as an element), so files stay
what other readers expect while every table round-trips.
"""

from __future__ import annotations

import math
import os
import re
import zlib

import numpy as np

from ..chemistry import (
    CHARGE_LIMIT,
    MAX_CHARGE,
    MAX_ION_ATOMS,
    Ion,
    infer_charge,
    is_element,
    isotope_note,
)
from ..errors import FormatError, RangeError
from ..rangetable import Range, RangeTable
from ._files import atomic_write, read_text_lines

__all__ = ["PALETTE", "default_color", "read_rrng", "write_rrng"]

_SECTION = re.compile(r"^\[\s*([^\]]*?)\s*\]$")
_ENTRY = re.compile(r"^([A-Za-z]+)\s*(\d*)\s*=\s*(.*)$")
#: Most digits of a RangeN / IonN index (a file of 10^9 ranges is not a range file).
_INDEX_DIGITS = 9


def _index(idx: str, p: str, ln: int) -> int:
    """The N of ``RangeN=``, refused (FormatError) beyond :data:`_INDEX_DIGITS` digits."""
    if len(idx.lstrip("0")) > _INDEX_DIGITS:
        raise FormatError(f"index {idx[:12]}... has {len(idx):,} digits: not a range number",
                          p, f"line {ln}")
    return int(idx)
_NUMBER = re.compile(r"^[+-]?(?:\d+(?:[.,]\d*)?|[.,]\d+)(?:[eE][+-]?\d+)?$")
_FIELD = re.compile(r"\s*([^\s:]+)\s*:\s*([^\s:]+)")
_HEX6 = re.compile(r"^[0-9A-Fa-f]{6}$")
_COMMENT = ("#", ";")


def parse_number(text: str, what: str, path, line: int) -> float:
    """A decimal number from a range file; a comma may stand for the point.

    Raises
    ------
    FormatError
        Naming ``what`` the number was for, the file and the line.
    """
    t = text.strip()
    if not _NUMBER.match(t):
        raise FormatError(f"{what} '{text}' is not a number", path, f"line {line}")
    x = float(t.replace(",", "."))
    if not math.isfinite(x):
        raise FormatError(f"{what} '{text}' is too large", path, f"line {line}")
    return x


def named_ions_warning(labels) -> list[str]:
    """The warning listing named ions (no elements) that a file defines, if any."""
    labels = list(dict.fromkeys(labels))
    if not labels:
        return []
    if len(labels) == 1:
        return [f"1 named ion without elements loads as an ion that carries no atoms: "
                f"{labels[0]}"]
    return [f"{len(labels)} named ions without elements load as ions that carry no atoms: "
            f"{', '.join(labels)}"]


#: Most digits of a whole number in a range file (int64 holds 18).
_MAX_DIGITS = 18


def parse_count(text: str, what: str, path, line: int, limit: int | None = None) -> int:
    """A whole number >= 0 from a range file, at most ``limit``.

    Raises
    ------
    FormatError
        Naming ``what``, the file and the line: not a whole number, or above
        ``limit`` (or above 18 digits when there is no limit).
    """
    t = text.strip()
    if not re.fullmatch(r"[0-9]+", t):
        raise FormatError(f"{what} '{t}' is not a whole number", path, f"line {line}")
    shown = t if len(t) <= 24 else f"{t[:12]}... ({len(t)} digits)"
    if len(t) > _MAX_DIGITS or (limit is not None and int(t) > limit):
        bound = f"the limit of {limit:,}" if limit is not None else f"{_MAX_DIGITS} digits"
        raise FormatError(f"{what} {shown} is above {bound}", path, f"line {line}")
    return int(t)


def _lines(lines) -> str:
    """``line 8`` or ``lines 8, 9, 12`` (the first five, then how many more)."""
    lines = list(dict.fromkeys(lines))
    if len(lines) == 1:
        return f"line {lines[0]}"
    head = ", ".join(str(n) for n in lines[:5])
    return f"lines {head}" + (f" and {len(lines) - 5} more" if len(lines) > 5 else "")


class RowIons:
    """The ions of a range file's rows and what they load with.

    Shared by the ``.rrng`` and ``.rng`` readers: :meth:`ion` makes a row's ion
    (charge stated, inferred from the window, or unknown for a window that
    holds none of its isotopes), :meth:`element` reads an element symbol
    (lower case accepted), and :meth:`warnings` says what was assumed, row by
    row.
    """

    def __init__(self, path):
        self.path = path
        self.unknown_charge: list[tuple[int, float, float, str]] = []
        self.recased: dict[str, tuple[str, list[int]]] = {}
        self.element_lines: dict[str, list[int]] = {}

    def element(self, symbol: str, line: int) -> str | None:
        """``symbol`` as a chemical element (``si`` -> ``Si``, noted), or None."""
        if is_element(symbol):
            return symbol
        cap = symbol.capitalize()
        if symbol.islower() and is_element(cap):
            self.recased.setdefault(symbol, (cap, []))[1].append(line)
            return cap
        return None

    def ion(self, atoms, lo: float, hi: float, line: int, charge: int | None = None) -> Ion:
        """The ion of a row with ``atoms`` in the window ``[lo, hi)`` Da.

        Raises
        ------
        RangeError
            An ion above :data:`~liprobe.chemistry.MAX_ION_ATOMS` atoms or
            :data:`~liprobe.chemistry.CHARGE_LIMIT`.
        """
        try:
            ion = Ion(tuple(atoms), charge)
        except ValueError as e:
            raise RangeError(str(e), self.path, f"line {line}") from None
        for el, _ in ion.atoms:
            self.element_lines.setdefault(el, []).append(line)
        if charge is not None:
            return ion
        try:
            return ion.with_charge(infer_charge(ion.atoms, lo, hi))
        except ValueError:
            self.unknown_charge.append((line, lo, hi, ion.formula))
            return ion

    def warnings(self) -> list[str]:
        """Lower-case elements, rows kept with an unknown charge, assumed isotopes."""
        out = [f"'{written}' is read as the element {sym} (element symbols are "
               f"case-sensitive) at {_lines(lines)}"
               for written, (sym, lines) in self.recased.items()]
        out += [f"line {ln}: window [{lo}, {hi}) holds no isotope of {formula} at charge "
                f"1-{MAX_CHARGE}: kept as {formula}? with its charge unknown (a mislabel? "
                "its atoms count, ratios of ions leave it out)"
                for ln, lo, hi, formula in self.unknown_charge]
        for el, lines in self.element_lines.items():
            note = isotope_note(el)
            if note is not None:
                out.append(f"{note} ({_lines(lines)})")
        return out


def _parse_range(value: str, path, line: int, rows: RowIons):
    """``lo hi Vol:v El:n ... Color:RRGGBB`` -> (lo, hi, volume, color, atoms, name, charge)."""
    parts = value.split(None, 2)
    if len(parts) < 2:
        raise FormatError(f"range '{value.strip()}' needs a lower and an upper bound in Da",
                          path, f"line {line}")
    lo = parse_number(parts[0], "lower bound", path, line)
    hi = parse_number(parts[1], "upper bound", path, line)
    rest = parts[2] if len(parts) > 2 else ""
    volume = color = name = charge = None
    atoms: dict[str, int] = {}
    pos = 0
    for m in _FIELD.finditer(rest):
        if m.start() != pos:
            break
        pos = m.end()
        key, val = m.group(1), m.group(2)
        low = key.lower()
        if low == "vol":
            volume = parse_number(val, "volume", path, line) or None   # Vol:0: no volume
            if volume is not None and volume < 0:
                raise FormatError(f"volume Vol:{val} is negative (nm^3 per ion; Vol:0 "
                                  "means none)", path, f"line {line}")
        elif low in ("color", "colour"):
            if not _HEX6.match(val.removeprefix("#")):
                raise FormatError(f"colour '{val}' is not six hexadecimal digits (RRGGBB)",
                                  path, f"line {line}")
            color = "#" + val.removeprefix("#")
        elif low == "name":
            name = val
        elif low == "charge":
            charge = parse_count(val, "charge", path, line, CHARGE_LIMIT)
            if charge < 1:
                raise FormatError("charge must be a positive whole number", path, f"line {line}")
        elif (symbol := rows.element(key, line)) is None:
            raise RangeError(f"'{key}' is not a chemical element (in '{m.group(0).strip()}')",
                             path, f"line {line}")
        elif symbol in atoms:
            raise FormatError(f"element {symbol} is given twice", path, f"line {line}")
        else:
            atoms[symbol] = parse_count(val, f"count of {symbol}", path, line, MAX_ION_ATOMS)
    if rest[pos:].strip():
        raise FormatError(f"cannot read '{rest[pos:].strip()}' (expected fields such as "
                          "Vol:0.02 Si:1 Color:CCCCCC)", path, f"line {line}")
    atoms = {el: n for el, n in atoms.items() if n > 0}
    if not atoms and name is None:
        raise FormatError("range gives no element (El:n) and no Name:", path, f"line {line}")
    return lo, hi, volume, color, tuple(atoms.items()), name, charge


def _check_number(declared, found: int, section: str, path):
    """``declared`` is (value text, line) of a section's Number=, or None."""
    if declared is None:
        return
    text, line = declared
    n = parse_count(text, f"[{section}] Number", path, line)
    if n != found:
        raise FormatError(f"[{section}] Number={n} but the section has {found} "
                          f"{section.lower()[:-1]} line{'s' if found != 1 else ''}",
                          path, f"line {line}")


def _numbering_warning(indices: list[int]) -> list[str]:
    """A warning when RangeN keys are not 1..N each once (TiAlN_film has two Range41)."""
    seen: dict[int, int] = {}
    for i in indices:
        seen[i] = seen.get(i, 0) + 1
    twice = [f"Range{i}" for i, k in seen.items() if k > 1]
    missing = [f"Range{i}" for i in range(1, len(indices) + 1) if i not in seen]
    if not twice and not missing:
        return []
    detail = "; ".join(p for p in (
        f"repeated: {', '.join(twice)}" if twice else "",
        f"missing: {', '.join(missing)}" if missing else "") if p)
    return [f"range keys are not numbered 1 to {len(indices)} ({detail}); "
            "every Range line was read"]


def _stated_charges(stated, raw, path) -> dict[int, int]:
    """RangeN -> charge of the ``[Charges]`` section, each naming a range of the file."""
    known = {idx for _, idx, _ in raw}
    out = {}
    for idx, (value, line) in stated.items():
        if idx not in known:
            raise FormatError(f"[Charges] gives a charge to Range{idx}, which the file does "
                              "not have", path, f"line {line}")
        out[idx] = parse_count(value, f"charge of Range{idx}", path, line, CHARGE_LIMIT)
        if out[idx] < 1:
            raise FormatError("charge must be a positive whole number", path, f"line {line}")
    return out


def read_rrng(path) -> RangeTable:
    """Read a Cameca ``.rrng`` range file.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    RangeTable
        Windows in Da with their ions (charge stated by ``Charge:n`` or
        ``[Charges]``, or inferred from the window), ``Vol:`` volumes in nm^3 and ``"#RRGGBB"``
        colours. Same-ion duplicates are merged and named ions (``Name:X``,
        no elements) are listed, both in ``warnings``.

    Warnings (in ``RangeTable.warnings``) name what loaded with a caveat:
    range keys not numbered 1 to N, an element written in lower case, a
    window that holds no isotope of its ion (kept, charge unknown), an
    element without natural isotopes (placed at one isotope, see
    :func:`~liprobe.chemistry.isotope_note`), named ions, merged windows.

    Raises
    ------
    FormatError
        Missing, empty or binary file, no ``[Ranges]`` section or no range in
        it (a file cut off), a malformed line, a ``Number=`` that is not the
        number of entries, a count or charge above its limit.
    RangeError
        An unknown element symbol, an ion above the atom limit, windows of
        different ions that overlap.
    """
    p = os.fspath(path)
    lines = read_text_lines(p)
    section = None
    started: dict[str, int] = {}
    number: dict[str, tuple[str, int]] = {}
    n_ions = 0
    raw = []        # (line, index, value) of each RangeN entry
    stated: dict[int, tuple[str, int]] = {}   # RangeN of [Charges] -> (value, line)
    for ln, text in enumerate(lines, 1):
        s = text.strip()
        if not s or s.startswith(_COMMENT):
            continue
        m = _SECTION.match(s)
        if m:
            section = m.group(1).lower()
            if section in ("ions", "ranges", "charges"):
                if section in started:
                    raise FormatError(f"second [{m.group(1)}] section (the first is at line "
                                      f"{started[section]})", p, f"line {ln}")
                started[section] = ln
            continue
        if section not in ("ions", "ranges", "charges"):
            continue  # text before the first section, or an unknown section
        m = _ENTRY.match(s)
        if not m:
            raise FormatError(f"cannot read '{s}' (expected Key=value)", p, f"line {ln}")
        key, idx, value = m.group(1).lower(), m.group(2), m.group(3)
        if section == "charges":
            if key != "range" or not idx:
                raise FormatError(f"unexpected key '{m.group(1)}{idx}' in [Charges] (expected "
                                  "RangeN=charge)", p, f"line {ln}")
            stated[_index(idx, p, ln)] = (value, ln)
            continue
        title = "Ions" if section == "ions" else "Ranges"
        if key == "number" and not idx:
            if title in number:
                raise FormatError(f"second Number= in [{title}]", p, f"line {ln}")
            number[title] = (value, ln)
        elif section == "ions" and key == "ion" and idx:
            n_ions += 1
        elif section == "ranges" and key == "range" and idx:
            raw.append((ln, _index(idx, p, ln), value))
        else:
            raise FormatError(f"unexpected key '{m.group(1)}{idx}' in [{title}]", p, f"line {ln}")
    if "ranges" not in started:
        raise FormatError("file ends without a [Ranges] section", p, f"line {len(lines)}")
    _check_number(number.get("Ions"), n_ions, "Ions", p)
    _check_number(number.get("Ranges"), len(raw), "Ranges", p)
    if not raw:
        raise FormatError(f"[Ranges] holds no range: the file ends at line {len(lines)} "
                          "(cut off?)", p, f"line {started['ranges']}")

    charges = _stated_charges(stated, raw, p)
    rows = RowIons(p)
    ranges, named = [], []
    for ln, idx, value in raw:
        lo, hi, volume, color, atoms, name, charge = _parse_range(value, p, ln, rows)
        if idx in charges:
            if charge is not None and charge != charges[idx]:
                raise FormatError(f"Range{idx} states charge {charge} but [Charges] gives "
                                  f"{charges[idx]}", p, f"line {ln}")
            charge = charges[idx]
        if atoms:
            ion = rows.ion(atoms, lo, hi, ln, charge)
        else:
            ion = Ion((), charge, label=name)
            named.append(name)
        ranges.append(Range(lo, hi, ion, volume, color, ln))
    warnings = (_numbering_warning([i for _, i, _ in raw]) + rows.warnings()
                + named_ions_warning(named))
    return RangeTable.from_ranges(ranges, p, warnings)


def _needs_charge_field(r: Range) -> bool:
    """Whether reading ``r`` back needs its charge stated (``[Charges]``)."""
    ion = r.ion
    if ion.charge is None:
        return False
    if ion.is_named:
        return True
    try:
        return infer_charge(ion.atoms, r.lo, r.hi) != ion.charge
    except ValueError:
        return True


def _check_writable(r: Range, path):
    if not (math.isfinite(r.lo) and math.isfinite(r.hi)):
        raise FormatError(f"window [{r.lo}, {r.hi}) of {r.ion.name} has a non-finite bound", path)
    if r.volume is not None and not math.isfinite(r.volume):
        raise FormatError(f"volume {r.volume} of {r.ion.name} is not finite", path)
    if r.color is not None and not (r.color.startswith("#") and _HEX6.match(r.color[1:])):
        raise FormatError(f"colour '{r.color}' of {r.ion.name} is not '#RRGGBB'", path)
    if r.ion.is_named and not re.fullmatch(r"[^\s:=]+", r.ion.formula):  # formula: the label
        raise FormatError(f"named ion '{r.ion.label}' cannot be written to .rrng "
                          "(no spaces, ':' or '=' in a name)", path)


#: Colours of windows that have none (the format needs one on every line): a
#: fixed palette, picked by the ion's formula, so a table always writes the same.
PALETTE = ("1F77B4", "FF7F0E", "2CA02C", "D62728", "9467BD", "8C564B", "E377C2", "7F7F7F",
           "BCBD22", "17BECF", "AEC7E8", "FFBB78")


def default_color(ion: Ion) -> str:
    """The ``"#RRGGBB"`` :func:`write_rrng` gives a window of ``ion`` that has no colour."""
    return "#" + PALETTE[zlib.crc32(ion.formula.encode()) % len(PALETTE)]


def _decimal(x: float) -> str:
    """The shortest decimal that reads back to ``x`` (float64), without an exponent."""
    return np.format_float_positional(float(x), unique=True, trim="0")


def _ions_section(table: RangeTable) -> list[str]:
    """``[Ions]`` as AP Suite writes it: each element once, then the named ions' labels."""
    names: dict[str, None] = {}
    for ion in table.ions:
        for el in ion.elements:
            names.setdefault(el, None)
    for ion in table.ions:
        if ion.is_named:
            names.setdefault(ion.formula, None)
    return ["[Ions]", f"Number={len(names)}", *(f"Ion{i}={n}" for i, n in enumerate(names, 1))]


def write_rrng(path, table: RangeTable) -> None:
    """Write a range table as a ``.rrng`` file, atomically, with CRLF line ends.

    What AP Suite writes, and what the readers of apav, pyccapt and ifes
    (ifes-apt-tc-data-modeling) expect: ``[Ions]`` lists every element once,
    then the label of each named ion; each window is a
    ``RangeN=lo hi Vol:v El:n ... Color:RRGGBB`` line (``Name:X`` for a named
    ion), with ``Vol:`` always (``Vol:0`` when the range has no volume: read
    back as none) and ``Color:`` last (a colour from :data:`PALETTE`, by
    formula, when the range has none). Bounds and volumes are written as the
    shortest decimal, without an exponent, that reads back to the same
    float64, so :func:`read_rrng` gives back the same windows, ions, charges,
    volumes and colours bit for bit. A charge is written only where the
    window alone would not give the ion's charge back (see
    :func:`~liprobe.chemistry.infer_charge`), and for a named ion with a
    charge, as ``RangeN=n`` in a last section, ``[Charges]``, that the other
    readers skip. An ion with atoms but no charge is written without one and
    reads back with the charge its window gives (or unknown).

    Parameters
    ----------
    path : str or path-like
    table : RangeTable

    Raises
    ------
    FormatError
        If the folder does not exist, the table has no window, or a range
        cannot be written (a non-finite bound or volume, a colour that is not
        ``"#RRGGBB"``, a named ion whose label has spaces, ``:`` or ``=``).
    """
    p = os.fspath(path)
    if not table.ranges:
        raise FormatError("the range table has no window to write", p)
    for r in table.ranges:
        _check_writable(r, p)
    out = _ions_section(table) + ["[Ranges]", f"Number={len(table.ranges)}"]
    charges = []
    for i, r in enumerate(table.ranges, 1):
        fields = [_decimal(r.lo), _decimal(r.hi),
                  f"Vol:{_decimal(r.volume) if r.volume is not None else '0'}"]
        if r.ion.is_named:
            fields.append(f"Name:{r.ion.label}")
        else:
            fields += [f"{el}:{n}" for el, n in r.ion.atoms]
        if _needs_charge_field(r):
            charges.append(f"Range{i}={r.ion.charge}")
        fields.append(f"Color:{(r.color or default_color(r.ion))[1:]}")
        out.append(f"Range{i}=" + " ".join(fields))
    if charges:
        out += ["[Charges]", *charges]
    with atomic_write(p, "w", encoding="utf-8", newline="\r\n") as f:
        f.write("\n".join(out) + "\n")
