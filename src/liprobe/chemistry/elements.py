"""Elements and their isotopes, taken from periodictable.

Masses are the AME2020 values and abundances the CIAAW values carried by the
``periodictable`` package, with one documented override: lithium is taken as
7.59 % 6Li and 92.41 % 7Li, the IUPAC/NIST representative composition, instead
of the midpoint of the CIAAW interval that periodictable gives (4.85 % 6Li).
See ``shared/reference/mass-spectrum.md`` section 6.
"""

from __future__ import annotations

from functools import cache, lru_cache

__all__ = ["ELECTRON_MASS_DA", "LI_OVERRIDE", "element_symbols", "is_element",
           "isotopes"]

#: Electron mass in Da (CODATA, via periodictable.constants).
ELECTRON_MASS_DA = 0.0005485799090441

#: Lithium isotope abundances used by liprobe, mass number -> fraction
#: (IUPAC/NIST representative value; overrides periodictable's 4.85 % 6Li).
LI_OVERRIDE = {6: 0.0759, 7: 0.9241}


@lru_cache(maxsize=1)
def element_symbols() -> frozenset[str]:
    """The chemical element symbols known to periodictable (H to Og)."""
    import periodictable

    return frozenset(el.symbol for el in periodictable.elements if el.number >= 1)


def is_element(symbol: str) -> bool:
    """Whether ``symbol`` is a chemical element symbol (case-sensitive)."""
    return symbol in element_symbols()


@cache
def isotopes(symbol: str) -> tuple[tuple[int, float, float], ...]:
    """Natural isotopes of an element.

    Parameters
    ----------
    symbol : str
        Element symbol, e.g. ``"Ni"``.

    Returns
    -------
    tuple of (mass_number, mass_Da, abundance_fraction)
        Isotopes with a non-zero natural abundance, lightest first; the
        fractions sum to 1. Lithium uses :data:`LI_OVERRIDE`.

    Raises
    ------
    KeyError
        If ``symbol`` is not an element or has no natural isotope.
    """
    import periodictable

    if not is_element(symbol):
        raise KeyError(symbol)
    el = getattr(periodictable, symbol)
    out = []
    for a in el.isotopes:
        iso = el[a]
        if symbol == "Li":
            ab = LI_OVERRIDE.get(a, 0.0)
        else:
            ab = float(iso.abundance) / 100.0
        if ab > 0:
            out.append((int(a), float(iso.mass), ab))
    if not out:
        raise KeyError(symbol)
    total = sum(o[2] for o in out)
    return tuple((a, m, ab / total) for a, m, ab in out)
