"""Phases of the specimen: composition per formula unit, atomic volume, evaporation field.

Named materials come from :data:`liprobe.instruments.MATERIALS` (atomic
volumes from lattice parameters, ``reconstruction.md`` s7). A formula that is
not one of them (``LiNi0.6Co0.2Mn0.2O2``) takes the atomic volume and field
of the named material closest in composition (sum of absolute differences of
the atomic fractions), and says so in ``source``: for the layered
LiNi_xCo_yMn_zO2 family that is NMC811's R-3m cell, whose lattice parameters
change by well under 1 % across the family.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from ..instruments import MATERIALS, material as _material

__all__ = ["Phase", "parse_fractional_formula", "resolve_material", "format_amounts"]



def parse_fractional_formula(text: str) -> tuple[tuple[str, float], ...]:
    """``"LiNi0.8Co0.1Mn0.1O2"`` -> ``(("Li", 1.0), ("Ni", 0.8), ...)``.

    Raises
    ------
    ValueError
        If the text is not a formula of chemical elements with positive amounts.
    """
    from ..chemistry.ions import parse_amounts

    try:
        return parse_amounts(text)
    except ValueError as e:
        raise ValueError(f"{e}: '{text}' is not a material name ({', '.join(MATERIALS)}) nor a "
                         "chemical formula such as LiNi0.6Co0.2Mn0.2O2") from None


def format_amounts(amounts) -> str:
    """``(("Cr", 1.0), ("O", 0.29))`` -> ``"CrO0.29"``."""
    parts = []
    for el, n in amounts:
        if abs(n - 1) < 1e-12:
            parts.append(el)
        else:
            parts.append(f"{el}{float(n):.6g}")
    return "".join(parts)


def _fractions(amounts) -> dict[str, float]:
    total = sum(n for _, n in amounts)
    return {el: n / total for el, n in amounts}


@dataclass(frozen=True)
class Phase:
    """A phase of the specimen.

    Attributes
    ----------
    name : str
        ``NMC811``, ``LiMn2O4``, a formula, or ``Cr coating``.
    amounts : tuple of (str, float)
        Atoms per formula unit.
    atomic_volume_nm3 : float
        Omega, nm^3 per atom.
    evaporation_field_V_per_nm : float
    source : str
        Where Omega and the field came from.
    """

    name: str
    amounts: tuple[tuple[str, float], ...]
    atomic_volume_nm3: float
    evaporation_field_V_per_nm: float
    source: str

    @property
    def formula(self) -> str:
        return format_amounts(self.amounts)

    @property
    def fractions(self) -> dict[str, float]:
        """Atomic fraction of each element."""
        return _fractions(self.amounts)

    def to_dict(self) -> dict:
        return {"name": self.name, "formula": self.formula,
                "atomic_fractions": self.fractions,
                "atomic_volume_nm3": self.atomic_volume_nm3,
                "evaporation_field_V_per_nm": self.evaporation_field_V_per_nm,
                "source": self.source}


@lru_cache(maxsize=64)
def resolve_material(name: str) -> Phase:
    """The phase named ``name`` or given by a formula.

    Raises
    ------
    ValueError
        For text that is neither a known material nor a formula.
    """
    try:
        m = _material(name)
    except KeyError:
        m = None
    if m is not None:
        return Phase(m.name, parse_fractional_formula(m.formula), m.atomic_volume_nm3,
                     m.evaporation_field_V_per_nm, m.source)
    amounts = parse_fractional_formula(name)
    frac = _fractions(amounts)
    best, best_d = None, None
    for mat in MATERIALS.values():
        f2 = _fractions(parse_fractional_formula(mat.formula))
        d = sum(abs(frac.get(el, 0.0) - f2.get(el, 0.0)) for el in set(frac) | set(f2))
        if best_d is None or d < best_d:
            best, best_d = mat, d
    if best_d < 1e-9:
        return Phase(best.name, amounts, best.atomic_volume_nm3,
                     best.evaporation_field_V_per_nm, best.source)
    src = (f"atomic volume and evaporation field of {best.name} ({best.formula}), the "
           f"closest tabulated composition (sum of |atomic fraction differences| "
           f"{best_d:.3f}); {best.source}")
    return Phase(name.strip(), amounts, best.atomic_volume_nm3,
                 best.evaporation_field_V_per_nm, src)
