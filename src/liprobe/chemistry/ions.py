"""Ions in liprobe's one grammar.

An ion is its formula followed by one ``+`` per charge: ``Li+``, ``O2+`` (the
O2 molecule, singly charged), ``O++`` (doubly charged O), ``Mn++`` (Mn2+),
``NiO2+``, ``Cr+++``. A formula without ``+`` (``Li``, ``Mn``) names atoms of
that element after decomposition of molecular ions. An ion named in a range
file by something that is not a formula (AP Suite's ``Name:IFB``, or ``59`` in
an old ``.rrng``) is a *named ion*: it counts as an ion and carries no atoms.
An ion whose charge is unknown (a range-file window that holds none of its
isotope peaks) is written with ``?`` in place of its ``+``: ``Si?``; its atoms
count, and no ratio of ions can name it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from math import comb
from typing import TypeVar

import numpy as np

from .elements import ELECTRON_MASS_DA, is_element, isotopes

__all__ = ["Ion", "parse_amounts", "parse_formula", "parse_ion", "parse_species", "format_formula",
           "infer_charge", "MAX_CHARGE", "CHARGE_TOLERANCE_DA", "CHARGE_LIMIT", "MAX_ION_ATOMS"]

#: Highest charge state :func:`infer_charge` considers.
MAX_CHARGE = 4

#: Highest charge an :class:`Ion` may carry (a range file's ``Charge:n``): far
#: above what atom probes see (1+ to 4+), low enough to be a number, not a typo.
CHARGE_LIMIT = 10

#: Most atoms one :class:`Ion` may hold. Far above any real molecular ion, and
#: low enough that atom counts (ion counts times atoms) stay exact in int64.
MAX_ION_ATOMS = 1_000_000

#: How far (Da) outside a window the nearest isotope peak may lie for
#: :func:`infer_charge` to still accept it (range files drawn on a slightly
#: miscalibrated spectrum put H+ at 1.018-1.048 Da, 0.011 Da above the peak).
CHARGE_TOLERANCE_DA = 0.25

_N = TypeVar("_N", int, float)   # an element's count (int) or amount (float)

_TOKEN = re.compile(r"([A-Z][a-z]?)(\d*)")
_ION = re.compile(r"^\s*([A-Za-z0-9]+)\s*(\++)\s*$")


def parse_formula(text: str) -> tuple[tuple[str, int], ...]:
    """Split a chemical formula into ``((element, count), ...)``.

    Elements keep the order in which they are written; an element written
    twice (``CrOCr``) is summed at its first place. Counts must be positive.

    Raises
    ------
    ValueError
        If the text is not a formula of known chemical elements.
    """
    def count(sym: str, digits: str) -> int:
        n = int(digits) if digits else 1
        if n <= 0:
            raise ValueError(f"count of {sym} in '{text}' must be positive")
        return n

    return _sum_by_element(text, _TOKEN, count, "")


_AMOUNT = re.compile(r"([A-Z][a-z]?)(\d*\.?\d*)")


def parse_amounts(text: str) -> tuple[tuple[str, float], ...]:
    """Split a formula with fractional amounts: ``"LiNi0.8Co0.1Mn0.1O2"`` ->
    ``(("Li", 1.0), ("Ni", 0.8), ("Co", 0.1), ("Mn", 0.1), ("O", 2.0))``.

    Elements keep their written order; one written twice is summed.

    Raises
    ------
    ValueError
        If the text is not a formula of chemical elements with positive amounts.
    """
    def amount(sym: str, digits: str) -> float:
        try:
            n = float(digits) if digits else 1.0
        except ValueError:
            raise ValueError(f"'{digits}' in '{text}' is not an amount") from None
        if not n > 0:
            raise ValueError(f"amount of {sym} in '{text}' must be positive")
        return n

    return _sum_by_element(text, _AMOUNT, amount, " (e.g. LiNi0.6Co0.2Mn0.2O2)")


def _sum_by_element(text: str, token: re.Pattern, amount: Callable[[str, str], _N],
                    hint: str) -> tuple[tuple[str, _N], ...]:
    """``((element, amount), ...)`` of a formula: ``token`` matches an element and its
    digits, ``amount(element, digits)`` reads them (ValueError naming the problem);
    elements keep their written order and one written twice is summed."""
    s = text.strip()
    if not s:
        raise ValueError("empty formula")
    pos = 0
    out: dict[str, _N] = {}
    for m in token.finditer(s):
        if m.start() != pos or m.end() == pos:
            break
        sym, digits = m.group(1), m.group(2)
        if not is_element(sym):
            raise ValueError(f"'{sym}' in '{text}' is not a chemical element")
        n = amount(sym, digits)
        out[sym] = out[sym] + n if sym in out else n
        pos = m.end()
    if pos != len(s):
        raise ValueError(f"'{text}' is not a chemical formula{hint}")
    return tuple(out.items())


def format_formula(atoms) -> str:
    """Write ``((element, count), ...)`` as a formula, e.g. ``Mn2O``."""
    return "".join(f"{el}{n if n != 1 else ''}" for el, n in atoms)


@dataclass(frozen=True, eq=False)
class Ion:
    """An ion species: a formula of atoms and a charge.

    Attributes
    ----------
    atoms : tuple of (str, int)
        Elements and their counts in the order written; empty for a named ion.
    charge : int or None
        Charge state (1 for ``Li+``, 2 for ``Mn++``); ``None`` when unknown
        (a named ion whose mass is not known).
    label : str or None
        The name of a named ion (no atoms), e.g. ``"IFB"``; ``None`` otherwise.
    """

    atoms: tuple[tuple[str, int], ...]
    charge: int | None = 1
    label: str | None = field(default=None)

    def __post_init__(self):
        if not self.atoms and not self.label:
            raise ValueError("an ion needs atoms or a label")
        if self.charge is not None and self.charge < 1:
            raise ValueError("charge must be a positive integer")
        if self.charge is not None and self.charge > CHARGE_LIMIT:
            raise ValueError(f"charge {self.charge} is above the limit of {CHARGE_LIMIT}")
        n = sum(k for _, k in self.atoms)
        if n > MAX_ION_ATOMS:
            raise ValueError(f"an ion of {n} atoms is above the limit of {MAX_ION_ATOMS:,} "
                             "atoms per ion")

    @property
    def formula(self) -> str:
        """The formula without charge (``NiO2``), or the label of a named ion."""
        if self.atoms:
            return format_formula(self.atoms)
        assert self.label is not None  # __post_init__: an ion without atoms has a label
        return self.label

    @property
    def name(self) -> str:
        """The ion in liprobe's grammar: ``NiO2+``, ``Mn++``, or a named ion's label.

        An ion with atoms but an unknown charge is ``Si?``.
        """
        if not self.atoms:
            return self.formula + ("+" * self.charge if self.charge else "")
        return self.formula + ("+" * self.charge if self.charge else "?")

    @property
    def is_named(self) -> bool:
        """True for a named ion that carries no atoms."""
        return not self.atoms

    @property
    def elements(self) -> tuple[str, ...]:
        return tuple(el for el, _ in self.atoms)

    @property
    def n_atoms(self) -> int:
        """Number of atoms in the ion (0 for a named ion)."""
        return sum(n for _, n in self.atoms)

    def count(self, element: str) -> int:
        """How many atoms of ``element`` the ion holds."""
        for el, n in self.atoms:
            if el == element:
                return n
        return 0

    @property
    def key(self) -> tuple:
        """Identity of the ion: atoms in sorted order, charge, label.

        ``CrO+`` and ``OCr+`` are the same ion; two ions are equal when
        their keys are.
        """
        return (tuple(sorted(self.atoms)), self.charge, self.label)

    def __eq__(self, other) -> bool:
        return isinstance(other, Ion) and self.key == other.key

    def __hash__(self) -> int:
        return hash(self.key)

    def with_charge(self, charge: int | None) -> Ion:
        return Ion(self.atoms, charge, self.label)

    def peaks(self, min_abundance: float = 1e-4):
        """Isotopic peaks of the ion: ``[(mass_to_charge_Da, fraction), ...]``.

        The neutral isotopologue masses (periodictable, Li override) less the
        charge's electron masses, divided by the charge; fractions of the whole
        isotope pattern, peaks below ``min_abundance`` dropped. Empty for a
        named ion or an unknown charge.
        """
        if not self.atoms or not self.charge:
            return []
        return [((m - self.charge * ELECTRON_MASS_DA) / self.charge, p)
                for m, p in isotope_pattern(self.atoms, min_abundance)]

    def __str__(self) -> str:
        return self.name


#: The exact isotopologue pattern (masses merged only closer than 1e-4 Da) is
#: computed while an ion has at most this many isotopic compositions (up to
#: Si198, W23, Sn7: every ion of a real range file); beyond, its peaks are those
#: of its nucleon numbers.
FINE_STRUCTURE_LIMIT = 20_000


def isotope_pattern(atoms, min_abundance: float = 1e-4):
    """Neutral isotopologue masses of a formula, ``[(mass_Da, fraction), ...]``.

    Convolves the isotope distributions of its atoms, merging masses closer
    than 1e-4 Da and pruning combinations below ``min_abundance / 100`` on the
    way; sorted by mass. An ion with more isotopic compositions than
    :data:`FINE_STRUCTURE_LIMIT` (hundreds of atoms, or tens of an element
    with many isotopes) has one peak per nucleon number instead, at the mean
    mass of the isotopologues of that number: their fine structure (mDa)
    is far below an atom probe's resolution. That pattern is built by
    repeated squaring with the same pruning, so an ion of 100,000 atoms takes
    milliseconds.

    Raises
    ------
    ValueError
        For an unknown element, or more than :data:`MAX_ION_ATOMS` atoms.
    """
    key = tuple((str(el), int(n)) for el, n in atoms)
    total = sum(n for _, n in key)
    if total > MAX_ION_ATOMS:
        raise ValueError(f"an ion of {total} atoms is above the limit of {MAX_ION_ATOMS:,} "
                         "atoms per ion")
    for el, _ in key:
        if not is_element(el):
            raise ValueError(f"'{el}' is not a chemical element")
    return list(_pattern(key, float(min_abundance)))


def _compositions(atoms) -> int:
    """How many isotopic compositions a formula has (before any pruning)."""
    out = 1
    for el, n in atoms:
        k = len(isotopes(el))
        out *= comb(n + k - 1, k - 1)
        if out > FINE_STRUCTURE_LIMIT:
            break
    return out


@lru_cache(maxsize=4096)
def _pattern(atoms: tuple, min_abundance: float) -> tuple:
    if _compositions(atoms) <= FINE_STRUCTURE_LIMIT:
        return _fine_pattern(atoms, min_abundance)
    return _nominal_pattern(atoms, min_abundance)


def _fine_pattern(atoms, min_abundance: float) -> tuple:
    """Every isotopologue, atom by atom, merged closer than 1e-4 Da."""
    dist = {0.0: (0.0, 1.0)}  # rounded mass -> (exact mass, fraction)
    prune = min_abundance / 100.0
    for el, n in atoms:
        iso = isotopes(el)
        for _ in range(n):
            new: dict[float, tuple[float, float]] = {}
            for m0, p0 in dist.values():
                for _a, m, p in iso:
                    q = p0 * p
                    if q < prune:
                        continue
                    key = round(m0 + m, 4)
                    mm, pp = new.get(key, (0.0, 0.0))
                    new[key] = ((mm * pp + (m0 + m) * q) / (pp + q), pp + q)
            dist = new
    total = sum(p for _, p in dist.values())
    return tuple(sorted((m, p / total) for m, p in dist.values() if p / total >= min_abundance))


# A pattern by nucleon number: (first nucleon number, fractions, fraction x mean mass).
_Nominal = tuple[int, np.ndarray, np.ndarray]


def _trim(a0: int, p: np.ndarray, pm: np.ndarray, prune: float) -> _Nominal:
    keep = np.flatnonzero(p >= prune)
    if keep.size == 0:
        return a0, p[:0], pm[:0]
    i, j = keep[0], keep[-1] + 1
    return a0 + int(i), p[i:j], pm[i:j]


def _convolve(x: _Nominal, y: _Nominal, prune: float) -> _Nominal:
    a, p, pm = x
    b, q, qm = y
    return _trim(a + b, np.convolve(p, q), np.convolve(pm, q) + np.convolve(p, qm), prune)


def _nominal_pattern(atoms, min_abundance: float) -> tuple:
    """One peak per nucleon number, at the mean mass of its isotopologues; the n
    atoms of an element by repeated squaring, tails below min_abundance/100 cut."""
    prune = min_abundance / 100.0
    dist: _Nominal = (0, np.ones(1), np.zeros(1))
    for el, n in atoms:
        iso = isotopes(el)
        a0 = min(a for a, _, _ in iso)
        p = np.zeros(max(a for a, _, _ in iso) - a0 + 1)
        pm = np.zeros_like(p)
        for a, m, ab in iso:
            p[a - a0] += ab
            pm[a - a0] += ab * m
        base: _Nominal = (a0, p, pm)
        acc: _Nominal | None = None
        while n:
            if n & 1:
                acc = base if acc is None else _convolve(acc, base, prune)
            n >>= 1
            if n:
                base = _convolve(base, base, prune)
        if acc is not None:
            dist = _convolve(dist, acc, prune)
    _, p, pm = dist
    total = float(p.sum())
    out = []
    for i in np.flatnonzero(p / total >= min_abundance):
        out.append((float(pm[i] / p[i]), float(p[i] / total)))
    return tuple(out)


def parse_ion(text: str) -> Ion:
    """Parse an ion written in liprobe's grammar (``NiO2+``, ``Mn++``).

    A formula followed by one ``+`` per charge: ``O2+`` is the O2 molecule
    singly charged, ``O++`` doubly charged O.

    Raises
    ------
    ValueError
        If the text is not a formula followed by one ``+`` per charge, or
        names an unknown element.

    Examples
    --------
    >>> from liprobe import parse_ion
    >>> ion = parse_ion("NiO2+")
    >>> ion.name, ion.atoms, ion.charge
    ('NiO2+', (('Ni', 1), ('O', 2)), 1)
    >>> parse_ion("Mn++").charge, parse_ion("O2+").n_atoms, parse_ion("O++").n_atoms
    (2, 2, 1)
    >>> parse_ion("CrO+") == parse_ion("OCr+")      # the same ion, however written
    True
    >>> parse_ion("NiO2")
    Traceback (most recent call last):
    ...
    ValueError: 'NiO2' is not an ion (write a formula and one '+' per charge, e.g. O2+ or Mn++)
    """
    m = _ION.match(text)
    if not m:
        raise ValueError(f"'{text}' is not an ion (write a formula and one '+' per charge, "
                         "e.g. O2+ or Mn++)")
    return Ion(parse_formula(m.group(1)), len(m.group(2)))


def parse_species(text: str):
    """Parse an ion (``Li+``, returns :class:`Ion`) or an element (``Li``, returns str)."""
    t = text.strip()
    if t.endswith("+"):
        return parse_ion(t)
    atoms = parse_formula(t)
    if len(atoms) != 1 or atoms[0][1] != 1:
        raise ValueError(f"'{text}' is neither an ion (add '+') nor a single element")
    return atoms[0][0]


#: Smallest isotopologue fraction :func:`infer_charge` looks at. Real files
#: range rare isotopologues: VAlN_film_plan-view_700C.rrng has N2 at
#: 29.93-30.02 Da, i.e. 15N2+, 1.3e-5 of N2.
_MIN_ABUNDANCE = 1e-6


@lru_cache(maxsize=4096)
def _peaks(atoms: tuple, charge: int) -> tuple:
    return tuple(Ion(atoms, charge).peaks(_MIN_ABUNDANCE))


def infer_charge(atoms, lo, hi, max_charge: int = MAX_CHARGE,
                 tolerance_da: float = CHARGE_TOLERANCE_DA) -> int:
    """The charge state of an ion ranged in the window ``[lo, hi)``.

    Range files give the window and the atoms, not the charge. For each
    charge n = 1..``max_charge`` the isotope peaks of the ion (see
    :meth:`Ion.peaks`, down to 1e-6 of the pattern) are placed at m/n. The
    charge whose most abundant peak inside the window is the most abundant
    of all wins (ties go to the lower
    charge). When no peak lies inside, the charge whose nearest peak is
    closest to the window wins, if that peak is within ``tolerance_da``.

    Parameters
    ----------
    atoms : sequence of (str, int)
        Elements and counts, e.g. ``(("O", 2),)`` for O2.
    lo, hi : float
        Window bounds in Da (mass-to-charge).
    max_charge : int
        Highest charge considered.
    tolerance_da : float
        Largest distance in Da from the window to the nearest peak when no
        peak lies inside.

    Returns
    -------
    int
        The charge state, 1..``max_charge``.

    Raises
    ------
    ValueError
        If ``atoms`` is empty or names an unknown element, or if no charge
        puts a peak inside the window or within ``tolerance_da`` of it.

    Examples
    --------
    >>> infer_charge((("Si", 1),), 13.9, 14.1)       # 28Si at 14 Da: Si++
    2
    >>> infer_charge((("O", 2),), 31.9, 32.1)        # O2 molecule: O2+
    1
    """
    atoms = tuple((str(el), int(n)) for el, n in atoms)
    if not atoms:
        raise ValueError("an ion without atoms has no isotope peaks")
    for el, _ in atoms:
        if not is_element(el):
            raise ValueError(f"'{el}' is not a chemical element")
    inside = None    # (abundance, charge) of the best peak inside the window
    nearest = None   # (distance_Da, charge) of the closest peak outside it
    for n in range(1, max_charge + 1):
        for m, p in _peaks(atoms, n):
            if lo <= m < hi:
                if inside is None or p > inside[0]:
                    inside = (p, n)
            else:
                d = lo - m if m < lo else m - hi
                if nearest is None or d < nearest[0]:
                    nearest = (d, n)
    if inside is not None:
        return inside[1]
    if nearest is not None and nearest[0] <= tolerance_da:
        return nearest[1]
    raise ValueError(f"window [{lo}, {hi}) does not contain any isotope of "
                     f"{format_formula(atoms)} at charge 1-{max_charge}")
