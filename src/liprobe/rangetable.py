"""The :class:`RangeTable`: mass windows, each naming an ion.

Windows are half-open, ``[lo, hi)`` in Da, sorted by ``lo``. Touching windows
are fine. When a table is built:

- windows of *different* ions that overlap are an error naming both (and
  their lines in the source file);
- windows of the *same* ion that are identical or overlap are merged into
  their union, with a warning saying how many were merged;
- named ions (no elements) load, count as ions, carry no atoms.

A decomposition matrix (ion x element) turns ion counts into atom counts.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import numpy as np

from .chemistry import Ion
from .errors import RangeError

__all__ = ["unranged_reason", "Range", "RangeTable"]


@dataclass(frozen=True)
class Range:
    """One mass window ``[lo, hi)`` in Da assigned to an ion.

    ``volume`` is the ion's volume in nm^3 from the file's ``Vol:`` (None if
    absent); ``color`` is ``"#RRGGBB"`` (None if absent); ``line`` is the
    1-based line of the source file it came from (None if built in memory).
    """

    lo: float
    hi: float
    ion: Ion
    volume: float | None = None
    color: str | None = None
    line: int | None = None

    def to_dict(self) -> dict:
        return {
            "lo": self.lo, "hi": self.hi, "ion": self.ion.name,
            "atoms": {el: n for el, n in self.ion.atoms},
            "charge": self.ion.charge, "volume": self.volume, "color": self.color,
        }


def _where(r: Range) -> str:
    return f"line {r.line}" if r.line is not None else f"window [{r.lo}, {r.hi})"


@dataclass(frozen=True)
class RangeTable:
    """Sorted, non-overlapping mass windows naming ions.

    Build it with :meth:`RangeTable.from_ranges`, which validates and merges;
    the constructor takes already-clean ranges.

    Attributes
    ----------
    ranges : tuple of Range
        Sorted by ``lo``.
    path : str or None
        Source file.
    warnings : tuple of str
        What was merged or loaded with a caveat.
    """

    ranges: tuple[Range, ...]
    path: str | None = None
    warnings: tuple[str, ...] = ()
    _arrays: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __getstate__(self) -> dict:
        """Pickled without the derived arrays (rebuilt on use): a table sent to a worker
        stays a few hundred bytes."""
        state = dict(self.__dict__)
        state["_arrays"] = {}
        return state

    # -- building ------------------------------------------------------------
    @classmethod
    def from_ranges(cls, ranges, path=None, warnings=()) -> RangeTable:
        """Validate, merge and sort windows into a table.

        Raises
        ------
        RangeError
            A window with ``lo >= hi`` or a non-finite bound, or two windows of
            different ions that overlap (the message names both).
        """
        path = None if path is None else os.fspath(path)
        warns = list(warnings)
        ranges = list(ranges)
        for r in ranges:
            if not (math.isfinite(r.lo) and math.isfinite(r.hi)):
                raise RangeError(f"window bound is not a finite number ({r.lo}, {r.hi})",
                                 path, _where(r))
            if not r.lo < r.hi:
                raise RangeError(f"window [{r.lo}, {r.hi}) of {r.ion.name} is empty or reversed",
                                 path, _where(r))
        ordered = sorted(ranges, key=lambda r: (r.lo, r.hi))
        # The kept windows are sorted and disjoint, so their upper bounds are sorted too:
        # a window (taken in order of lo) can only overlap the last one kept. One pass
        # after the sort: n log n.
        merged: list[Range] = []
        n_merged: dict[str, int] = {}
        for r in ordered:
            k = merged[-1] if merged else None
            if k is None or k.hi <= r.lo:
                merged.append(r)
            elif k.ion == r.ion:
                merged[-1] = Range(k.lo, max(k.hi, r.hi), k.ion,
                                   k.volume if k.volume is not None else r.volume,
                                   k.color or r.color, k.line)
                n_merged[k.ion.name] = n_merged.get(k.ion.name, 0) + 1
            else:
                raise RangeError(
                    f"windows of different ions overlap: {k.ion.name} [{k.lo}, {k.hi}) "
                    f"at {_where(k)} and {r.ion.name} [{r.lo}, {r.hi}) at {_where(r)}",
                    path)
        if n_merged:
            total = sum(n_merged.values())
            detail = ", ".join(f"{k} {v}" for k, v in n_merged.items())
            warns.append(f"merged {total} duplicate or overlapping windows of the same ion "
                         f"into the one before them ({detail})")
        return cls(tuple(merged), path, tuple(warns))

    # -- views ---------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.ranges)

    def __iter__(self):
        return iter(self.ranges)

    @property
    def ions(self) -> tuple[Ion, ...]:
        """The distinct ions, in order of their first window's mass."""
        if "ions" not in self._arrays:
            seen: dict[Ion, None] = {}
            for r in self.ranges:
                seen.setdefault(r.ion, None)
            self._arrays["ions"] = tuple(seen)
        return self._arrays["ions"]

    @property
    def elements(self) -> tuple[str, ...]:
        """Elements carried by the ranged ions, in order of first appearance."""
        seen: dict[str, None] = {}
        for ion in self.ions:
            for el in ion.elements:
                seen.setdefault(el, None)
        return tuple(seen)

    def _arr(self, name):
        if name not in self._arrays:
            ions = {ion: i for i, ion in enumerate(self.ions)}
            self._arrays["lo"] = np.array([r.lo for r in self.ranges], dtype=np.float64)
            self._arrays["hi"] = np.array([r.hi for r in self.ranges], dtype=np.float64)
            self._arrays["ion_index"] = np.array([ions[r.ion] for r in self.ranges],
                                                 dtype=np.int64)
        return self._arrays[name]

    @property
    def lo(self) -> np.ndarray:
        """Lower bounds in Da, float64, sorted."""
        return self._arr("lo")

    @property
    def hi(self) -> np.ndarray:
        """Upper bounds in Da (exclusive), float64."""
        return self._arr("hi")

    @property
    def ion_index(self) -> np.ndarray:
        """For each window, the index of its ion in :attr:`ions`."""
        return self._arr("ion_index")

    def decomposition(self, elements=None) -> tuple[tuple[str, ...], np.ndarray]:
        """The ion x element matrix of atom counts.

        Returns
        -------
        elements : tuple of str
        matrix : ndarray of int64, shape (len(ions), len(elements))
            ``matrix[i, e]`` atoms of element ``e`` in ion ``i``; rows of named
            ions are zero.
        """
        els = tuple(elements) if elements is not None else self.elements
        m = np.zeros((len(self.ions), len(els)), dtype=np.int64)
        col = {el: j for j, el in enumerate(els)}
        for i, ion in enumerate(self.ions):
            for el, n in ion.atoms:
                if el in col:
                    m[i, col[el]] = n
        return els, m

    def to_dict(self) -> dict:
        return {
            "ions": [ion.name for ion in self.ions],
            "ranges": [r.to_dict() for r in self.ranges],
            "warnings": list(self.warnings),
        }

    def __repr__(self) -> str:
        where = f" from {os.path.basename(self.path)}" if self.path else ""
        if not self.ranges:
            return f"<RangeTable{where}: no windows>"
        names = [ion.name for ion in self.ions]
        shown = ", ".join(names[:6]) + (f", ... ({len(names)} ions)" if len(names) > 6 else "")
        warn = f", {len(self.warnings)} warning(s)" if self.warnings else ""
        return (f"<RangeTable{where}: {len(self.ranges)} windows, {self.lo[0]:g} to "
                f"{self.hi[-1]:g} Da; ions {shown}{warn}>")

    def to_dataframe(self):
        """The windows as a pandas DataFrame, one row per window, sorted by ``lo_Da``.

        Columns ``lo_Da``, ``hi_Da`` (the window ``[lo, hi)``), ``ion`` (its
        name in liprobe's grammar), ``formula``, ``charge`` (``<NA>``:
        unknown), ``atoms`` (atoms per ion), ``volume_nm3``, ``color`` and
        ``line`` (of the source file).

        Examples
        --------
        >>> from liprobe import Range, RangeTable, parse_ion
        >>> t = RangeTable.from_ranges([Range(15.9, 16.2, parse_ion("O+")),
        ...                             Range(31.8, 32.2, parse_ion("O2+"), volume=0.02)])
        >>> t
        <RangeTable: 2 windows, 15.9 to 32.2 Da; ions O+, O2+>
        >>> t.to_dataframe()[["lo_Da", "hi_Da", "ion", "charge", "atoms", "volume_nm3"]]
           lo_Da  hi_Da  ion  charge  atoms  volume_nm3
        0   15.9   16.2   O+       1      1         NaN
        1   31.8   32.2  O2+       1      2        0.02
        """
        import pandas as pd

        rows = [{"lo_Da": r.lo, "hi_Da": r.hi, "ion": r.ion.name, "formula": r.ion.formula,
                 "charge": r.ion.charge, "atoms": r.ion.n_atoms,
                 "volume_nm3": np.nan if r.volume is None else r.volume, "color": r.color,
                 "line": r.line} for r in self.ranges]
        cols = ["lo_Da", "hi_Da", "ion", "formula", "charge", "atoms", "volume_nm3", "color",
                "line"]
        df = pd.DataFrame(rows, columns=cols)
        df["charge"] = df["charge"].astype("Int64")
        df["line"] = df["line"].astype("Int64")
        df.attrs["units"] = {"lo_Da": "Da", "hi_Da": "Da", "volume_nm3": "nm^3"}
        return df


def _charge_words(n: int) -> str:
    return {1: "singly", 2: "doubly", 3: "triply"}.get(n, f"{n}-fold")


def unranged_reason(term, table: RangeTable) -> str | None:
    """Why an ion or element named by the user matches no window of ``table``, or None.

    An ion is ranged when ``table`` holds that exact ion; an element when some
    ranged ion carries it. The sentence names what the table does hold that
    looks alike: ``Ni2+`` (the Ni2 molecule, singly charged, in liprobe's
    grammar) against a ranged ``Ni++`` gets "did you mean Ni++ (doubly charged
    Ni)?".

    Examples
    --------
    >>> from liprobe import Range, RangeTable, parse_ion
    >>> t = RangeTable.from_ranges([Range(28.9, 29.1, parse_ion("Ni++")),
    ...                             Range(57.8, 58.1, parse_ion("Ni+"))])
    >>> print(unranged_reason(parse_ion("Ni2+"), t))   # doctest: +NORMALIZE_WHITESPACE
    Ni2+ is the Ni2 molecule (singly charged), which no range holds;
    did you mean Ni++ (doubly charged Ni)?
    >>> unranged_reason("Co", t)
    'no ranged ion carries Co (the range file has: Ni)'
    >>> unranged_reason(parse_ion("Ni++"), t) is None
    True
    """
    if not isinstance(term, Ion):
        if term in table.elements:
            return None
        return (f"no ranged ion carries {term} (the range file has: "
                f"{', '.join(table.elements) or 'no elements'})")
    if term in table.ions:
        return None
    ions = table.ions
    atoms = dict(term.atoms)
    if len(atoms) == 1 and term.charge == 1:
        (el, n), = atoms.items()
        if n > 1:
            twin = next((i for i in ions if i.atoms == ((el, 1),) and i.charge == n), None)
            if twin is not None:
                return (f"{term.name} is the {el}{n} molecule (singly charged), which no range "
                        f"holds; did you mean {twin.name} ({_charge_words(n)} charged {el})?")
    same = [i.name for i in ions if i.atoms == term.atoms]
    if same:
        return f"{term.name} is not ranged; ranged with the same atoms: {', '.join(same)}"
    alike = [i.name for i in ions if set(i.elements) & set(term.elements)]
    if alike:
        return (f"{term.name} is not ranged; ions of {', '.join(term.elements)} ranged: "
                f"{', '.join(alike[:8])}{' ...' if len(alike) > 8 else ''}")
    return (f"{term.name} is not ranged (the range file has: "
            f"{', '.join(i.name for i in ions[:8])}{' ...' if len(ions) > 8 else ''})")
