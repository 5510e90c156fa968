"""Reference phases: formulas with fractional amounts, and how well a run matches each.

A phase is a formula such as ``LiNi0.8Co0.1Mn0.1O2``. The study declares its
phases in the manifest (``[materials.NAME] formula = ...``); the phases of
:data:`liprobe.instruments.MATERIALS` that are oxides (NMC811, LiMn2O4) are
known without being declared.

The match of a run to a phase uses the *cations* only (every element of the
candidate phases but O and the excluded elements): oxygen is lost to neutral
O2 in laser-pulsed oxides (Devaraj et al. 2013; ``shared/reference/
field-evaporation.md``), so its fraction says little about the phase. Two
things are compared:

- **presence**: an element of the phase that has no peak in the data (no
  ranged ion carrying it rises above its local background) is *missing*; an
  element with a peak and a cation fraction of at least ``trace`` that the
  phase lacks is *extra*. This is how the seed paper found its Mn-rich
  particle: no Ni, Co, NiO or CoO peaks (Singh et al., arXiv:2309.07842).
- **distance**: half the L1 distance (total variation, 0 to 1) between the
  measured cation fractions and the phase's.

Phases are ranked by the number of missing plus extra elements, then by the
distance.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..chemistry import parse_ratio
from ..chemistry.ions import Ion

__all__ = ["parse_stoichiometry", "builtin_phases", "ratio_of_formula", "PhaseMatch",
           "match_phases"]



def parse_stoichiometry(formula: str) -> dict[str, float]:
    """``"LiNi0.8Co0.1Mn0.1O2"`` -> ``{"Li": 1, "Ni": 0.8, "Co": 0.1, "Mn": 0.1, "O": 2}``.

    Raises
    ------
    ValueError
        Not a formula of chemical elements with positive amounts.
    """
    from ..chemistry.ions import parse_amounts

    return dict(parse_amounts(formula))


def builtin_phases() -> dict[str, str]:
    """Phases known without a manifest entry: the oxides of
    :data:`liprobe.instruments.MATERIALS`."""
    from ..instruments import MATERIALS

    return {name: m.formula for name, m in MATERIALS.items()
            if "O" in parse_stoichiometry(m.formula)}


def ratio_of_formula(expr: str, formula: str) -> float | None:
    """The value of an atom ratio (``Li/(Li+Ni+Co+Mn)``) for a formula; None for ion ratios
    or a zero denominator."""
    e = parse_ratio(expr)
    if any(isinstance(t, Ion) for t in e.terms):
        return None
    amounts = parse_stoichiometry(formula)
    num = sum(amounts.get(t, 0.0) * k for t, k in e.numerator)
    den = sum(amounts.get(t, 0.0) * k for t, k in e.denominator)
    return num / den if den > 0 else None


@dataclass(frozen=True)
class PhaseMatch:
    """How a run's cations match one phase."""

    phase: str
    distance: float
    missing: tuple
    extra: tuple

    @property
    def mismatches(self) -> int:
        return len(self.missing) + len(self.extra)


def match_phases(fractions: dict, present: set, phases: dict, trace: float = 0.02
                 ) -> list[PhaseMatch]:
    """Rank phases by how well they fit a run (best first).

    Parameters
    ----------
    fractions : dict of str to float
        Measured cation fractions (summing to 1 over the cations compared).
    present : set of str
        Elements with at least one peak above background.
    phases : dict of str to dict of str to float
        Phase name -> cation amounts (O and excluded elements left out).
    trace : float
        Cation fraction from which an element the phase lacks counts as extra.
    """
    out = []
    cations = list(dict.fromkeys([*fractions, *(el for p in phases.values() for el in p)]))
    for name, amounts in phases.items():
        total = sum(amounts.values())
        expected = {el: amounts.get(el, 0.0) / total for el in cations} if total else {}
        d = 0.5 * sum(abs(fractions.get(el, 0.0) - expected.get(el, 0.0)) for el in cations)
        missing = tuple(el for el in amounts if el not in present)
        extra = tuple(el for el in cations if el not in amounts and el in present
                      and fractions.get(el, 0.0) >= trace)
        out.append(PhaseMatch(name, d, missing, extra))
    return sorted(out, key=lambda m: (m.mismatches, m.distance))
