"""Elements and their isotopes, taken from periodictable.

Masses are the AME2020 values and abundances the CIAAW values carried by the
``periodictable`` package, with one documented override: lithium is taken as
7.59 % 6Li and 92.41 % 7Li, the IUPAC/NIST representative composition, instead
of the midpoint of the CIAAW interval that periodictable gives (4.85 % 6Li).
See ``shared/reference/mass-spectrum.md`` section 6.

An element that periodictable gives no natural isotope abundance (Tc, Pm, Po,
U, Np, ... Og) is taken as one isotope: for an element with a standard atomic
weight (U) the isotope of that mass number, otherwise the longest-lived isotope
whose mass number periodictable gives as the element's mass (98Tc, 145Pm,
209Po). :func:`isotope_note` says which, so that readers and commands can warn.
"""

from __future__ import annotations

from functools import cache, lru_cache

__all__ = ["ELECTRON_MASS_DA", "LI_OVERRIDE", "element_symbols", "is_element",
           "isotope_note", "isotope_warnings", "isotopes"]

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
        fractions sum to 1. Lithium uses :data:`LI_OVERRIDE`. An element
        without natural isotopes in periodictable gets one isotope, fraction 1
        (see :func:`isotope_note`).

    Raises
    ------
    KeyError
        If ``symbol`` is not an element.
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
        a, mass, _ = _single_isotope(symbol)
        return ((a, mass, 1.0),)
    total = sum(o[2] for o in out)
    return tuple((a, m, ab / total) for a, m, ab in out)


@cache
def _single_isotope(symbol: str) -> tuple[int, float, str]:
    """(mass number, mass Da, why) of the one isotope an element without natural
    isotopes is taken as."""
    import periodictable

    el = getattr(periodictable, symbol)
    standard = float(el.mass)
    a = int(round(standard))
    mass = float(el[a].mass) if a in el.isotopes and el[a].mass else standard
    if abs(standard - a) < 1e-9:   # periodictable gives the longest-lived isotope's number
        why = f"its longest-lived isotope {a}{symbol} ({mass:.4f} Da)"
    else:
        why = (f"{a}{symbol} ({mass:.4f} Da), the isotope of its standard atomic weight "
               f"{standard:g}")
    return a, mass, why


@cache
def isotope_note(symbol: str) -> str | None:
    """Why an element's masses are assumed, or None when it has natural isotopes.

    Examples
    --------
    >>> from liprobe.chemistry import isotope_note
    >>> print(isotope_note("U").split(": ")[1])
    its ions are placed at 238U (238.0508 Da), the isotope of its standard atomic weight 238.029
    >>> print(isotope_note("Tc").split(": ")[1])
    its ions are placed at its longest-lived isotope 98Tc (97.9072 Da)
    >>> isotope_note("Si") is None
    True
    """
    import periodictable

    if not is_element(symbol) or symbol == "Li":
        return None
    el = getattr(periodictable, symbol)
    if any(float(el[a].abundance) > 0 for a in el.isotopes):
        return None
    return (f"{symbol} has no natural isotope abundances in periodictable: its ions are "
            f"placed at {_single_isotope(symbol)[2]}")


def isotope_warnings(elements) -> list[str]:
    """The :func:`isotope_note` of each element in ``elements`` that has one, once each.

    What a command that takes elements (``autorange --elements``, a material's
    formula) or a range file prints as warnings.

    Examples
    --------
    >>> from liprobe.chemistry import isotope_warnings
    >>> [w.split(":")[0] for w in isotope_warnings(["Zr", "Si", "O", "U", "Zr"])]
    ['U has no natural isotope abundances in periodictable']
    """
    notes = (isotope_note(el) for el in dict.fromkeys(elements))
    return [n for n in notes if n is not None]
