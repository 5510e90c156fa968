"""Ion counts from overlapping windows: isotope-pattern deconvolution with tails and background.

The counts in window q are modelled as ``c_q = B_q + sum_i a_qi N_i``
(London, Microsc. Microanal. 25 (2019) 378; ``shared/reference/mass-spectrum.md``
section 9): ``N_i`` is the total number of ions of species i, ``B_q`` the
background in the window (uniform in time of flight, see
:class:`liprobe.spectrum.peaks.Background`) and ``a_qi`` the fraction of ion i's counts
that fall in window q:

    a_qi = sum_j p_ij * P(peak j of ion i lands in [lo_q, hi_q))

with ``p_ij`` the isotope pattern (periodictable, Li override). Without a
peak shape P is 1 when the isotope's m/n lies in the window, else 0 (pure
isotope-table deconvolution). With a :class:`PeakShape`, P integrates a
Gaussian core plus an exponential thermal tail over the window, so the tail
of a large peak that reaches a neighbour's window (58Ni++ under Co++ at
29.47 Da, 58Ni+ under Co+) is counted as the large peak's ions, not the
neighbour's.

The ``N_i >= 0`` are solved by weighted non-negative least squares
(``scipy.optimize.nnls``, weights ``1 / sqrt(c_q + var B_q)``), and their
uncertainties propagated through ``(A^T W A)^-1`` on the ions left free.
Ions that no window tells apart (O+ and O2++ with only the 16 Da window;
Co2O+ and 58Ni60NiO+) make ``A`` rank-deficient: the ion that comes first
in the convention of :func:`liprobe.chemistry.candidates.ambiguity_priority`
(fewer atoms, lower charge, no H) keeps the counts, the other is reported
as not separable, with a count of 0 and the reason.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..chemistry import Ion
from ..errors import AnalysisError
from ..run import column_chunks

__all__ = ["PeakShape", "shape_from_peaks", "pattern_matrix", "Deconvolution", "deconvolve",
           "deconvolve_table", "corrected_counts"]


@dataclass(frozen=True)
class PeakShape:
    """A peak as ``(1 - w) Gaussian(sigma) + w EMG(sigma, tau)``, scaled with mass.

    ``sigma_da(m) = sigma_rel * m`` (constant resolving power of the core) and
    ``tau_da(m) = tau_sqrt * sqrt(m)`` (a thermal tail of constant length in
    time of flight: dt/dm = t / 2m with t proportional to sqrt(m)).
    """

    sigma_rel: float
    tau_sqrt: float
    weight: float

    def sigma_da(self, m):
        return self.sigma_rel * np.asarray(m, float)

    def tau_da(self, m):
        return self.tau_sqrt * np.sqrt(np.asarray(m, float))

    def cdf(self, x, m):
        """Fraction of a peak centred at ``m`` that lies below ``x`` (Da), elementwise."""
        from scipy.special import log_ndtr, ndtr

        x = np.asarray(x, float)
        m = np.asarray(m, float)
        s = np.maximum(self.sigma_da(m), 1e-9)
        t = np.maximum(self.tau_da(m), 1e-9)
        u = (x - m) / s
        g = ndtr(u)
        if self.weight <= 0:
            return g
        # EMG cdf: Phi(u) - exp(-(x-m)/t + s^2/(2 t^2) + log Phi(u - s/t))
        log_term = -(x - m) / t + s * s / (2 * t * t) + log_ndtr(u - s / t)
        emg = g - np.exp(np.minimum(log_term, 0.0))
        return (1.0 - self.weight) * g + self.weight * np.clip(emg, 0.0, 1.0)

    def to_dict(self) -> dict:
        return {"model": "(1 - w) Gaussian + w exponentially modified Gaussian; "
                         "sigma = sigma_rel * m, tau = tau_sqrt * sqrt(m) (Da)",
                "sigma_rel": self.sigma_rel, "tau_sqrt": self.tau_sqrt, "weight": self.weight}


def shape_from_peaks(peaks, min_counts: float = 2000.0) -> PeakShape | None:
    """A :class:`PeakShape` from measured peaks (medians over the well-measured ones).

    Parameters
    ----------
    peaks : iterable of liprobe.spectrum.peaks.Peak
    min_counts : float
        Only peaks with at least this many counts are used.

    Returns
    -------
    PeakShape, or None when no peak gives a core width.
    """
    sig, tau, w = [], [], []
    for p in peaks:
        if p.counts < min_counts or p.sigma_left is None:
            continue
        sig.append(p.sigma_left / p.mass)
        if p.tail_da is not None and p.tail_weight is not None:
            tau.append(p.tail_da / math.sqrt(p.mass))
            w.append(p.tail_weight)
    if not sig:
        return None
    return PeakShape(float(np.median(sig)), float(np.median(tau)) if tau else 0.0,
                     float(np.median(w)) if w else 0.0)


def pattern_matrix(ions, lo, hi, shape: PeakShape | None = None, shapes=None,
                   min_abundance: float = 1e-5) -> np.ndarray:
    """``a[q, i]``: the fraction of ion i's counts that falls in window ``[lo_q, hi_q)``.

    Parameters
    ----------
    ions : sequence of Ion
    lo, hi : array of float, shape (Q,)
        Window bounds in Da.
    shape : PeakShape, optional
        Peak shape of every ion; None: each isotope is a line at its m/n.
    shapes : dict of Ion to PeakShape, optional
        Per-ion shapes (e.g. a family's own fitted tail), overriding ``shape``.
    """
    lo = np.asarray(lo, float)
    hi = np.asarray(hi, float)
    a = np.zeros((len(lo), len(ions)))
    shapes = shapes or {}
    for i, ion in enumerate(ions):
        pk = ion.peaks(min_abundance)
        if not pk:
            continue
        m = np.array([p[0] for p in pk])
        ab = np.array([p[1] for p in pk])
        sh = shapes.get(ion, shape)
        if sh is None:
            inside = (m[None, :] >= lo[:, None]) & (m[None, :] < hi[:, None])
            a[:, i] = inside.astype(float) @ ab
        else:
            frac = sh.cdf(hi[:, None], m[None, :]) - sh.cdf(lo[:, None], m[None, :])
            a[:, i] = np.clip(frac, 0.0, 1.0) @ ab
    return a


@dataclass(frozen=True)
class Deconvolution:
    """Ion counts solved from window counts (see the module text).

    ``counts[i]`` is the total number of ions of ``ions[i]`` (every isotope,
    in or out of the windows); ``errors[i]`` its 1-sigma uncertainty (None
    when it cannot be computed, with the reason in ``reasons``);
    ``covariance`` the counts' covariance matrix (the inverse of the weighted
    fit's Fisher matrix; rows of ions not solved are 0), or None.
    """

    ions: tuple
    counts: np.ndarray
    errors: tuple
    window_lo: np.ndarray
    window_hi: np.ndarray
    window_counts: np.ndarray
    window_background: np.ndarray
    window_fitted: np.ndarray
    chi2: float
    dof: int
    not_separable: dict = field(default_factory=dict)
    reasons: dict = field(default_factory=dict)
    shape: PeakShape | None = None
    covariance: np.ndarray | None = field(default=None, repr=False, compare=False)

    def count(self, ion) -> float:
        """The solved count of an ion (Ion or name)."""
        name = ion if isinstance(ion, str) else ion.name
        for i, x in enumerate(self.ions):
            if x.name == name:
                return float(self.counts[i])
        raise KeyError(name)

    def error(self, ion):
        name = ion if isinstance(ion, str) else ion.name
        for i, x in enumerate(self.ions):
            if x.name == name:
                return self.errors[i]
        raise KeyError(name)

    def to_dict(self) -> dict:
        return {
            "method": "weighted non-negative least squares over isotope patterns "
                      "(scipy.optimize.nnls), London 2019",
            "ions": {ion.name: {"count": float(n), "error": e}
                     for ion, n, e in zip(self.ions, self.counts, self.errors)},
            "not_separable": dict(self.not_separable),
            "reasons": dict(self.reasons),
            "windows": [{"lo": float(a), "hi": float(b), "counts": float(c),
                         "background": float(bg), "fitted": float(f)}
                        for a, b, c, bg, f in zip(self.window_lo, self.window_hi,
                                                  self.window_counts, self.window_background,
                                                  self.window_fitted)],
            "chi2": self.chi2, "dof": self.dof,
            "peak_shape": None if self.shape is None else self.shape.to_dict(),
        }


def _independent_columns(a: np.ndarray, order, rtol: float = 1e-6):
    """Columns kept in ``order`` as long as each raises the rank; the rest are dependent."""
    kept: list[int] = []
    dropped = []
    scale = np.linalg.norm(a, axis=0)
    for j in order:
        if scale[j] == 0:
            dropped.append(j)
            continue
        trial = kept + [j]
        sub = a[:, trial] / scale[trial]
        sv = np.linalg.svd(sub, compute_uv=False)
        if len(sv) == len(trial) and sv[-1] > rtol * sv[0]:
            kept.append(j)
        else:
            dropped.append(j)
    return kept, dropped


def deconvolve(window_counts, lo, hi, ions, background=None, background_error=None,
               shape: PeakShape | None = None, shapes=None, user_elements=()) -> Deconvolution:
    """Solve ion counts from counts in mass windows.

    Parameters
    ----------
    window_counts : array of float, shape (Q,)
        Ions counted in each window.
    lo, hi : array of float, shape (Q,)
        Window bounds in Da.
    ions : sequence of Ion or str
        The ions to solve for (e.g. a range table's ions, plus ions hidden
        under others such as ``O2++``).
    background, background_error : array of float, shape (Q,), optional
        Background counts in each window (subtracted) and their errors.
    shape, shapes : PeakShape, dict, optional
        See :func:`pattern_matrix`.
    user_elements : iterable of str
        For the convention that picks among ions no window tells apart.

    Returns
    -------
    Deconvolution
    """
    from scipy.optimize import nnls

    from ..chemistry import parse_ion
    from ..chemistry.candidates import ambiguity_priority

    ions = tuple(parse_ion(i) if isinstance(i, str) else i for i in ions)
    c = np.asarray(window_counts, float)
    lo = np.asarray(lo, float)
    hi = np.asarray(hi, float)
    if not (c.shape == lo.shape == hi.shape) or c.ndim != 1:
        raise AnalysisError("window counts and bounds must be 1-D arrays of one length")
    if len(ions) == 0 or len(c) == 0:
        raise AnalysisError("nothing to deconvolve: no ions or no windows")
    bg = np.zeros_like(c) if background is None else np.asarray(background, float)
    bg_err = np.zeros_like(c) if background_error is None else np.asarray(background_error, float)
    a = pattern_matrix(ions, lo, hi, shape, shapes)
    y = c - bg
    sigma = np.sqrt(np.maximum(c, 1.0) + bg_err ** 2)
    order = sorted(range(len(ions)), key=lambda i: ambiguity_priority(ions[i], user_elements))
    kept, dropped = _independent_columns(a, order)
    not_sep, reasons = {}, {}
    for j in dropped:
        if not a[:, j].any():
            reasons[ions[j].name] = "no isotope of it falls in any window"
            continue
        partners = [ions[k].name for k in kept if (a[:, k] > 0).astype(int) @ (a[:, j] > 0) > 0]
        not_sep[ions[j].name] = partners
        reasons[ions[j].name] = (f"not separable from {', '.join(partners) or 'the others'} in "
                                 "these windows: its counts go to them by convention "
                                 "(fewer atoms, lower charge, no H first)")
    aw = a[:, kept] / sigma[:, None]
    sol, _ = nnls(aw, y / sigma, maxiter=50 * max(len(kept), 1))
    n = np.zeros(len(ions))
    n[kept] = sol
    fitted = a @ n + bg
    resid = (c - fitted) / sigma
    chi2 = float(resid @ resid)
    active = [k for k, v in zip(kept, sol) if v > 0]
    errors: list = [None] * len(ions)
    full_cov = None
    if kept:
        fisher = (a[:, kept] / sigma[:, None]).T @ (a[:, kept] / sigma[:, None])
        try:
            cov = np.linalg.inv(fisher)
            if bg_err.any():
                # the background is one fitted amplitude: its error is shared by every
                # window, not independent per window as the weights take it. The
                # estimator n = H y (H = F^-1 A^T W) then has the covariance
                # H (diag(c) + s s^T) H^T, with s the windows' background errors
                h = cov @ (a[:, kept] / (sigma ** 2)[:, None]).T
                cov = (h * np.maximum(c, 1.0)) @ h.T + np.outer(h @ bg_err, h @ bg_err)
            for pos, k in enumerate(kept):
                errors[k] = float(math.sqrt(max(cov[pos, pos], 0.0)))
            full_cov = np.zeros((len(ions), len(ions)))
            full_cov[np.ix_(kept, kept)] = cov
        except np.linalg.LinAlgError:
            for k in kept:
                reasons.setdefault(ions[k].name, "uncertainty not computed (singular matrix)")
    for j in dropped:
        errors[j] = None
    dof = int(len(c) - len(active))
    return Deconvolution(ions, n, tuple(errors), lo, hi, c, bg, fitted, chi2, dof,
                         not_sep, reasons, shape, full_cov)


def deconvolve_table(mass, table, ions=None, background=None, shape: PeakShape | None = None,
                     shapes=None) -> Deconvolution:
    """Deconvolve the windows of a range table over the masses of a run.

    Parameters
    ----------
    mass : ndarray of float, or iterable of chunks
        Mass-to-charge in Da.
    table : RangeTable
    ions : sequence of Ion or str, optional
        Ions to solve for (default: the table's ions; add hidden ones such as
        ``O2++`` to this list).
    background : liprobe.spectrum.peaks.Background, optional
        Subtracted from every window.
    shape, shapes : see :func:`pattern_matrix`.
    """
    from ..ranging import count_windows

    counts = np.zeros(len(table), np.int64)
    for ch in column_chunks(mass):
        counts += count_windows(ch, table)[0]
    bg = bg_err = None
    if background is not None:
        bg = background.counts(table.lo, table.hi)
        bg_err = background.counts_error(table.lo, table.hi)
    ion_list = list(table.ions if ions is None else ions)
    ion_list = [i for i in ion_list if not (isinstance(i, Ion) and i.is_named)]
    return deconvolve(counts, table.lo, table.hi, ion_list, bg, bg_err, shape, shapes,
                      user_elements=table.elements)


def corrected_counts(mass, table, background: bool = False, deconvolve_ions: bool = False,
                     tof=None, with_covariance: bool = False):
    """Ion counts of a range table's ions, background-subtracted and/or deconvolved.

    The background (and, for deconvolution, the peak shape) is measured on the
    same masses with :func:`liprobe.spectrum.peaks.analyse_peaks`. Counts are rounded to
    whole ions for :func:`liprobe.composition.composition_from_counts`; the
    exact values and their uncertainties are returned in the second item.

    Parameters
    ----------
    mass : ndarray of float, or Run
        Mass-to-charge in Da; a Run is read a chunk at a time (its sorted masses
        in scratch when large, see :func:`~liprobe.spectrum.sorted_masses`).
    table : RangeTable
    background, deconvolve_ions : bool
    tof : ndarray, optional
        Time of flight in ns of the same ions (``run.source("tof")`` for a Run).
    with_covariance : bool
        Also return the covariance of the ion counts, for
        :func:`liprobe.composition.composition_from_counts`: the gross window
        counts' Poisson variance plus the background's (one fitted amplitude, so
        its error is shared by every window), or the deconvolution's fit
        covariance (named ions keep their Poisson variance).

    Returns
    -------
    counts : ndarray of int64, shape (len(table.ions),)
    details : dict
        ``{"background": ..., "deconvolution": ...}`` for the JSON output.
    covariance : ndarray, shape (len(table.ions), len(table.ions))
        Only with ``with_covariance``.
    """
    from ..ranging import count_windows
    from ..run import Run
    from ._shared import sorted_masses
    from .peaks import analyse_peaks

    m = mass if isinstance(mass, Run) else np.asarray(mass)     # a Run is read in chunks
    sm = sorted_masses(m)
    hi = float(max(table.hi.max() + 1.0, 10.0)) if len(table) else 200.0
    pa = analyse_peaks(m, tof, (0.5, hi), sorted_mass=sm)
    bg = pa.background
    details: dict = {"background": bg.to_dict()}
    if isinstance(m, Run):
        wc = np.zeros(len(table), np.int64)
        for _, chunk in m.chunks("mass"):
            wc += count_windows(chunk, table)[0]
    else:
        wc, _ = count_windows(m, table)
    bgc = bg.counts(table.lo, table.hi) if background else np.zeros(len(table))
    details["background"]["subtracted"] = bool(background)
    details["background"]["window_counts"] = [float(v) for v in bgc]
    n_ions = len(table.ions)
    if not deconvolve_ions:
        per_ion = np.bincount(table.ion_index, weights=np.maximum(wc - bgc, 0.0),
                              minlength=n_ions)
        out = np.round(per_ion).astype(np.int64)
        if not with_covariance:
            return out, details
        # a window clipped at zero net counts no longer depends on its counts or on the
        # background: it adds no variance
        live = (wc - bgc) >= 0
        gross = np.bincount(table.ion_index, weights=np.where(live, wc, 0.0),
                            minlength=n_ions)
        shared = np.bincount(table.ion_index,
                             weights=np.where(live, bg.counts_error(table.lo, table.hi), 0.0),
                             minlength=n_ions) if background else np.zeros(n_ions)
        details["errors_included"] = ["counting statistics"] + (
            ["the background's fitted amplitude"] if background and bg.a is not None
            and bg.a_error else [])
        return out, details, np.diag(gross) + np.outer(shared, shared)
    shape = shape_from_peaks(pa.peaks)
    ions = [i for i in table.ions if not i.is_named]
    dec = deconvolve(wc, table.lo, table.hi, ions, bgc if background else None,
                     bg.counts_error(table.lo, table.hi) if background else None, shape,
                     user_elements=table.elements)
    out = np.zeros(n_ions, np.int64)
    for k, ion in enumerate(table.ions):
        if ion.is_named:
            out[k] = int(np.sum(wc[table.ion_index == k]))
        else:
            out[k] = int(round(dec.count(ion)))
    details["deconvolution"] = dec.to_dict()
    if not with_covariance:
        return out, details
    details["errors_included"] = ["counting statistics"] + (
        ["the background's fitted amplitude"] if background and bg.a is not None
        and bg.a_error else []) + (
        ["the deconvolution's fit"] if dec.covariance is not None else [])
    cov = np.zeros((n_ions, n_ions))
    pos = {ion: k for k, ion in enumerate(table.ions)}
    idx = [pos[ion] for ion in ions]
    if dec.covariance is not None:
        cov[np.ix_(idx, idx)] = dec.covariance
    else:                               # no fit covariance: the counts' Poisson variance
        cov[idx, idx] = np.maximum(out[idx], 0)
    for k, ion in enumerate(table.ions):
        if ion.is_named:
            cov[k, k] = out[k]
    return out, details, cov
