"""Candidate ions of a specimen: every plausible atomic and molecular ion of its elements.

The enumeration follows ``shared/reference/mass-spectrum.md`` section 7,
written for any list of elements by classing each element:

- ``H``: H+, H2+, H3+; in molecules only as hydride (``MH``, ``MH2``), hydroxide
  (``MOH``), ``OH``, ``H2O``, ``H3O``, ``CH1-3`` and ``LiH``;
- alkali metals (Li, Na, K, Rb, Cs): atomic ions 1+ only (their second
  ionisation energy, 47-76 eV, is out of reach: Li is never 2+ on its own);
  Li also as Li_a O_b+ (a = 1..3, b = 0..2), Li2O++, LiH+, LiOH+ and the mixed
  Li-metal oxides Li M O_x (x = 1..3, 1+ and 2+) with M a cathode transition
  metal (:data:`LI_MIXED_METALS`);
- O, N, C (non-metals): atomic 1+ and 2+, O2 (1+, 2+), OH+, H2O+, H3O+,
  N2+, NO+, CH1-3+, C2+, CO and CO2 (1+, 2+);
- every other element (metals and metalloids, e.g. Cr, Mn, Co, Ni, Si, Cu,
  Ga, Al): atomic 1+ to ``max_charge``; oxides M O_x (x = 1..4), dimers and
  dimer oxides M2 O_y (y = 0..3), hydrides MH and hydroxides MOH, nitrides MN
  (when N is an element), all 1+ and 2+, and dihydrides MH2 (1+: AlH2+ in Al
  alloys);
- no molecule mixes two metals other than Li with a cathode metal (a coating
  and the oxide are separate phases: no CrNi, no LiCr);
- molecules carry at most 2 charges, and at most ``max_atoms`` atoms.

Each candidate carries its isotope pattern from :meth:`Ion.peaks`
(periodictable, Li override). The list is a superset of what a spectrum
shows; :mod:`liprobe.spectrum.autorange` tests each against the data.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from .elements import is_element
from .ions import Ion

__all__ = ["Candidate", "candidate_ions", "ALKALI", "NONMETALS", "LI_MIXED_METALS",
           "DEFAULT_ADDED", "ambiguity_priority"]

#: Alkali metals: atomic ions 1+ only.
ALKALI = frozenset({"Li", "Na", "K", "Rb", "Cs"})
#: Non-metals with their own rules (H is apart).
NONMETALS = frozenset({"O", "N", "C", "F", "S", "P", "Cl", "He", "Ne", "Ar", "Kr", "Xe"})
#: Metals that form mixed Li-M-O molecular ions with Li (cathode transition metals).
LI_MIXED_METALS = frozenset({"Mn", "Co", "Ni", "Fe"})
#: Elements added to every list: an air-exposed specimen always shows H and C.
DEFAULT_ADDED = ("H", "C")


@dataclass(frozen=True)
class Candidate:
    """A candidate ion with its isotope pattern.

    Attributes
    ----------
    ion : Ion
    peaks : tuple of (float, float)
        ``(mass_to_charge_Da, fraction)``, fractions of the ion's counts,
        sorted by mass, down to the ``min_abundance`` asked for.
    family : str
        ``atomic``, ``oxide``, ``dimer``, ``hydride``, ``hydroxide``, ``nitride``,
        ``lithium``, ``mixed`` (Li-metal oxide), ``gas`` (H, O, N, C species).
    """

    ion: Ion
    peaks: tuple
    family: str

    @property
    def name(self) -> str:
        return self.ion.name

    @property
    def main_peak(self) -> tuple[float, float]:
        """The most abundant isotope peak ``(m/n in Da, fraction)``."""
        return max(self.peaks, key=lambda p: p[1])

    def to_dict(self) -> dict:
        return {"ion": self.ion.name, "family": self.family,
                "peaks": [{"mass": round(m, 5), "fraction": round(p, 6)} for m, p in self.peaks]}


def ambiguity_priority(ion: Ion, user_elements=()) -> tuple:
    """Sort key of the convention that assigns a peak the data cannot split.

    Smaller wins: fewer atoms (O+ over O2++, Mn+ over CrH+, CoO+ over NiOH+,
    CrO+ over Ni2O++), then the lower charge, then an ion without H, then an
    ion made only of the elements the user named (not of the H and C added
    for contamination), then the formula (for a stable order).
    """
    user = set(user_elements)
    has_h = ion.count("H") > 0
    foreign = bool(user) and any(el not in user for el in ion.elements)
    return (ion.n_atoms, ion.charge or 0, has_h, foreign, ion.formula)


def _metal(el: str) -> bool:
    return el != "H" and el not in NONMETALS


def _formulas(elements, max_atoms: int, max_charge: int):
    """(atoms, charges, family) of the enumeration rules, before the mass window."""
    els = set(elements)
    out = []

    def add(atoms, charges, family):
        atoms = tuple((el, n) for el, n in atoms if n > 0)
        if not atoms or sum(n for _, n in atoms) > max_atoms:
            return
        if not all(el in els for el, _ in atoms):
            return
        charges = tuple(c for c in charges if c <= max_charge)
        if charges:
            out.append((atoms, charges, family))

    mol = (1, 2)
    # atomic ions
    for el in sorted(els):
        if el == "H":
            add((("H", 1),), (1,), "gas")
        elif el in ALKALI:
            add(((el, 1),), (1,), "atomic")
        elif el in NONMETALS:
            add(((el, 1),), (1, 2), "atomic")
        else:
            add(((el, 1),), tuple(range(1, max_charge + 1)), "atomic")
    # hydrogen, oxygen, nitrogen, carbon species
    add((("H", 2),), (1,), "gas")
    add((("H", 3),), (1,), "gas")
    add((("O", 2),), mol, "gas")
    add((("O", 1), ("H", 1)), (1,), "gas")
    add((("H", 2), ("O", 1)), (1,), "gas")
    add((("H", 3), ("O", 1)), (1,), "gas")
    add((("N", 2),), (1,), "gas")
    add((("N", 1), ("O", 1)), (1,), "gas")
    for x in (1, 2, 3):
        add((("C", 1), ("H", x)), (1,), "gas")
    add((("C", 2),), (1,), "gas")
    add((("C", 1), ("O", 1)), mol, "gas")
    add((("C", 1), ("O", 2)), mol, "gas")
    # metals and metalloids
    for m in sorted(el for el in els if _metal(el) and el not in ALKALI):
        for x in (1, 2, 3, 4):
            add(((m, 1), ("O", x)), mol, "oxide")
        for y in (0, 1, 2, 3):
            add(((m, 2), ("O", y)), mol, "dimer")
        add(((m, 1), ("H", 1)), mol, "hydride")
        add(((m, 1), ("H", 2)), (1,), "hydride")
        add(((m, 1), ("O", 1), ("H", 1)), mol, "hydroxide")
        add(((m, 1), ("N", 1)), mol, "nitride")
    # lithium
    if "Li" in els:
        add((("Li", 1), ("H", 1)), (1,), "lithium")
        add((("Li", 1), ("O", 1), ("H", 1)), (1,), "lithium")
        for a in (1, 2, 3):
            for b in (0, 1, 2):
                if a == 1 and b == 0:
                    continue
                add((("Li", a), ("O", b)), (1,), "lithium")
        add((("Li", 2), ("O", 1)), (2,), "lithium")
        for m in sorted(els & LI_MIXED_METALS):
            for x in (1, 2, 3):
                add((("Li", 1), (m, 1), ("O", x)), mol, "mixed")
    for el in sorted(els & ALKALI - {"Li"}):
        add(((el, 1), ("O", 1)), (1,), "oxide")
    return out


@lru_cache(maxsize=64)
def _candidates(elements: tuple, max_atoms: int, max_charge: int, lo: float, hi: float,
                min_abundance: float) -> tuple:
    seen = set()
    out = []
    for atoms, charges, family in _formulas(elements, max_atoms, max_charge):
        for z in charges:
            ion = Ion(atoms, z)
            if ion in seen:
                continue
            seen.add(ion)
            peaks = tuple(ion.peaks(min_abundance))
            if not peaks:
                continue
            main = max(peaks, key=lambda p: p[1])[0]
            if lo <= main < hi:
                out.append(Candidate(ion, peaks, family))
    out.sort(key=lambda c: (c.main_peak[0], c.ion.name))
    return tuple(out)


def candidate_ions(elements, max_atoms: int = 5, max_charge: int = 3,
                   mass_range=(0.0, 200.0), add=DEFAULT_ADDED,
                   min_abundance: float = 1e-4) -> tuple[Candidate, ...]:
    """Every plausible atomic and molecular ion of ``elements`` in a mass window.

    Parameters
    ----------
    elements : iterable of str
        Element symbols, e.g. ``("Li", "Ni", "Co", "Mn", "O", "Cr")``.
    max_atoms : int
        Most atoms in one ion (default 5).
    max_charge : int
        Highest charge of atomic metal ions (molecules stop at 2+).
    mass_range : (float, float)
        Window in Da; an ion is kept when its most abundant peak (m/n) lies in it.
    add : iterable of str
        Elements always added (default H and C: air-exposed specimens).
    min_abundance : float
        Isotope peaks below this fraction of the ion's counts are dropped.

    Returns
    -------
    tuple of Candidate
        Sorted by the mass of the main peak.

    Raises
    ------
    ValueError
        For an unknown element or a bad limit.
    """
    els = []
    for el in list(elements) + list(add):
        if not is_element(el):
            raise ValueError(f"'{el}' is not a chemical element")
        if el not in els:
            els.append(el)
    if max_atoms < 1 or max_charge < 1:
        raise ValueError("max_atoms and max_charge must be at least 1")
    lo, hi = float(mass_range[0]), float(mass_range[1])
    return _candidates(tuple(sorted(els)), int(max_atoms), int(max_charge), lo, hi,
                       float(min_abundance))
