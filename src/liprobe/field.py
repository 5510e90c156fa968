"""Field proxies: charge-state ratios and the O2+/O+ molecular-ion ratio.

What is reported (``shared/reference/field-evaporation.md`` sections 1-2):

- for every element ranged as a single-atom ion in two or more charge states,
  the ratio of each charge state to the next lower one ranged (``Ni++/Ni+``,
  ``Co++/Co+``, ``Mn++/Mn+``, ``Cr++/Cr+``, and ``Cr+++/Cr++`` if ranged), all
  isotopes of an ion counted together (its windows);
- ``O2+/O+``, ``r = N(O2+) / N(O+)``, O2+ being the O2 molecule at 32 Da (the
  form of the seed paper, Singh et al., arXiv:2309.07842), and its equivalent
  ``O+/(O+ + O2+) = 1 / (1 + r)`` (the form of D.K. Schreiber et al., Appl.
  Phys. Lett. 105 (2014) 244106). Higher field: more O+, lower ``r``;
- any further ion ratio asked for (``Mn++/Mn+``, ``NiO+/Ni+``...).

Errors are counting statistics of independent Poisson counts (first-order
propagation, :func:`liprobe.composition.evaluate_ratio`): ``r sqrt(1/A +
1/B)`` for disjoint counts, ``sqrt(f (1 - f) / B)`` for ``O+/(O+ + O2+)``.
Not included: background, peak overlaps, ranging choices.

Which ratios are clean in coated specimens (in-situ Cr coating):

- ``O2+/O+``: clean of Cr; in Ni-bearing oxides 64Ni++ (31.96 Da) sits under
  O2+ (31.99 Da) and is not subtracted here.
- ``Ni++/Ni+``, ``Co++/Co+``: clean of Cr; check hydride overlaps and the
  tails of 58Ni under 59Co+.
- ``Mn++/Mn+``: clean only from the oxide with the coating left out (a ROI
  within the coated shell, e.g. ``cylinder:25`` or ``core``): 54CrH+ (54.946 Da)
  sits on Mn+ (54.938 Da), and the thermal tails of 53Cr++/54Cr++ (26.47/26.97 Da)
  run under Mn++ (27.47 Da).
- ``Cr++/Cr+``: from the coating, a metal, the only ratio from which a
  Kingham (post-ionisation) field may be inferred; the cation ratios of the
  oxide are relative indicators only (Mn++/Mn+ even rises with laser energy
  in these oxides, against post-ionisation theory).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .chemistry import Ion, parse_ratio
from .chemistry.expressions import RatioExpression
from .composition import Ratio, evaluate_ratio
from .rangetable import RangeTable

__all__ = ["FieldProxies", "field_proxies", "field_proxies_from_counts", "parse_ion_ratio",
           "O2_RATIO", "O_FRACTION"]

#: The molecular-ion ratio r = N(O2+) / N(O+) (seed paper's form).
O2_RATIO = "O2+/O+"
#: Its equivalent f_O = N(O+) / (N(O+) + N(O2+)) = 1 / (1 + r) (Schreiber 2014's form).
O_FRACTION = "O+/(O+ + O2+)"


@dataclass(frozen=True)
class FieldProxies:
    """Charge-state and molecular-ion ratios of one region, with counting errors.

    Attributes
    ----------
    charge_state_ratios : dict of str to Ratio
        ``"Ni++/Ni+"`` -> ratio, for every element ranged in two or more charge
        states (single-atom ions).
    ratios : dict of str to Ratio
        ``O2+/O+``, ``O+/(O+ + O2+)`` and the ratios asked for. A ratio that
        cannot be computed (an ion not ranged, a zero denominator) has value
        None and a reason.
    ion_counts : dict of str to int
        Counts of every ranged ion.
    ions_total : int
        Ions of the region, ranged or not.
    warnings : tuple of str
        Interferences to keep in mind for this range table.
    """

    charge_state_ratios: dict
    ratios: dict
    ion_counts: dict
    ions_total: int
    warnings: tuple = field(default=())

    def to_dict(self) -> dict:
        return {
            "charge_state_ratios": {k: v.to_dict() for k, v in self.charge_state_ratios.items()},
            "ratios": {k: v.to_dict() for k, v in self.ratios.items()},
            "ion_counts": dict(self.ion_counts),
            "ions_total": self.ions_total,
            "warnings": list(self.warnings),
        }


def parse_ion_ratio(text: str) -> RatioExpression:
    """Parse a ratio of ions (``Mn++/Mn+``, ``O+/(O+ + O2+)``).

    Raises
    ------
    ValueError
        If the text is not a ratio, or names an element (atoms are for
        :func:`liprobe.composition.composition`).
    """
    expr = parse_ratio(text)
    atoms = [t for t in expr.terms if not isinstance(t, Ion)]
    if atoms:
        what = f"{atoms[0]} is an element" if len(atoms) == 1 else \
            f"{', '.join(atoms)} are elements"
        raise ValueError(f"ratio '{text}': {what}; field proxies are ratios of ions, one '+' "
                         "per charge (e.g. Mn++/Mn+); atom ratios are for 'liprobe composition'")
    return expr


def _charge_state_pairs(table: RangeTable) -> list[tuple[Ion, Ion]]:
    """(higher, next lower) charge states of every single-atom ion ranged in several."""
    by_element: dict[str, list[Ion]] = {}
    for ion in table.ions:
        if ion.n_atoms == 1 and ion.charge:
            by_element.setdefault(ion.elements[0], []).append(ion)
    pairs = []
    for ions in by_element.values():
        ions = sorted(ions, key=lambda i: i.charge)
        pairs += [(hi, lo) for lo, hi in zip(ions, ions[1:])]
    return pairs


def _check_ratios(ratios, table: RangeTable, unranged: str) -> None:
    """Raise for a further ratio naming an ion no window holds (``unranged="error"``)."""
    from .composition import check_ratio_terms
    from .errors import AnalysisError

    if unranged not in ("error", "null"):
        raise ValueError(f"unranged must be 'error' or 'null' (got {unranged!r})")
    if unranged == "null":
        return
    for text in ratios:
        why = check_ratio_terms(parse_ion_ratio(text), table)
        if why is not None:
            raise AnalysisError(f"ratio '{text}': {why}", table.path)


def _ratio(expr: RatioExpression, ion_counts: dict, ranged: set, table=None) -> Ratio:
    missing = [t.name for t in expr.terms if t not in ranged]
    if missing:
        from .rangetable import unranged_reason

        first = next(t for t in expr.terms if t not in ranged)
        why = unranged_reason(first, table) if table is not None else None
        return Ratio(expr.text, None, None, 0, 0,
                     why or f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} "
                            "not ranged")
    r, _ = evaluate_ratio(expr, ion_counts, {})
    return r


def field_proxies_from_counts(ion_counts, table: RangeTable, ions_total: int,
                              ratios=(), unranged: str = "error") -> FieldProxies:
    """Field proxies from ion counts per ion of ``table`` (same order as ``table.ions``).

    Parameters
    ----------
    ion_counts : array of int, shape (len(table.ions),)
    table : RangeTable
    ions_total : int
        All ions of the region, ranged or not.
    ratios : iterable of str
        Further ion ratios.
    unranged : "error" or "null"
        A further ratio naming an ion that no window holds: an
        :class:`~liprobe.errors.AnalysisError` with what looks alike
        (``"error"``), or null with that reason (``"null"``). The default
        proxies (O2+/O+ and O+/(O+ + O2+)) are always null with the reason.

    Raises
    ------
    ValueError
        A ratio that does not parse or names an element.
    AnalysisError
        With ``unranged="error"``, a further ratio naming an ion no window holds.
    """
    _check_ratios(ratios, table, unranged)
    exprs = [parse_ion_ratio(t) for t in (O2_RATIO, O_FRACTION, *ratios)]
    counts = np.asarray(ion_counts, dtype=np.int64)
    if counts.shape != (len(table.ions),):
        raise ValueError(f"ion_counts has shape {counts.shape}, table has {len(table.ions)} ions")
    ion_map = {ion: int(n) for ion, n in zip(table.ions, counts)}
    ranged = set(table.ions)
    csr = {}
    for hi, lo in _charge_state_pairs(table):
        expr = parse_ion_ratio(f"{hi.name}/{lo.name}")
        csr[expr.text] = _ratio(expr, ion_map, ranged)
    out = {}
    for k, expr in enumerate(exprs):
        # the default proxies keep their short reason; further ratios say what looks alike
        out.setdefault(expr.text, _ratio(expr, ion_map, ranged, table if k >= 2 else None))
    warnings = []
    els = set(table.elements)
    if "Cr" in els and any(k.startswith("Mn++/") for k in csr):
        warnings.append("Mn++/Mn+ with Cr ranged: clean only in the oxide away from the coating "
                        "(54CrH+ on Mn+, Cr++ tails under Mn++)")
    if "Ni" in els and out[O2_RATIO].value is not None:
        warnings.append("O2+ at 32 Da includes 64Ni++ (not subtracted)")
    return FieldProxies(csr, out, {ion.name: n for ion, n in ion_map.items()},
                        int(ions_total), tuple(warnings))


def field_proxies(data, table: RangeTable, ratios=()) -> FieldProxies:
    """Field proxies of the ions in ``data``.

    Which of them are clean in Cr-coated specimens is listed in the module
    docstring: O2+/O+, Ni++/Ni+ and Co++/Co+ are; Mn++/Mn+ only in a ROI
    that leaves the coating out (54CrH+ on Mn+, Cr++ tails under Mn++); Cr++/Cr+ is
    the coating's own. ``O2+/O+`` is the seed paper's form [1]_, ``O+/(O+ + O2+)``
    that of Schreiber et al. [2]_.

    Parameters
    ----------
    data : Run, ndarray of float (mass, Da), or iterable of mass chunks
        The selected ions (``run.chunks("mass")`` keeps memory bounded).
    table : RangeTable
    ratios : iterable of str
        Further ion ratios (e.g. ``"NiO+/Ni+"``).

    Returns
    -------
    FieldProxies

    References
    ----------
    .. [1] M.P. Singh, E.V. Woods, S.-H. Kim, C. Jung, L.S. Aota, B. Gault,
       "Facilitating the systematic nanoscale study of battery materials by atom
       probe tomography through in-situ metal coating", arXiv:2309.07842 (2023).
    .. [2] D.K. Schreiber, A.N. Chiaramonti, L.M. Gordon, K. Kruska, "Applicability
       of post-ionization theory to laser-assisted field evaporation of magnetite",
       Appl. Phys. Lett. 105 (2014) 244106.

    Examples
    --------
    >>> import numpy as np
    >>> import liprobe
    >>> from liprobe import Range, RangeTable, parse_ion
    >>> table = RangeTable.from_ranges([
    ...     Range(15.9, 16.2, parse_ion("O+")), Range(28.8, 29.2, parse_ion("Ni++")),
    ...     Range(31.8, 32.2, parse_ion("O2+")), Range(57.8, 58.2, parse_ion("Ni+"))])
    >>> mass = np.array([16.0] * 8 + [32.0] * 2 + [29.0] * 6 + [58.0] * 4)
    >>> fp = liprobe.field_proxies(mass, table)
    >>> r = fp.charge_state_ratios["Ni++/Ni+"]        # 6 / 4, error r sqrt(1/6 + 1/4)
    >>> print(f"{r.value:.2f} +/- {r.error:.2f}")
    1.50 +/- 0.97
    >>> print(f"{fp.ratios['O2+/O+'].value:.2f} {fp.ratios['O+/(O+ + O2+)'].value:.2f}")
    0.25 0.80
    >>> fp.warnings
    ('O2+ at 32 Da includes 64Ni++ (not subtracted)',)
    """
    from .ranging import count_ions

    exprs = [parse_ion_ratio(t) for t in ratios]   # bad ratios before any counting
    _check_ratios([e.text for e in exprs], table, "error")
    ion_counts, _unranged, total = count_ions(data, table)
    return field_proxies_from_counts(ion_counts, table, total, [e.text for e in exprs])
