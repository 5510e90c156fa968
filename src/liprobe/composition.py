"""Composition from ranged ions: ion counts, atom counts, atomic percent, ratios.

Ion counts come from :mod:`liprobe.ranging`; the range table's decomposition
matrix turns them into atom counts (``NiO2+`` gives one Ni and two O). Errors
are counting statistics (Danoix et al., Ultramicroscopy 107 (2007) 734 and
739; Gault et al., *Atom Probe Microscopy*, Springer 2012):

- atomic fraction ``C = A_E / N`` of ``N`` atoms: ``sigma = sqrt(C (1 - C) / N)``;
- a ratio ``r = A / B`` of sums of term counts: first-order propagation with
  each term an independent Poisson count,
  ``var r = sum_i n_i (a_i / B - A b_i / B**2) ** 2`` (``a_i``, ``b_i``: how
  often term ``i`` is in the numerator and denominator). This gives
  ``sqrt(r (1 - r) / B)`` when the numerator is part of the denominator
  (``Li/(Li+Ni+Co+Mn)``) and ``r sqrt(1/A + 1/B)`` when they are disjoint
  (``O2+/O+``), as in ``shared/reference/composition.md`` section 3.

Excluding an element (``exclude=("Cr",)``) drops every ion that contains it,
with all of its atoms, from every total: the O of ``CrO+`` came from the
coating, not the cathode.

By default the errors are counting statistics only. When the ion counts are
estimates (a background subtracted, overlapping peaks deconvolved:
:func:`liprobe.spectrum.corrected_counts`), :func:`composition_from_counts`
takes their covariance and propagates it to first order; ``Composition.errors``
says which. Never included: ranging choices and species-dependent losses
(report them separately).
"""

from __future__ import annotations

import math
import sys
import types
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .chemistry import Ion, parse_ratio
from .chemistry.expressions import RatioExpression
from .errors import AnalysisError
from .rangetable import RangeTable

__all__ = ["Ratio", "Composition", "composition", "composition_from_counts", "evaluate_ratio",
           "check_ratio_terms"]


#: What the errors of a composition hold, by default: counting statistics only.
COUNTING_ERRORS = "counting statistics (binomial over atoms for at.%, Poisson for ratios)"


@dataclass(frozen=True)
class Ratio:
    """A ratio with its error (counting, or propagated from the ion counts' covariance:
    see ``Composition.errors``); ``value`` is None (with ``reason``) when undefined."""

    expression: str
    value: float | None
    error: float | None
    numerator: int
    denominator: int
    reason: str | None = None

    def to_dict(self) -> dict:
        d: dict[str, Any] = {"value": self.value, "error": self.error,
                             "numerator": self.numerator, "denominator": self.denominator}
        if self.reason:
            d["reason"] = self.reason
        return d


def _term_name(t) -> str:
    return t.name if isinstance(t, Ion) else t


def evaluate_ratio(expr: RatioExpression | str, ion_counts: dict, atom_counts: dict,
                   excluded_ions=frozenset()) -> tuple[Ratio, list[str]]:
    """Value and error of a ratio expression over ion and atom counts.

    Parameters
    ----------
    expr : RatioExpression or str
        E.g. ``"Li/(Li+Ni+Co+Mn)"`` (atoms) or ``"O2+/O+"`` (ions).
    ion_counts : dict of Ion to int
    atom_counts : dict of str to int
    excluded_ions : set of Ion
        Ions dropped by an exclusion; naming one makes the ratio undefined.

    Returns
    -------
    ratio : Ratio
    warnings : list of str
    """
    if isinstance(expr, str):
        expr = parse_ratio(expr)
    warnings: list[str] = []
    counts: dict[Ion | str, int] = {}
    for t in expr.terms:
        if isinstance(t, Ion):
            if t in excluded_ions:
                return (Ratio(expr.text, None, None, 0, 0,
                              f"{t.name} is excluded (it contains an excluded element)"), warnings)
            if t not in ion_counts:
                warnings.append(f"{expr.text}: {t.name} is not ranged; counted as 0")
            counts[t] = int(ion_counts.get(t, 0))
        else:
            if t not in atom_counts:
                warnings.append(f"{expr.text}: no ranged ion carries {t}; counted as 0")
            counts[t] = int(atom_counts.get(t, 0))
    a_coef = dict(expr.numerator)
    b_coef = dict(expr.denominator)
    A = sum(counts[t] * k for t, k in expr.numerator)
    B = sum(counts[t] * k for t, k in expr.denominator)
    if B == 0:
        den = "+".join(_term_name(t) for t, _ in expr.denominator)
        reason = f"denominator {den} is zero"
        warnings.append(f"{expr.text}: {reason}; ratio not computed")
        return Ratio(expr.text, None, None, A, B, reason), warnings
    r = A / B
    var = sum(n * (a_coef.get(t, 0) / B - A * b_coef.get(t, 0) / B**2) ** 2
              for t, n in counts.items())
    return Ratio(expr.text, r, math.sqrt(var), A, B), warnings


@dataclass(frozen=True)
class Composition:
    """Counts, atomic percent with errors, and ratios of one region.

    ``errors`` says what the errors hold: counting statistics (binomial over
    atoms for at.%, Poisson for ratios) by default, or a propagation from the
    ion counts' covariance.

    ``ion_counts`` and the atom totals leave out excluded ions; those are
    listed under ``excluded``. Percent values are in at.%, errors are one
    standard deviation.
    """

    ions_total: int
    ions_ranged: int
    ion_counts: dict
    atom_counts: dict
    atomic_percent: dict
    atomic_percent_error: dict
    ratios: dict
    excluded: dict
    warnings: tuple = field(default=())
    errors: str = COUNTING_ERRORS

    def to_dict(self) -> dict:
        return {
            "errors": self.errors,
            "ions_total": self.ions_total,
            "ions_ranged": self.ions_ranged,
            "ion_counts": dict(self.ion_counts),
            "atom_counts": dict(self.atom_counts),
            "atomic_percent": dict(self.atomic_percent),
            "atomic_percent_error": dict(self.atomic_percent_error),
            "ratios": {k: v.to_dict() for k, v in self.ratios.items()},
            "excluded": dict(self.excluded),
            "warnings": list(self.warnings),
        }

    def __repr__(self) -> str:
        top = ", ".join(f"{el} {pct:.3g}" for el, pct in sorted(
            self.atomic_percent.items(), key=lambda kv: -kv[1])[:6])
        more = ", ..." if len(self.atomic_percent) > 6 else ""
        ratios = f"; ratios {', '.join(self.ratios)}" if self.ratios else ""
        return (f"<Composition: {self.ions_ranged:,} of {self.ions_total:,} ions ranged; "
                f"at.% {top or 'none'}{more}{ratios}>")

    def to_dataframe(self):
        """Atoms per element as a pandas DataFrame: ``atoms``, ``at_pct``, ``at_pct_err``.

        One row per element (index ``element``), in the order of
        ``atom_counts``; at.% and its one-sigma error are ``NaN`` for an element
        without ranged atoms. Ion counts and ratios stay in ``ion_counts`` and
        ``ratios`` (``to_dict()`` has them all).

        Examples
        --------
        >>> import numpy as np
        >>> from liprobe import Range, RangeTable, parse_ion
        >>> t = RangeTable.from_ranges([Range(6.9, 7.2, parse_ion("Li+")),
        ...                             Range(15.9, 16.2, parse_ion("O+"))])
        >>> c = composition(np.array([7.0, 7.1, 16.0, 16.1], dtype=np.float32), t)
        >>> c
        <Composition: 4 of 4 ions ranged; at.% Li 50, O 50>
        >>> c.to_dataframe()
                 atoms  at_pct  at_pct_err
        element
        Li           2    50.0        25.0
        O            2    50.0        25.0
        """
        import pandas as pd

        els = list(self.atom_counts)
        df = pd.DataFrame({
            "atoms": [int(self.atom_counts[el]) for el in els],
            "at_pct": [self.atomic_percent.get(el, np.nan) for el in els],
            "at_pct_err": [self.atomic_percent_error.get(el, np.nan) for el in els],
        }, index=pd.Index(els, name="element"))
        df.attrs["units"] = {"atoms": "", "at_pct": "at.%", "at_pct_err": "at.%"}
        return df


def check_ratio_terms(expr, table: RangeTable, ions_only: bool = False) -> str | None:
    """Why a ratio names an ion or element that no window of ``table`` holds, or None.

    (:func:`liprobe.rangetable.unranged_reason` for its first such term: ``Ni2+`` is the
    Ni2 molecule; a user who meant Ni2+ the charge state gets told so.) With
    ``ions_only`` elements are not checked.
    """
    from .rangetable import unranged_reason

    if isinstance(expr, str):
        expr = parse_ratio(expr)
    for t in expr.terms:
        if ions_only and not isinstance(t, Ion):
            continue
        why = unranged_reason(t, table)
        if why is not None:
            return why
    return None


def _propagated(grad: np.ndarray, cov: np.ndarray) -> float:
    """One-sigma error of a function of the ion counts: ``sqrt(g^T C g)`` (first order)."""
    return math.sqrt(max(float(grad @ cov @ grad), 0.0))


def _ratio_gradient(expr, table: RangeTable, keep: np.ndarray, counts: np.ndarray,
                    elements, matrix) -> tuple[np.ndarray, float, float]:
    """Numerator and denominator of a ratio as linear forms of the ion counts: the gradient
    of A/B with respect to each ion's count, and A, B. An element term counts the atoms
    of every kept ion carrying it, so that ions shared by numerator and denominator (NiO+
    in Ni/(Ni+O)) are correlated correctly."""
    n = len(table.ions)
    index = {ion: i for i, ion in enumerate(table.ions)}

    def form(side):
        v = np.zeros(n)
        for t, k in side:
            if isinstance(t, Ion):
                if t in index and keep[index[t]]:
                    v[index[t]] += k
            elif t in elements:
                v += k * np.where(keep, matrix[:, elements.index(t)], 0)
        return v

    alpha, beta = form(expr.numerator), form(expr.denominator)
    a, b = float(alpha @ counts), float(beta @ counts)
    return (alpha * b - a * beta) / (b * b) if b else np.zeros(n), a, b


def composition_from_counts(ion_counts, table: RangeTable, ions_total: int,
                            exclude=(), ratios=(), unranged: str = "error",
                            ion_covariance=None, errors: str | None = None) -> Composition:
    """Composition from ion counts per ion of ``table`` (same order as ``table.ions``).

    Parameters
    ----------
    ion_counts : array of int, shape (len(table.ions),)
    table : RangeTable
    ions_total : int
        All ions of the region, ranged or not.
    exclude : iterable of str
        Elements whose ions are dropped whole (one that no ranged ion carries is
        a warning: a study-wide exclusion also applies to runs without it).
    ratios : iterable of str
        Ratio expressions to evaluate.
    unranged : "error" or "null"
        A ratio naming an ion or element that no window holds (``Ni2+``, the Ni2
        molecule, for Ni++): an :class:`~liprobe.errors.AnalysisError` naming it
        and what looks alike (``"error"``, the API and the command line). With
        ``"null"`` (a study's many runs of several materials) a ratio naming an
        ion no window holds is null with that reason, while an element no ion
        carries counts as 0 with a warning (an LiMn2O4 run's ``Ni/(Ni+Co+Mn)``
        is 0: it has no Ni).
    ion_covariance : array, shape (len(table.ions), len(table.ions)), optional
        The covariance of the ion counts when they are estimates (a background
        subtracted, peaks deconvolved: :func:`liprobe.spectrum.corrected_counts`).
        Then the at.% and ratio errors are propagated from it to first order,
        ``sqrt(g^T C g)`` with ``g`` the gradient of the at.% or ratio with
        respect to the ion counts, instead of counting statistics.
    errors : str, optional
        What the errors hold, for the output (default: :data:`COUNTING_ERRORS`,
        or "propagated from the ion counts' covariance" with a covariance).

    Raises
    ------
    AnalysisError
        With ``unranged="error"``, a ratio that names an ion or element no
        window holds.
    """
    if unranged not in ("error", "null"):
        raise ValueError(f"unranged must be 'error' or 'null' (got {unranged!r})")
    ratio_reasons = {}
    for text in ratios:
        why = check_ratio_terms(text, table, ions_only=unranged == "null")
        if why is not None:
            if unranged == "error":
                raise AnalysisError(f"ratio '{text}': {why}", table.path)
            ratio_reasons[text] = why
    counts = np.asarray(ion_counts, dtype=np.int64)
    if counts.shape != (len(table.ions),):
        raise ValueError(f"ion_counts has shape {counts.shape}, table has {len(table.ions)} ions")
    cov = None
    if ion_covariance is not None:
        cov = np.asarray(ion_covariance, dtype=np.float64)
        if cov.shape != (len(table.ions),) * 2 or not np.isfinite(cov).all():
            raise ValueError(f"ion_covariance must be a finite {len(table.ions)} x "
                             f"{len(table.ions)} matrix, got shape {cov.shape}")
    exclude = tuple(exclude)
    from .chemistry import is_element

    for el in exclude:
        if not is_element(el):
            raise AnalysisError(f"cannot exclude '{el}': not a chemical element")
    warnings = list(table.warnings)
    for el in exclude:
        if el not in table.elements:
            warnings.append(f"exclude {el}: no ranged ion carries {el}, nothing excluded")
    keep = np.array([not any(ion.count(el) for el in exclude) for ion in table.ions], dtype=bool)
    excluded_ions = {ion for ion, k in zip(table.ions, keep) if not k}
    elements, matrix = table.decomposition()
    atoms = counts[keep] @ matrix[keep] if len(elements) else np.zeros(0, np.int64)
    atom_counts = {el: int(n) for el, n in zip(elements, atoms)
                   if el not in exclude}
    n_atoms = sum(atom_counts.values())
    pct, err = {}, {}
    if n_atoms == 0:
        warnings.append("no ranged atoms (the range file ranges no atoms here, or every ion "
                        "is excluded or absent): atomic percentages are empty")
    else:
        kept_els = [el for el in elements if el not in exclude]
        col = {el: elements.index(el) for el in kept_els}
        # atoms of the kept elements per ion (0 for excluded ions): the total's linear form
        per_ion = np.where(keep[:, None], matrix, 0)[:, [col[el] for el in kept_els]] \
            if kept_els else np.zeros((len(table.ions), 0))
        t = per_ion.sum(axis=1)
        for el, n in atom_counts.items():
            c = n / n_atoms
            pct[el] = 100.0 * c
            if cov is None:
                err[el] = 100.0 * math.sqrt(c * (1.0 - c) / n_atoms)
            else:
                a_e = per_ion[:, kept_els.index(el)]
                err[el] = 100.0 * _propagated((a_e * n_atoms - n * t) / n_atoms ** 2, cov)
    ion_map = {ion: int(n) for ion, n, k in zip(table.ions, counts, keep) if k}
    ratio_out = {}
    for text in ratios:
        if text in ratio_reasons:
            ratio_out[text] = Ratio(text, None, None, 0, 0, ratio_reasons[text])
            continue
        r, w = evaluate_ratio(text, ion_map, atom_counts, excluded_ions)
        if cov is not None and r.value is not None:
            grad, _a, _b = _ratio_gradient(parse_ratio(text), table, keep,
                                           counts.astype(np.float64), list(elements), matrix)
            r = Ratio(r.expression, r.value, _propagated(grad, cov), r.numerator,
                      r.denominator, r.reason)
        ratio_out[text] = r
        warnings.extend(w)
    excl: dict[str, Any] = {
        "elements": list(exclude),
        "ions": {ion.name: int(n) for ion, n, k in zip(table.ions, counts, keep) if not k},
    }
    excl["ions_total"] = int(sum(excl["ions"].values()))
    return Composition(
        ions_total=int(ions_total),
        ions_ranged=int(counts.sum()),
        ion_counts={ion.name: n for ion, n in ion_map.items()},
        atom_counts=atom_counts,
        atomic_percent=pct,
        atomic_percent_error=err,
        ratios=ratio_out,
        excluded=excl,
        warnings=tuple(warnings),
        errors=errors or (COUNTING_ERRORS if cov is None
                          else "propagated from the ion counts' covariance"),
    )


def composition(mass, table: RangeTable, exclude=(), ratios=(),
                unranged: str = "error") -> Composition:
    """Composition of the ions with masses ``mass`` (Da) ranged by ``table``.

    ``mass`` is an array, or an iterable of chunks (e.g. ``run.chunks("mass")``)
    so that a file larger than memory is counted with bounded memory. Errors
    are counting statistics ([1]_, [2]_; see the module docstring).

    Parameters
    ----------
    mass : Run, ndarray of float, or iterable of such chunks
        Mass-to-charge in Da of the selected ions (:func:`liprobe.run.column_chunks`).
    table : RangeTable
    exclude : iterable of str
        Elements whose ions are dropped whole (``["Cr"]``: the coating).
    ratios : iterable of str
        Ratio expressions of atoms (``"Li/(Li+Ni+Co+Mn)"``) or ions (``"O2+/O+"``).
    unranged : "error" or "null"
        What a ratio naming an ion or element that no window holds gives (see
        :func:`composition_from_counts`).

    Returns
    -------
    Composition

    Raises
    ------
    AnalysisError
        ``exclude`` names something that is not an element, or a ratio names
        an ion or element no window holds (``unranged="error"``).

    References
    ----------
    .. [1] F. Danoix, G. Grancher, A. Bostel, D. Blavette, "Standard deviations of
       composition measurements in atom probe analyses", Part I and Part II,
       Ultramicroscopy 107 (2007) 734-738 and 739-743.
    .. [2] B. Gault, M.P. Moody, J.M. Cairney, S.P. Ringer, *Atom Probe
       Microscopy*, Springer (2012).

    Examples
    --------
    >>> import numpy as np
    >>> from liprobe import Range, RangeTable, parse_ion
    >>> from liprobe.composition import composition
    >>> table = RangeTable.from_ranges([
    ...     Range(6.9, 7.2, parse_ion("Li+")), Range(15.9, 16.2, parse_ion("O+")),
    ...     Range(31.8, 32.2, parse_ion("O2+")), Range(51.8, 52.2, parse_ion("Cr+"))])
    >>> mass = np.array([7.0] * 4 + [16.0] * 5 + [32.0] * 2 + [52.0] * 3 + [40.0])
    >>> c = composition(mass, table, exclude=["Cr"], ratios=["Li/(Li+O)", "O2+/O+"])
    >>> c.ions_total, c.ions_ranged, c.ion_counts     # the ion at 40 Da is unranged
    (15, 14, {'Li+': 4, 'O+': 5, 'O2+': 2})
    >>> c.atom_counts                                  # O2+ holds two O; Cr+ is excluded
    {'Li': 4, 'O': 9}
    >>> c.excluded["ions"]
    {'Cr+': 3}

    At.% with its binomial error ``100 sqrt(C (1 - C) / N)``, C = 4/13, N = 13:

    >>> print(f"{c.atomic_percent['Li']:.2f} +/- {c.atomic_percent_error['Li']:.2f} at.%")
    30.77 +/- 12.80 at.%

    A ratio of disjoint counts, 2 / 5, with the error ``r sqrt(1/2 + 1/5)``:

    >>> r = c.ratios["O2+/O+"]
    >>> print(f"{r.value:.3f} +/- {r.error:.3f}")
    0.400 +/- 0.335

    An ion that no window holds is an error, with what looks alike:

    >>> composition(mass, table, ratios=["Li2+/Li+"])     # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    liprobe.errors.AnalysisError: ratio 'Li2+/Li+': Li2+ is not ranged; ions of Li ranged: Li+
    """
    from .ranging import count_ions

    for text in ratios:                  # before counting: a bad ratio costs no pass
        why = check_ratio_terms(text, table) if unranged == "error" else None
        if why is not None:
            raise AnalysisError(f"ratio '{text}': {why}", table.path)
    ion_counts, _unranged, total = count_ions(mass, table)
    return composition_from_counts(ion_counts, table, total, exclude, ratios, unranged)


class _CallableModule(types.ModuleType):
    """This module, callable as :func:`composition`.

    ``liprobe.composition`` names this module (``import liprobe.composition``
    and ``from liprobe.composition import composition`` keep working) and,
    called, is the function: ``liprobe.composition(run, ranges, ...)``.
    """

    def __call__(self, *args, **kwargs):
        return composition(*args, **kwargs)

    @property
    def __signature__(self):
        import inspect

        return inspect.signature(composition)

    def __reduce__(self):
        # pickled by name, as a function is, so that it can be sent to worker
        # processes (ProcessPoolExecutor, Dask): unpickled, it is this module again
        import importlib

        return importlib.import_module, (self.__name__,)


sys.modules[__name__].__class__ = _CallableModule
