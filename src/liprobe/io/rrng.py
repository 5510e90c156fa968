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

A range line gives the window in Da, the ion's volume in nm^3 (``Vol:``), its
atoms (``El:n``) or, for an ion that is not a formula, ``Name:X``, and a colour
(``Color:RRGGBB``). Section names and keys are case-insensitive, unknown
sections (``[Info]``...) are skipped, decimal commas (``22,8615``, written on
German-locale PCs) are read as points, and any line ending is accepted.

The charge is not in the format: it is inferred from the window's position
against the ion's isotope peaks (:func:`liprobe.chemistry.infer_charge`),
unless the line states it with a ``Charge:n`` field. :func:`write_rrng` writes
that field only for a range whose charge the window alone would not give back,
so files stay what other readers expect while every table round-trips.
"""

from __future__ import annotations

import math
import os
import re

from ..chemistry import Ion, infer_charge, is_element
from ..errors import FormatError, RangeError
from ..rangetable import Range, RangeTable
from ._files import atomic_write, read_text_lines

__all__ = ["read_rrng", "write_rrng"]

_SECTION = re.compile(r"^\[\s*([^\]]*?)\s*\]$")
_ENTRY = re.compile(r"^([A-Za-z]+)\s*(\d*)\s*=\s*(.*)$")
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
    return float(t.replace(",", "."))


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


def parse_count(text: str, what: str, path, line: int) -> int:
    """A whole number >= 0 from a range file; FormatError naming ``what`` otherwise."""
    t = text.strip()
    if not re.fullmatch(r"[0-9]+", t):
        raise FormatError(f"{what} '{text.strip()}' is not a whole number", path, f"line {line}")
    return int(t)


def _parse_range(value: str, path, line: int):
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
            volume = parse_number(val, "volume", path, line)
        elif low in ("color", "colour"):
            if not _HEX6.match(val.removeprefix("#")):
                raise FormatError(f"colour '{val}' is not six hexadecimal digits (RRGGBB)",
                                  path, f"line {line}")
            color = "#" + val.removeprefix("#")
        elif low == "name":
            name = val
        elif low == "charge":
            charge = parse_count(val, "charge", path, line)
            if charge < 1:
                raise FormatError("charge must be a positive whole number", path, f"line {line}")
        elif not is_element(key):
            raise RangeError(f"'{key}' is not a chemical element (in '{m.group(0).strip()}')",
                             path, f"line {line}")
        elif key in atoms:
            raise FormatError(f"element {key} is given twice", path, f"line {line}")
        else:
            atoms[key] = parse_count(val, f"count of {key}", path, line)
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


def read_rrng(path) -> RangeTable:
    """Read a Cameca ``.rrng`` range file.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    RangeTable
        Windows in Da with their ions (charge stated by ``Charge:n`` or
        inferred from the window), ``Vol:`` volumes in nm^3 and ``"#RRGGBB"``
        colours. Same-ion duplicates are merged and named ions (``Name:X``,
        no elements) are listed, both in ``warnings``.

    Raises
    ------
    FormatError
        Missing, empty or binary file, no ``[Ranges]`` section, a malformed
        line, a ``Number=`` that is not the number of entries.
    RangeError
        An unknown element symbol, a window holding no isotope of its ion at
        charge 1-4, windows of different ions that overlap.
    """
    p = os.fspath(path)
    lines = read_text_lines(p)
    section = None
    started: dict[str, int] = {}
    number: dict[str, tuple[str, int]] = {}
    n_ions = 0
    raw = []        # (line, index, value) of each RangeN entry
    for ln, text in enumerate(lines, 1):
        s = text.strip()
        if not s or s.startswith(_COMMENT):
            continue
        m = _SECTION.match(s)
        if m:
            section = m.group(1).lower()
            if section in ("ions", "ranges"):
                if section in started:
                    raise FormatError(f"second [{m.group(1)}] section (the first is at line "
                                      f"{started[section]})", p, f"line {ln}")
                started[section] = ln
            continue
        if section not in ("ions", "ranges"):
            continue  # text before the first section, or an unknown section
        m = _ENTRY.match(s)
        if not m:
            raise FormatError(f"cannot read '{s}' (expected Key=value)", p, f"line {ln}")
        key, idx, value = m.group(1).lower(), m.group(2), m.group(3)
        title = "Ions" if section == "ions" else "Ranges"
        if key == "number" and not idx:
            if title in number:
                raise FormatError(f"second Number= in [{title}]", p, f"line {ln}")
            number[title] = (value, ln)
        elif section == "ions" and key == "ion" and idx:
            n_ions += 1
        elif section == "ranges" and key == "range" and idx:
            raw.append((ln, int(idx), value))
        else:
            raise FormatError(f"unexpected key '{m.group(1)}{idx}' in [{title}]", p, f"line {ln}")
    if "ranges" not in started:
        raise FormatError("file ends without a [Ranges] section", p, f"line {len(lines)}")
    _check_number(number.get("Ions"), n_ions, "Ions", p)
    _check_number(number.get("Ranges"), len(raw), "Ranges", p)

    ranges, named = [], []
    for ln, _idx, value in raw:
        lo, hi, volume, color, atoms, name, charge = _parse_range(value, p, ln)
        if atoms:
            if charge is None:
                try:
                    charge = infer_charge(atoms, lo, hi)
                except ValueError as e:
                    raise RangeError(str(e), p, f"line {ln}") from None
            ion = Ion(atoms, charge)
        else:
            ion = Ion((), charge, label=name)
            named.append(name)
        ranges.append(Range(lo, hi, ion, volume, color, ln))
    warnings = _numbering_warning([i for _, i, _ in raw]) + named_ions_warning(named)
    return RangeTable.from_ranges(ranges, p, warnings)


def _needs_charge_field(r: Range) -> bool:
    """Whether reading ``r`` back needs ``Charge:n`` to get its charge."""
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


def write_rrng(path, table: RangeTable) -> None:
    """Write a range table as a ``.rrng`` file, atomically, with CRLF line ends.

    ``[Ions]`` lists each formula once (a named ion by its label); each window
    is a ``RangeN=lo hi Vol:v El:n ... Color:RRGGBB`` line (``Name:X`` for a
    named ion). Bounds and volumes are written as the shortest decimal that
    reads back to the same float64, so :func:`read_rrng` gives back the same
    windows, ions, charges, volumes and colours bit for bit. ``Vol:`` and
    ``Color:`` are left out when the range has none. ``Charge:n`` is written
    only where the window alone would not give the ion's charge back (see
    :func:`~liprobe.chemistry.infer_charge`), and for a named ion with a
    charge. An ion with atoms but no charge is written without one and reads
    back with the inferred charge.

    Parameters
    ----------
    path : str or path-like
    table : RangeTable

    Raises
    ------
    FormatError
        If the folder does not exist, or a range cannot be written (a
        non-finite bound or volume, a colour that is not ``"#RRGGBB"``, a
        named ion whose label has spaces, ``:`` or ``=``).
    """
    p = os.fspath(path)
    for r in table.ranges:
        _check_writable(r, p)
    formulas = list(dict.fromkeys(ion.formula for ion in table.ions))
    out = ["[Ions]", f"Number={len(formulas)}"]
    out += [f"Ion{i}={f}" for i, f in enumerate(formulas, 1)]
    out += ["[Ranges]", f"Number={len(table.ranges)}"]
    for i, r in enumerate(table.ranges, 1):
        fields = [repr(float(r.lo)), repr(float(r.hi))]
        if r.volume is not None:
            fields.append(f"Vol:{float(r.volume)!r}")
        if r.ion.is_named:
            fields.append(f"Name:{r.ion.label}")
        else:
            fields += [f"{el}:{n}" for el, n in r.ion.atoms]
        if _needs_charge_field(r):
            fields.append(f"Charge:{r.ion.charge}")
        if r.color is not None:
            fields.append(f"Color:{r.color[1:]}")
        out.append(f"Range{i}=" + " ".join(fields))
    with atomic_write(p, "w", encoding="utf-8", newline="\r\n") as f:
        f.write("\n".join(out) + "\n")
