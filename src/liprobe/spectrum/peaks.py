"""Peaks of a mass spectrum: where they are, how wide, how long their tails, and the background.

Conventions (``shared/reference/mass-spectrum.md`` sections 2-4; Larson et
al., *Local Electrode Atom Probe Tomography*, Springer 2013; Gault et al.,
*Atom Probe Microscopy*, Springer 2012):

- **Detection.** The masses are sorted once; a histogram with bins of
  constant *relative* width (a peak of constant resolving power spans the
  same number of bins at 1 and at 200 Da) is smoothed, and every local
  maximum is tested against its local background, the geometric mean of
  the levels of two flanks (each 2 FWHM long, from 1.5 FWHM on either side;
  exact for a peak sitting on an exponential tail): it is a peak when its
  counts within +-HWHM are above that background at ``z`` sigma (Poisson
  tail probability, one-sided; 5 sigma by default) and by at least 10 counts.
- **Widths** (FWHM, FW10%M, FW1%M) are measured on the peak as it is (core
  and tail), on a histogram of the sorted masses with bins of a tenth of the
  FWHM (always at most a fifth), above the local background; a level is
  crossed where a running mean, wide enough to hold about 20 counts at that
  level, first falls below it walking out from the maximum. A width is
  ``None`` with a reason when the peak-to-background ratio is below
  ``1 / level`` (below 100 for FW1%M), when there are too few counts at that
  level, or when the side runs into the next peak first. MRP = m / width.
- **Tail.** Thermal tails run to higher m/n. An exponential plus a constant
  floor (between the background model and the level left of the peak) is
  fitted (Poisson likelihood) to the high-mass side beyond the
  10 % crossing and 3 sigma of the core; its decay length in Da is converted
  to time of flight with dt/dm = t / (2 m) (``tail_ns``, which does not grow
  with mass the way a width in Da does). ``tail_fraction``: background-
  subtracted counts from 0.1 to 0.5 Da above the peak over the peak's counts
  (counts in [m - 2 FWHM, m + 0.1 Da)); other peaks in that span are cut out
  and replaced by the fitted tail.
- **Background** is uniform in time of flight (Haley, London, Moody,
  Microsc. Microanal. 2020), so its density per Da is ``A / sqrt(m)``. A is
  fitted by Poisson likelihood in peak-free windows to the *left* of peaks
  (outside their own tails), rejecting windows that sit high (one-sided 3
  sigma clipping: tails only ever add counts). It is reported per Da at
  stated masses and, when the run gives the time-of-flight scale, in ppm/ns
  (counts per ns of flight time per million ions of the run; normalised to
  detected ions, not pulses).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from ..errors import AnalysisError
from ..run import column_chunks
from ._shared import poisson_excess_z, sorted_masses, sorted_search

__all__ = ["TimeScale", "time_scale", "Background", "Peak", "PeakAnalysis",
           "detect_peaks", "fit_background", "measure_peak", "analyse_peaks", "LEVELS"]

#: Fractions of the maximum at which widths are measured: key -> fraction.
LEVELS = {"fwhm": 0.5, "fw10": 0.1, "fw1": 0.01}

#: Counts a running mean must hold at a level for a crossing to be trusted.
_LEVEL_COUNTS = 20.0
#: Widest running mean allowed (bins of FWHM/10).
_MAX_SMOOTH = 15

# measure_peak: lengths in FWHM of the peak (or its guess) or in Da, as the name says
_MIN_FWHM_DA = 1e-4           # the FWHM guess is floored at this
_BINS_PER_FWHM = 10.0         # shape histogram: bins of a tenth of the FWHM guess ...
_MIN_BINS_PER_FWHM = 5.0      # ... measured again on a tenth of the FWHM found when it spans fewer
_SAME_PEAK_FWHM = 0.5         # a neighbour closer than this is the peak itself
_LOWER_NB_REACH_FWHM = 3.0    # a lower-mass neighbour reaches this many of its FWHM above it ...
_UPPER_NB_REACH_FWHM = 2.0    # ... a higher-mass one this many below it
_WINDOW_BELOW_FWHM = 8.0      # shape histogram: from 8 FWHM below the guess ...
_WINDOW_ABOVE_FWHM = 15.0     # ... to 15 FWHM above it ...
_WINDOW_ABOVE_MIN_DA = 0.7    # ... and at least 0.7 Da above it
_SIDEBAND_GAP_FWHM = 3.0      # local background: a sideband ending 3 FWHM below the peak ...
_SIDEBAND_FWHM = 6.0          # ... 6 FWHM long ...
_SIDEBAND_MIN_DA = 0.06       # ... and at least 0.06 Da (cut at the lower neighbour's reach) ...
_SIDEBAND_MIN_FWHM = 2.0      # ... used when at least 2 FWHM of it are left ...
_SIDEBAND_PARTS = 3           # ... its level is that of the lowest of 3 equal parts
_TOP_SEARCH_FWHM = 0.6        # the maximum: sought within +-0.6 FWHM of the guess ...
_TOP_SMOOTH_BINS = 3          # ... on a running mean of 3 bins; a log-parabola is fitted ...
_TOP_FIT_BINS = 5             # ... to the bins within +-5 of the maximum ...
_TOP_FIT_LEVEL = 0.5          # ... that are above half of it ...
_TOP_FIT_MIN_BINS = 3         # ... when there are at least 3 ...
_TOP_MAX_SHIFT_BINS = 2       # ... and kept when its vertex is within 2 bins of the maximum
_MIN_LEVEL_PER_BIN = 1e-9     # a level (counts per bin) floored at this in the running mean's width
_HWHM_PER_SIGMA = math.sqrt(2 * math.log(2))  # a Gaussian's half width at half maximum / sigma
_FWHM_PER_SIGMA = 2.355       # a Gaussian's FWHM / sigma (rounded), when no side is measured
_COUNT_FWHM = 2.0             # peak counts: from 2 FWHM below the maximum to 2 FWHM above it ...
_COUNT_ABOVE_MIN_DA = 0.1     # ... and at least to 0.1 Da above it
_TAIL_START_FWHM = 2.0        # tail fit: from the 10 % crossing (else 2 FWHM) above the maximum ...
_TAIL_START_SIGMAS = 3.0      # ... and at least 3 sigma of the core above it ...
_TAIL_END_FWHM = 20.0         # ... to 20 FWHM above the maximum ...
_TAIL_END_MIN_DA = 0.6        # ... and at least 0.6 Da (cut at the higher neighbour's reach) ...
_TAIL_MIN_SPAN_FWHM = 3.0     # ... when that span is at least 3 FWHM long ...
_TAIL_MAX_BINS = 60.0         # ... on at most 60 bins (none narrower than the shape's) ...
_TAIL_MIN_BINS = 5            # ... at least 5 of them outside the neighbours' cores ...
_TAIL_MIN_COUNTS = 30         # ... holding at least 30 counts above the local background
_TAIL_CUT_REACH_FWHM = 2      # neighbours within 2 of their FWHM of the tail's span are cut out
_CUT_BELOW_FWHM = 1.5         # a neighbour's core, cut out of a tail: from 1.5 FWHM below ...
_CUT_ABOVE_FWHM = 2.0         # ... to 2 FWHM above it (its own FWHM)
_SLOPE_MIN_BINS = 3           # first decay length: the log-slope over at least 3 bins ...
_TAU_START_MAX_DA = 5.0       # ... at most 5 Da ...
_TAU_START_DA = 0.1           # ... else 0.1 Da
_TAU_MAX_SPANS = 2.0          # a fitted decay length over twice the fitted span is no decay
_FRACTION_LO_DA = 0.1         # tail_fraction: counts from 0.1 Da above the maximum ...
_FRACTION_HI_DA = 0.5         # ... to 0.5 Da above it ...
_FRACTION_BIN_DA = 0.005      # ... on bins of at most 5 mDa (none wider than the shape's) ...
_FRACTION_CUT_REACH_FWHM = 3  # ... neighbours within 3 of their FWHM of that span cut out
_MIN_DENSITY = 1e-12          # counts per Da: floor of the background where the peak meets it
_MAX_EXP_ARG = 50.0           # cap of the exponent in the tail weight (a tail fit far above)


# --------------------------------------------------------------------------
# time of flight scale
# --------------------------------------------------------------------------

@dataclass(frozen=True)
class TimeScale:
    """Time of flight against mass, ``t = k sqrt(m)``: k in ns per sqrt(Da).

    ``k`` is the ion-weighted mean of ``tof / sqrt(mass)`` (the voltage
    changes during a run), so that ``dt/dm = k / (2 sqrt(m))`` is the mean of
    ``t / (2 m)`` at that mass (mass-spectrum.md section 4). ``k`` is None,
    with ``reason``, when the run has no usable time of flight.
    """

    ns_per_sqrt_da: float | None
    source: str
    reason: str | None = None

    def dt_dm(self, mass_da):
        """ns per Da at ``mass_da`` (None without a time scale)."""
        if self.ns_per_sqrt_da is None:
            return None
        return self.ns_per_sqrt_da / (2.0 * np.sqrt(mass_da))

    def to_dict(self) -> dict:
        d = {"ns_per_sqrt_da": self.ns_per_sqrt_da, "source": self.source}
        if self.reason:
            d["reason"] = self.reason
        return d


def time_scale(mass, tof=None, ns_per_sqrt_da: float | None = None,
               sample: int = 200_000) -> TimeScale:
    """The time-of-flight scale of a run from its ``tof`` column (or as given).

    Parameters
    ----------
    mass : ndarray, shape (n,)
        Mass-to-charge in Da.
    tof : ndarray, shape (n,), optional
        Time of flight in ns (an ``.epos``); ions with ``tof <= 0`` or
        ``mass < 0.5`` are left out.
    ns_per_sqrt_da : float, optional
        Use this k instead (e.g. ``L / sqrt(c V)`` for a known voltage).
    sample : int
        At most this many ions, evenly spaced in the run, are used.
    """
    if ns_per_sqrt_da is not None:
        return TimeScale(float(ns_per_sqrt_da), "given")
    if tof is None:
        return TimeScale(None, "none", "the run has no time-of-flight column (a .pos): "
                         "quantities in ns are not computed")
    n = len(mass)
    step = max(1, n // sample)
    m = np.asarray(mass[::step], dtype=np.float64)
    t = np.asarray(tof[::step], dtype=np.float64)
    ok = (t > 0) & (m > 0.5) & np.isfinite(t) & np.isfinite(m)
    if ok.sum() < 100:
        return TimeScale(None, "none", "the time-of-flight column holds no usable values "
                         "(zero or missing): quantities in ns are not computed")
    k = float(np.mean(t[ok] / np.sqrt(m[ok])))
    return TimeScale(k, f"tof column, mean of tof/sqrt(mass) over {int(ok.sum()):,} ions")


# --------------------------------------------------------------------------
# background
# --------------------------------------------------------------------------

@dataclass(frozen=True)
class Background:
    """A background uniform in time of flight: ``A / sqrt(m)`` counts per Da.

    Attributes
    ----------
    a : float or None
        A in counts Da^-1/2 (None with ``reason`` when no window could be used).
    a_error : float or None
    n_ions : int
        Ions of the run (the ppm normaliser).
    ppm_per_ns : float or None
        ``2 A / k`` counts per ns, per million ions (None without a time scale).
    windows : tuple of (lo, hi, counts, accepted)
    """

    a: float | None
    a_error: float | None
    n_ions: int
    time_scale: TimeScale
    windows: tuple = ()
    reason: str | None = None

    def per_da(self, mass_da):
        """Background counts per Da at ``mass_da`` (0 when unknown)."""
        if self.a is None:
            return np.zeros_like(np.asarray(mass_da, dtype=np.float64))
        return self.a / np.sqrt(np.asarray(mass_da, dtype=np.float64))

    def counts(self, lo_da, hi_da):
        """Background counts in ``[lo, hi)``: ``2 A (sqrt(hi) - sqrt(lo))``."""
        if self.a is None:
            return np.zeros_like(np.asarray(lo_da, dtype=np.float64))
        return 2.0 * self.a * (np.sqrt(np.asarray(hi_da, np.float64))
                               - np.sqrt(np.asarray(lo_da, np.float64)))

    def counts_error(self, lo_da, hi_da):
        if self.a is None or self.a_error is None:
            return np.zeros_like(np.asarray(lo_da, dtype=np.float64))
        return self.counts(lo_da, hi_da) * (self.a_error / self.a if self.a > 0 else 0.0)

    @property
    def ppm_per_ns(self) -> float | None:
        k = self.time_scale.ns_per_sqrt_da
        if self.a is None or k is None or self.n_ions == 0:
            return None
        return 2.0 * self.a / k / self.n_ions * 1e6

    def to_dict(self, at_masses=(1.0, 16.0, 28.0, 60.0, 100.0)) -> dict:
        ppm = self.ppm_per_ns
        reasons = {}
        if self.a is None:
            reasons["a"] = self.reason
        if ppm is None:
            reasons["ppm_per_ns"] = self.reason or self.time_scale.reason
        k = self.time_scale.ns_per_sqrt_da
        ppm_err = None if ppm is None or not self.a_error or not self.a else \
            ppm * self.a_error / self.a
        d = {
            "model": "uniform in time of flight: counts per Da = A / sqrt(m)",
            "a_counts_per_sqrt_da": self.a,
            "a_error": self.a_error,
            "ppm_per_ns": ppm,
            "ppm_per_ns_error": ppm_err,
            "per_da": [{"mass": float(m), "counts_per_da": None if self.a is None else
                        float(self.per_da(m)),
                        "ppm_per_da": None if self.a is None or not self.n_ions else
                        float(self.per_da(m)) / self.n_ions * 1e6} for m in at_masses],
            "normalisation": f"per million detected ions of the run ({self.n_ions:,})",
            "time_scale": self.time_scale.to_dict(),
            "ns_per_sqrt_da": k,
            "windows": [{"lo": lo, "hi": hi, "counts": int(c), "used": bool(ok)}
                        for lo, hi, c, ok in self.windows],
        }
        if reasons:
            d["reasons"] = reasons
        return d


def _poisson_mle_a(counts, weights):
    """A maximising the Poisson likelihood of counts with means A * weights, and its error."""
    s, w = float(np.sum(counts)), float(np.sum(weights))
    if w <= 0:
        return None, None
    a = s / w
    return a, math.sqrt(max(s, 1.0)) / w


def fit_background(sm: np.ndarray, windows, n_ions: int, scale: TimeScale,
                   clip_sigma: float = 3.0) -> Background:
    """Fit ``A / sqrt(m)`` to the counts of peak-free windows (Poisson likelihood, clipped).

    Parameters
    ----------
    sm : ndarray, sorted masses in Da
    windows : iterable of (lo, hi)
        Peak-free windows in Da (see :func:`background_windows`).
    n_ions : int
        Ions of the run (ppm normaliser).
    scale : TimeScale
    clip_sigma : float
        A window whose own A lies more than this many sigma above the fit of
        the others is dropped (a tail reaching into it); repeated until none.
    """
    win = [(float(lo), float(hi)) for lo, hi in windows if hi > lo > 0]
    if not win:
        return Background(None, None, n_ions, scale, (),
                          "no peak-free window was found to fit the background in")
    lo = np.array([w[0] for w in win])
    hi = np.array([w[1] for w in win])
    c = (sorted_search(sm, hi, side="left") - sorted_search(sm, lo, side="left")).astype(float)
    wt = 2.0 * (np.sqrt(hi) - np.sqrt(lo))
    use = np.ones(len(win), bool)
    while True:
        a, err = _poisson_mle_a(c[use], wt[use])
        if a is None:
            break
        expected = a * wt
        z = (c - expected) / np.sqrt(np.maximum(expected, 1.0))
        worst = np.where(use, z, -np.inf)
        k = int(np.argmax(worst))
        if worst[k] > clip_sigma and use.sum() > 1:
            use[k] = False
            continue
        break
    rows = tuple((float(l_), float(h_), int(n), bool(u)) for l_, h_, n, u in zip(lo, hi, c, use))
    return Background(a, err, n_ions, scale, rows)


def background_windows(peaks, mass_range, min_width_da: float = 0.05,
                       max_width_da: float = 1.0):
    """Peak-free windows to the left of peaks, outside every peak and its tail.

    A peak at m with FWHM w occupies ``[m - 4 w, m + tail)`` with ``tail =
    max(10 w, 0.25 sqrt(m / 16))`` Da (a thermal tail of constant length in
    time of flight grows as sqrt(m) in Da). The window left of a peak is the
    free span just below it, at most ``max_width_da`` long, kept when at least
    ``min_width_da`` long.
    """
    lo_r, hi_r = mass_range
    spans = sorted((p[0] - 4.0 * p[1], p[0] + max(10.0 * p[1], 0.25 * math.sqrt(p[0] / 16.0)))
                   for p in peaks)
    out = []
    reach = lo_r
    for a, b in spans:
        if a - reach >= min_width_da:
            out.append((max(reach, a - max_width_da), a))
        reach = max(reach, b)
    return [(lo, hi) for lo, hi in out if lo >= lo_r and hi <= hi_r]


# --------------------------------------------------------------------------
# detection
# --------------------------------------------------------------------------

@dataclass(frozen=True)
class Detection:
    """A local maximum that passed the significance test (internal to peak finding)."""

    mass: float
    fwhm: float
    counts: float          # counts within +-HWHM
    background: float      # expected background counts there
    significance: float    # z (one-sided Gaussian equivalent of the Poisson tail)


def _log_histogram(sm, lo, hi, rel):
    n = int(math.ceil(math.log(hi / lo) / rel))
    edges = lo * np.exp(rel * np.arange(n + 1))
    idx = sorted_search(sm, edges, side="left")
    return edges, np.diff(idx).astype(np.float64)


def detect_peaks(sm: np.ndarray, mass_range=(0.5, 200.0), min_significance: float = 5.0,
                 rel_bin: float | None = None) -> list[Detection]:
    """Significant peaks of sorted masses ``sm`` in ``mass_range`` (see the module text).

    Returns
    -------
    list of Detection, by mass.
    """
    from scipy.ndimage import gaussian_filter1d
    from scipy.signal import find_peaks, peak_widths

    lo = max(float(mass_range[0]), 0.3)
    hi = float(mass_range[1])
    if hi <= lo or len(sm) == 0:
        return []
    rel = rel_bin or 1e-4
    for attempt in range(2):
        edges, h = _log_histogram(sm, lo, hi, rel)
        s = gaussian_filter1d(h, 1.0)
        idx, props = find_peaks(s, prominence=1e-9, wlen=401)
        if len(idx) == 0:
            return []
        w = peak_widths(s, idx, rel_height=0.5, prominence_data=(
            props["prominences"], props["left_bases"], props["right_bases"]))[0]
        strong = np.argsort(props["prominences"])[::-1][:10]
        typical = float(np.median(w[strong])) if len(strong) else 5.0
        if rel_bin is not None or attempt == 1 or 4.0 <= typical <= 20.0:
            break
        rel = rel * typical / 8.0       # aim at ~8 bins per FWHM
        rel = min(max(rel, 2e-5), 2e-3)
    centers = np.sqrt(edges[:-1] * edges[1:])
    half = np.maximum(2, np.round(w / 2.0)).astype(int)
    cs = np.concatenate([[0.0], np.cumsum(h)])
    a = np.clip(idx - half, 0, len(h))
    b = np.clip(idx + half + 1, 0, len(h))
    n_in = cs[b] - cs[a]
    # local background per bin: geometric mean of the mean levels of two flanks, each
    # 2 FWHM long, from 1.5 FWHM on either side (exact on an exponential tail that the
    # peak sits on; a neighbour inside one flank pulls it up less than an arithmetic mean)
    fw = np.maximum(2 * half, 2)
    l1, l0 = np.clip(idx - (3 * fw) // 2, 0, len(h)), np.clip(idx - (7 * fw) // 2, 0, len(h))
    r0 = np.clip(idx + (3 * fw) // 2 + 1, 0, len(h))
    r1 = np.clip(idx + (7 * fw) // 2 + 1, 0, len(h))
    left = (cs[l1] - cs[l0]) / np.maximum(l1 - l0, 1)
    right = (cs[r1] - cs[r0]) / np.maximum(r1 - r0, 1)
    base = np.sqrt(np.maximum(left, 0.05) * np.maximum(right, 0.05))
    # at the ends of the histogram a flank may be missing: use the other one alone
    base = np.where(r1 - r0 < fw, np.maximum(left, 0.05), base)
    base = np.where(l1 - l0 < fw, np.maximum(right, 0.05), base)
    # the flanks' own counting error (the mean of ~4 FWHM of bins) is added, so that a
    # fluctuation of the flanks does not make a peak of the noise
    n_flank = np.maximum((l1 - l0) + (r1 - r0), 1)
    bg = (base + 2.0 * np.sqrt(base / n_flank)) * (b - a)
    z = poisson_excess_z(n_in, bg)
    out = []
    keep = (z >= min_significance) & (n_in - bg >= 10)
    for j in np.flatnonzero(keep):
        k = idx[j]
        # refine the centre: count-weighted mean of the raw histogram within +-HWHM
        sl = slice(a[j], b[j])
        wts = np.maximum(h[sl] - bg[j] / max(b[j] - a[j], 1), 0)
        c = float(np.sum(centers[sl] * wts) / np.sum(wts)) if wts.sum() > 0 else float(centers[k])
        out.append(Detection(c, float(max(w[j], 1.0) * rel * c), float(n_in[j]), float(bg[j]),
                             float(min(z[j], 1e3))))
    # merge detections closer than half an FWHM (a flat top seen twice)
    out.sort(key=lambda d: d.mass)
    merged: list[Detection] = []
    for d in out:
        if merged and d.mass - merged[-1].mass < 0.5 * max(d.fwhm, merged[-1].fwhm):
            if d.counts > merged[-1].counts:
                merged[-1] = d
            continue
        merged.append(d)
    return merged


# --------------------------------------------------------------------------
# shape
# --------------------------------------------------------------------------

@dataclass(frozen=True)
class Peak:
    """One peak and its shape. Masses and widths in Da; heights in counts per Da.

    ``reasons`` maps each quantity that is ``None`` to why.
    """

    mass: float
    height: float | None
    background: float
    counts: float
    significance: float
    fwhm: float | None
    fw10: float | None
    fw1: float | None
    tail_da: float | None
    tail_ns: float | None
    tail_fraction: float | None
    sigma_left: float | None = None      # Gaussian-equivalent sigma of the clean (low-m) side
    tail_weight: float | None = None     # fraction of the peak's counts in its exponential tail
    edges: dict = field(default_factory=dict)  # level -> (left, right) crossings in Da
    reasons: dict = field(default_factory=dict)

    def mrp(self, key: str):
        w = getattr(self, key)
        return None if not w else self.mass / w

    def to_dict(self) -> dict:
        d: dict[str, Any] = {"mass": self.mass, "height": self.height,
                             "background": self.background, "counts": self.counts,
                             "significance": self.significance}
        for k in LEVELS:
            d[k] = getattr(self, k)
        for k in LEVELS:
            d["mrp_" + k] = self.mrp(k)
        d.update({"tail_ns": self.tail_ns, "tail_da": self.tail_da,
                  "tail_fraction": self.tail_fraction, "tail_weight": self.tail_weight,
                  "sigma_left": self.sigma_left,
                  "edges": {k: list(v) for k, v in self.edges.items()}})
        # 'edges': crossings of each level (Da); 'background': where the peak meets it
        reasons = dict(self.reasons)
        for k in LEVELS:
            if getattr(self, k) is None and k in reasons:
                reasons["mrp_" + k] = reasons[k]
        d["reasons"] = reasons
        return d


def _hist(sm, lo, hi, h):
    n = max(1, int(math.ceil((hi - lo) / h)))
    edges = lo + h * np.arange(n + 1)
    return edges, np.diff(sorted_search(sm, edges, side="left")).astype(np.float64)


def _running_mean(y, n):
    if n <= 1:
        return y
    k = np.ones(n) / n
    return np.convolve(y, k, mode="same")


def _crossing(y, k0, level, step, stop):
    """Fractional index where y first falls below level walking from k0 by step (+1/-1).

    Returns None when ``stop`` (exclusive index) is reached first.
    """
    k = k0
    while True:
        k2 = k + step
        if (step > 0 and k2 >= stop) or (step < 0 and k2 <= stop):
            return None
        if y[k2] < level:
            # interpolate between k and k2
            y1, y2 = y[k], y[k2]
            f = (y1 - level) / (y1 - y2) if y1 != y2 else 0.5
            return k + step * f
        k = k2


def _fit_exp_tail(x, y, floor_lo, floor_hi, tau0):
    """Poisson fit of y ~ A exp(-(x - x[0]) / tau) + b on bins x; returns (A, tau, b) or None.

    The floor ``b`` (per bin) is fitted between ``floor_lo`` (the background
    model) and ``floor_hi`` (the level left of the peak): a peak that sits on
    the tail of a larger one has a sloping floor, but never one above the
    level it rises from.
    """
    from scipy.optimize import minimize

    yy = np.asarray(y, float)
    x0 = x[0]
    span = max(floor_hi - floor_lo, 0.0)

    def unpack(p):
        amp = math.exp(min(p[0], 700.0))
        tau = math.exp(min(max(p[1], -30.0), 30.0))
        b = floor_lo + span / (1.0 + math.exp(-min(max(p[2], -50.0), 50.0)))
        return amp, tau, b

    def nll(p):
        amp, tau, b = unpack(p)
        mu = amp * np.exp(-(x - x0) / tau) + b
        return float(np.sum(mu - yy * np.log(np.maximum(mu, 1e-300))))

    a0 = max(yy[:3].mean() - floor_lo, 1.0)
    res = minimize(nll, [math.log(a0), math.log(tau0), 0.0], method="Nelder-Mead",
                   options={"xatol": 1e-4, "fatol": 1e-4, "maxiter": 600})
    if not res.success and res.nit >= 600:
        return None
    return unpack(res.x)


class _Window(NamedTuple):
    """The histogram around a peak, above its local background (:func:`_shape_window`)."""

    center: float        # Da: where the window is centred (the guess)
    w0: float            # Da: the FWHM guess (floored)
    h: float             # Da: bin width
    x: np.ndarray        # Da: bin centres
    ys: np.ndarray       # counts per bin above the local background
    nb: list             # the other peaks, (mass, FWHM) in Da, by mass
    lim_lo: float        # Da: the reach of the nearest lower-mass neighbour (-inf if none)
    lim_hi: float        # Da: the reach of the nearest higher-mass neighbour (+inf if none)
    glob: float          # counts per Da: the background model at the peak
    local: float         # counts per Da: the local background


class _Top(NamedTuple):
    """The maximum of a peak (:func:`_fit_top`)."""

    k_max: int           # the bin of the maximum
    c: float             # Da: the centre (the vertex of the log-parabola, else the bin's)
    h_bin: float         # counts per bin above the local background at the centre
    height: float        # counts per Da above the local background at the centre


#: A fitted tail: (start in Da, density at the start in counts per Da, decay length in Da,
#: floor in counts per Da).
_TailModel = tuple[float, float, float, float]


class _Core(NamedTuple):
    """A peak's window, maximum and widths (:func:`_measure_core`)."""

    win: _Window
    top: _Top | None     # None when nothing is above the local background
    widths: dict         # level key -> full width in Da, or None
    crossings: dict      # level key -> (left, right) crossings in Da, measured levels only
    reasons: dict        # level key -> why its width is None


def _shape_window(sm: np.ndarray, center: float, fwhm_guess: float, background: Background,
                  neighbours) -> _Window:
    """The histogram of ``sm`` around ``center`` (Da) on bins of a tenth of ``fwhm_guess``.

    Neighbours closer than half the guess are the peak itself and left out;
    the others limit how far the sides may be followed. The local background
    (counts per Da) is the level of a clean sideband to the left, floored by
    the model ``background``.
    """
    w0 = max(float(fwhm_guess), _MIN_FWHM_DA)
    h = w0 / _BINS_PER_FWHM
    nb = sorted((float(m), float(w)) for m, w in neighbours
                if abs(m - center) > _SAME_PEAK_FWHM * w0)
    left_nb = [m + _LOWER_NB_REACH_FWHM * w for m, w in nb if m < center]
    right_nb = [m - _UPPER_NB_REACH_FWHM * w for m, w in nb if m > center]
    lim_lo = max(left_nb) if left_nb else -np.inf
    lim_hi = min(right_nb) if right_nb else np.inf
    lo = center - _WINDOW_BELOW_FWHM * w0
    hi = center + max(_WINDOW_ABOVE_MIN_DA, _WINDOW_ABOVE_FWHM * w0)
    edges, y = _hist(sm, lo, hi, h)
    x = 0.5 * (edges[:-1] + edges[1:])
    glob = float(background.per_da(center))
    local = _local_background(sm, center, w0, lim_lo, glob)
    b_bin = local * h
    ys = y - b_bin
    return _Window(center, w0, h, x, ys, nb, lim_lo, lim_hi, glob, local)


def _local_background(sm: np.ndarray, center: float, w0: float, lim_lo: float,
                      glob: float) -> float:
    """Counts per Da under the peak at ``center`` (FWHM ``w0``, Da): a clean window left of it.

    The lowest of three equal parts of ``[m - 3 w - L, m - 3 w)``, ``L = max(6 w,
    0.06 Da)`` cut at ``lim_lo`` (the tail of a peak further left decays towards
    this one, so the nearest, lowest part is its level here); floored by the
    background model ``glob``, which is also the answer when less than 2 w is left.
    """
    bl_hi = center - _SIDEBAND_GAP_FWHM * w0
    bl_lo = max(center - _SIDEBAND_GAP_FWHM * w0 - max(_SIDEBAND_FWHM * w0, _SIDEBAND_MIN_DA),
                lim_lo)
    local = glob
    if bl_hi - bl_lo >= _SIDEBAND_MIN_FWHM * w0:
        cuts = np.linspace(bl_lo, bl_hi, _SIDEBAND_PARTS + 1)
        n_bl = np.diff(sorted_search(sm, cuts))
        local = max(glob, float(np.min(n_bl)) / (cuts[1] - cuts[0]))
    return local


def _fit_top(win: _Window) -> _Top | None:
    """The maximum within +-0.6 FWHM of the guess, refined by a log-parabola through the top.

    The parabola is fitted (weights sqrt(counts)) to the bins within +-5 of the
    highest point of a 3-bin running mean that are above half of it, and kept
    when it opens downwards with its vertex within 2 bins. None when the
    maximum is not above the local background.
    """
    x, ys, h, w0 = win.x, win.ys, win.h, win.w0
    k_lo = int(np.searchsorted(x, win.center - _TOP_SEARCH_FWHM * w0))
    k_hi = int(np.searchsorted(x, win.center + _TOP_SEARCH_FWHM * w0))
    k_hi = max(k_hi, k_lo + 1)
    sm3 = _running_mean(ys, _TOP_SMOOTH_BINS)
    k_max = k_lo + int(np.argmax(sm3[k_lo:k_hi]))
    top = sm3[k_max]
    if top <= 0:
        return None
    sel = np.arange(max(k_max - _TOP_FIT_BINS, 0), min(k_max + _TOP_FIT_BINS + 1, len(ys)))
    sel = sel[ys[sel] > _TOP_FIT_LEVEL * top]
    h_bin, c = top, float(x[k_max])
    if len(sel) >= _TOP_FIT_MIN_BINS:
        try:
            p = np.polyfit(x[sel] - x[k_max], np.log(ys[sel]), 2, w=np.sqrt(ys[sel]))
            if p[0] < 0:
                xv = -p[1] / (2 * p[0])
                if abs(xv) < _TOP_MAX_SHIFT_BINS * h:
                    c = float(x[k_max] + xv)
                    h_bin = float(math.exp(p[2] - p[1] ** 2 / (4 * p[0])))
        except (np.linalg.LinAlgError, ValueError):
            pass
    return _Top(k_max, c, h_bin, h_bin / h)


def _level_widths(win: _Window, top: _Top, reasons: dict
                  ) -> tuple[dict[str, float | None], dict[str, tuple[float, float]]]:
    """Full widths (Da) at each of :data:`LEVELS`, and their crossings; why not in ``reasons``.

    A level is crossed where a running mean holding about ``_LEVEL_COUNTS``
    counts at that level first falls below it, walking out from the maximum;
    a side stops at a neighbour's reach. A width is None when the
    peak-to-background ratio is below ``1 / level``, when the running mean
    would be wider than ``_MAX_SMOOTH`` bins, when a side runs into a
    neighbour or the window edge, or when the crossings do not enclose the
    maximum.

    Returns
    -------
    widths : dict, level key -> float (Da) or None
    crossings : dict, level key -> (left, right) in Da, for the widths measured
    """
    x, ys, h, local = win.x, win.ys, win.h, win.local
    k_max, h_bin, height = top.k_max, top.h_bin, top.height
    stop_lo = max(0, int(np.searchsorted(x, win.lim_lo)) - 1) if np.isfinite(win.lim_lo) else -1
    stop_hi = (min(len(x), int(np.searchsorted(x, win.lim_hi))) if np.isfinite(win.lim_hi)
               else len(x))
    widths: dict[str, float | None] = {}
    crossings: dict[str, tuple[float, float]] = {}
    ratio = height / local if local > 0 else np.inf
    for key, f in LEVELS.items():
        level = f * h_bin
        if ratio < 1.0 / f:
            reasons[key] = (f"peak-to-background {ratio:.3g} is below {1 / f:.0f}: the "
                            f"{100 * f:g} % level is under the background")
            widths[key] = None
            continue
        n_s = int(math.ceil(_LEVEL_COUNTS / max(level, _MIN_LEVEL_PER_BIN)))
        n_s += 1 - n_s % 2
        if n_s > _MAX_SMOOTH:
            reasons[key] = (f"too few counts at {100 * f:g} % of the maximum "
                            f"({level:.2g} per bin of {h:.2g} Da)")
            widths[key] = None
            continue
        ysm = _running_mean(ys, n_s) if n_s > 1 else ys
        kl = _crossing(ysm, k_max, level, -1, stop_lo)
        kr = _crossing(ysm, k_max, level, +1, stop_hi)
        if kl is None or kr is None:
            side = "low" if kl is None else "high"
            reasons[key] = (f"the {side}-mass side runs into a neighbouring peak (or the "
                            f"window edge) before falling to {100 * f:g} % of the maximum")
            widths[key] = None
            continue
        xl = float(np.interp(kl, np.arange(len(x)), x))
        xr = float(np.interp(kr, np.arange(len(x)), x))
        if not xr - xl > 0:
            reasons[key] = f"no clear maximum: the {100 * f:g} % crossings do not enclose it"
            widths[key] = None
            continue
        widths[key] = xr - xl
        crossings[key] = (xl, xr)
    return widths, crossings


def _measure_core(sm: np.ndarray, center: float, fwhm_guess: float, background: Background,
                  neighbours) -> _Core:
    """The window, maximum and widths of the peak near ``center`` (FWHM about ``fwhm_guess``)."""
    win = _shape_window(sm, center, fwhm_guess, background, neighbours)
    reasons: dict = {}
    top = _fit_top(win)
    if top is None:
        return _Core(win, None, {}, {}, reasons)
    widths, crossings = _level_widths(win, top, reasons)
    return _Core(win, top, widths, crossings, reasons)


def _measure_core_retried(sm: np.ndarray, center: float, fwhm_guess: float,
                          background: Background, neighbours) -> _Core:
    """:func:`_measure_core`, measured again when the guess was too wide for its bins.

    When the FWHM found spans fewer than ``_MIN_BINS_PER_FWHM`` bins, the core is
    measured once more at the maximum found, with that FWHM as the guess (bins
    of a tenth of it); the second measurement is kept whatever it finds.
    """
    core = _measure_core(sm, center, fwhm_guess, background, neighbours)
    fwhm = core.widths.get("fwhm")
    if core.top is not None and fwhm is not None and core.win.h > fwhm / _MIN_BINS_PER_FWHM:
        return _measure_core(sm, core.top.c, fwhm, background, neighbours)
    return core


def _tail_decay_guess(tx: np.ndarray, ty: np.ndarray, keep: np.ndarray, t_start: float,
                      b_bin: float) -> float:
    """A first decay length (Da): the log-slope of the counts above ``b_bin`` per bin."""
    pos = (ty - b_bin) > 0
    tau0 = _TAU_START_DA
    good = keep & pos
    if good.sum() >= _SLOPE_MIN_BINS:
        slope = np.polyfit(tx[good] - t_start, np.log(ty[good] - b_bin), 1,
                           w=np.sqrt(ty[good]))[0]
        if slope < 0:
            tau0 = min(-1.0 / slope, _TAU_START_MAX_DA)
    return tau0


def _fit_tail(sm: np.ndarray, win: _Window, c: float, w_core: float, sigma: float | None,
              crossings: dict, scale: TimeScale | None, reasons: dict
              ) -> tuple[float | None, float | None, _TailModel | None]:
    """The exponential tail above the peak at ``c`` (Da); why not in ``reasons``.

    Fitted (:func:`_fit_exp_tail`) beyond the 10 % crossing (else 2 FWHM) and
    3 sigma of the core (``w_core``, ``sigma`` in Da), up to max(0.6 Da, 20
    FWHM) or the next peak's reach, with the neighbours' cores cut out.

    Returns
    -------
    tail_da : float or None
        Decay length in Da.
    tail_ns : float or None
        The same in ns of time of flight (None without a time scale).
    tail_model : (start Da, density at start per Da, decay length Da, floor per Da) or None
    """
    t_start = c + max((crossings["fw10"][1] - c) if "fw10" in crossings
                      else _TAIL_START_FWHM * w_core,
                      _TAIL_START_SIGMAS * (sigma or w_core / _FWHM_PER_SIGMA))
    t_end = min(win.lim_hi, c + max(_TAIL_END_MIN_DA, _TAIL_END_FWHM * w_core))
    if t_end - t_start < _TAIL_MIN_SPAN_FWHM * w_core:
        reasons["tail_ns"] = "no room for a tail before the next peak"
        return None, None, None
    masks = [(m - _CUT_BELOW_FWHM * w, m + _CUT_ABOVE_FWHM * w) for m, w in win.nb
             if t_start - _TAIL_CUT_REACH_FWHM * w < m < t_end + _TAIL_CUT_REACH_FWHM * w]
    ht = max(win.h, (t_end - t_start) / _TAIL_MAX_BINS)
    te, ty = _hist(sm, t_start, t_end, ht)
    tx = 0.5 * (te[:-1] + te[1:])
    keep = np.ones(len(tx), bool)
    for a_, b_ in masks:
        keep &= ~((tx >= a_) & (tx < b_))
    excess = float(np.sum(ty[keep] - win.local * ht))
    if keep.sum() < _TAIL_MIN_BINS or excess < _TAIL_MIN_COUNTS:
        reasons["tail_ns"] = (f"no measurable tail ({excess:.0f} counts above the "
                              "background beyond the core)")
        return None, None, None
    tau0 = _tail_decay_guess(tx, ty, keep, t_start, win.local * ht)
    fit = _fit_exp_tail(tx[keep], ty[keep], win.glob * ht, win.local * ht, max(tau0, ht))
    if fit is None or fit[1] > _TAU_MAX_SPANS * (t_end - t_start):
        reasons["tail_ns"] = "the tail fit did not converge (no exponential decay)"
        return None, None, None
    amp_bin, tail_da, floor = fit
    tail_model = (t_start, amp_bin / ht, tail_da, floor / ht)  # per Da
    dtdm = scale.dt_dm(c) if scale is not None else None
    if dtdm is None:
        reasons["tail_ns"] = (scale.reason if scale is not None and scale.reason
                              else "no time-of-flight scale")
        return tail_da, None, tail_model
    return tail_da, float(tail_da * dtdm), tail_model


def _tail_fraction(sm: np.ndarray, win: _Window, c: float, n_peak: float, crossings: dict,
                   tail_model: _TailModel | None, reasons: dict) -> float | None:
    """Background-subtracted counts in ``[c + 0.1, c + 0.5)`` Da over the peak's ``n_peak``.

    Other peaks' cores in that span are cut out and replaced by the fitted
    tail (``tail_model``, see :func:`_fit_tail`). None, with a reason, when the
    core reaches beyond 0.1 Da, when there are no peak counts, when a
    neighbour is cut out with no tail model, or when the result is negative.
    """
    right10 = (crossings["fw10"][1] - c) if "fw10" in crossings else None
    if right10 is None:
        reasons["tail_fraction"] = "the 10 % width is not measured"
        return None
    if right10 > _FRACTION_LO_DA:
        reasons["tail_fraction"] = (f"the peak core reaches {right10:.3f} Da above the "
                                    f"maximum, beyond {_FRACTION_LO_DA:g} Da")
        return None
    if n_peak <= 0:
        reasons["tail_fraction"] = "no peak counts above the background"
        return None
    a_, b_ = c + _FRACTION_LO_DA, c + _FRACTION_HI_DA
    fe, fy = _hist(sm, a_, b_, min(win.h, _FRACTION_BIN_DA))
    fx = 0.5 * (fe[:-1] + fe[1:])
    hb = fe[1] - fe[0]
    cut = np.zeros(len(fx), bool)
    for m, w in win.nb:
        if a_ - _FRACTION_CUT_REACH_FWHM * w < m < b_ + _FRACTION_CUT_REACH_FWHM * w:
            cut |= (fx >= m - _CUT_BELOW_FWHM * w) & (fx < m + _CUT_ABOVE_FWHM * w)
    # the floor under the tail: the tail fit's (a peak on the tail of a larger one
    # has a lower floor there than on its left), else the local background
    floor = win.local if tail_model is None else max(tail_model[3], win.glob)
    tail_counts = float(np.sum(fy[~cut] - floor * hb))
    if cut.any():
        if tail_model is None:
            reasons["tail_fraction"] = (f"another peak lies {_FRACTION_LO_DA:g}-"
                                        f"{_FRACTION_HI_DA:g} Da above and the "
                                        "tail under it could not be modelled")
            return None
        t0, dens0, tau, _ = tail_model
        tail_counts = tail_counts + float(np.sum(dens0 * np.exp(-(fx[cut] - t0) / tau) * hb))
    tail_fraction = tail_counts / n_peak
    if tail_fraction < 0:
        reasons["tail_fraction"] = (f"the background-subtracted tail is negative "
                                    f"({tail_fraction:.3g}): the floor under it is "
                                    "not flat (a larger peak's tail)")
        return None
    return tail_fraction


def _background_meeting(win: _Window, c: float, height: float, sigma: float | None,
                        crossings: dict, tail_model: _TailModel | None
                        ) -> tuple[float, float] | None:
    """Where the peak at ``c`` (Da) meets the background: (left, right) in Da, or None.

    The Gaussian side at sigma sqrt(2 ln(H / b)), the tail side where the
    fitted tail falls to the background, else the 1 % crossing (full-width
    ranging, mass-spectrum.md section 5); None when a side cannot be modelled.
    """
    floor_d = max(win.local, win.glob, _MIN_DENSITY)
    if not (sigma is not None and height > floor_d):
        return None
    left_meet = c - sigma * math.sqrt(2.0 * math.log(height / floor_d))
    right_meet = None
    if tail_model is not None:
        t0, dens0, tau, fl = tail_model
        fl = max(fl, win.glob, _MIN_DENSITY)
        if dens0 > fl:
            right_meet = t0 + tau * math.log(dens0 / fl)
    if right_meet is None and "fw1" in crossings:
        right_meet = crossings["fw1"][1]
    if right_meet is None:
        return None
    return (float(left_meet), float(right_meet))


def _tail_weight(tail_model: _TailModel | None, c: float, n_peak: float,
                 p_hi: float) -> float | None:
    """The fraction of the counts of the peak at ``c`` (Da) in its exponential tail.

    The peak's counts are ``n_peak`` (below ``p_hi``, Da) plus the fitted tail
    beyond; None without a tail model or peak counts.
    """
    tail_weight = None
    if tail_model is not None and n_peak > 0:
        t0, dens0, tau, _ = tail_model
        w_n = dens0 * tau * math.exp(min((t0 - c) / tau, _MAX_EXP_ARG))   # w N
        n_tot = n_peak + w_n * math.exp(-(p_hi - c) / tau)
        tail_weight = float(min(max(w_n / n_tot, 0.0), 1.0))
    return tail_weight


def measure_peak(sm: np.ndarray, center: float, fwhm_guess: float, background: Background,
                 neighbours=(), scale: TimeScale | None = None,
                 significance: float = 0.0) -> Peak:
    """Measure the shape of the peak near ``center`` (Da) from sorted masses ``sm``.

    Parameters
    ----------
    sm : ndarray
        Sorted masses in Da (:func:`sorted_masses`).
    center, fwhm_guess : float
        Where the peak is and about how wide, in Da (from :func:`detect_peaks`).
    background : Background
        The run's background (the floor of the local background).
    neighbours : sequence of (mass, fwhm)
        Other peaks, in Da, whose cores are cut out of this one's tail (a
        neighbour closer than half ``fwhm_guess`` is taken for this peak).
    scale : TimeScale, optional
        For ``tail_ns``.
    significance : float
        z of the peak's detection, stored on the result.

    Returns
    -------
    Peak
        Every quantity that cannot be measured is None, with the reason in
        ``reasons``; ``height`` is None (and ``counts`` 0) when nothing is
        above the local background. ``counts`` are the ions in ``[m - 2 FWHM,
        m + max(0.1 Da, 2 FWHM))`` less the local background there (negative
        when that background is overestimated, e.g. under a larger peak's tail).

    Notes
    -----
    In steps (see the module docstring): a histogram on bins of a tenth of the
    FWHM guess, above the local background; the maximum (a log-parabola
    through the top); the widths, measured again on bins of a tenth of the
    FWHM found when that spans fewer than 5 bins; the counts; the exponential
    tail and the tail fraction; where the peak meets the background
    (``edges["background"]``); the tail's share of the counts
    (``tail_weight``).
    """
    win, top, widths, crossings, reasons = _measure_core_retried(sm, center, fwhm_guess,
                                                                 background, neighbours)
    if top is None:
        return Peak(mass=win.center, height=None, background=win.local, counts=0.0,
                    significance=significance, fwhm=None, fw10=None, fw1=None, tail_da=None,
                    tail_ns=None, tail_fraction=None,
                    reasons={"height": "no counts above the background"})
    c, height, local = top.c, top.height, win.local
    fwhm = widths.get("fwhm")
    # the clean (low-mass) side gives the core's sigma
    sigma = None
    if "fwhm" in crossings:
        sigma = (c - crossings["fwhm"][0]) / _HWHM_PER_SIGMA
    w_core = fwhm if fwhm is not None else win.w0
    # peak counts: [c - 2 FWHM, c + max(0.1, 2 FWHM))
    p_lo, p_hi = c - _COUNT_FWHM * w_core, c + max(_COUNT_ABOVE_MIN_DA, _COUNT_FWHM * w_core)
    n_peak = float(sorted_search(sm, p_hi) - sorted_search(sm, p_lo)) - local * (p_hi - p_lo)
    tail_da, tail_ns, tail_model = _fit_tail(sm, win, c, w_core, sigma, crossings, scale,
                                             reasons)
    if tail_da is None:
        reasons.setdefault("tail_da", reasons.get("tail_ns"))
    tail_fraction = _tail_fraction(sm, win, c, n_peak, crossings, tail_model, reasons)
    meeting = _background_meeting(win, c, height, sigma, crossings, tail_model)
    if meeting is not None:
        crossings["background"] = meeting
    return Peak(mass=c, height=float(height), background=float(local), counts=n_peak,
                significance=float(significance), fwhm=fwhm,
                fw10=widths.get("fw10"), fw1=widths.get("fw1"), tail_da=tail_da,
                tail_ns=tail_ns, tail_fraction=tail_fraction, sigma_left=sigma,
                tail_weight=_tail_weight(tail_model, c, n_peak, p_hi), edges=crossings,
                reasons=reasons)


# --------------------------------------------------------------------------
# all together
# --------------------------------------------------------------------------

@dataclass(frozen=True)
class PeakAnalysis:
    """Every significant peak of a spectrum with its shape, and the background."""

    peaks: tuple
    background: Background
    mass_range: tuple
    n_ions: int
    min_significance: float

    def to_dict(self) -> dict:
        return {"peaks": [p.to_dict() for p in self.peaks],
                "background": self.background.to_dict(),
                "mass_range": list(self.mass_range), "ions": self.n_ions,
                "min_significance": self.min_significance,
                "units": {"mass": "Da", "widths": "Da", "height": "counts per Da",
                          "background": "counts per Da (local, under the peak)",
                          "tail_ns": "ns of time of flight", "tail_da": "Da"}}

    def nearest(self, mass_da: float):
        """The peak closest to ``mass_da`` (or None)."""
        if not self.peaks:
            return None
        return min(self.peaks, key=lambda p: abs(p.mass - mass_da))


def analyse_peaks(mass, tof=None, mass_range=(0.5, 200.0), min_significance: float = 5.0,
                  ns_per_sqrt_da: float | None = None, max_peaks: int | None = None,
                  sorted_mass: np.ndarray | None = None) -> PeakAnalysis:
    """Find every significant peak, measure its shape, and fit the background.

    Parameters
    ----------
    mass : ndarray of float, shape (n,), Run, or iterable of chunks
        Mass-to-charge in Da, in evaporation order (:func:`liprobe.run.column_chunks`).
    tof : ndarray, shape (n,), optional
        Time of flight in ns of the same ions, in the same order (for ``tail_ns``
        and ``ppm_per_ns``): an array, or a Run's column as it lies in the file
        (``run.source("tof")``, only sampled).
    mass_range : (float, float)
        Da.
    min_significance : float
        z of the Poisson test against the local background.
    ns_per_sqrt_da : float, optional
        The time-of-flight scale, when the run has no tof column.
    max_peaks : int, optional
        Measure only the most significant this many.
    sorted_mass : ndarray, optional
        ``sorted_masses(mass)`` if already computed.

    Returns
    -------
    PeakAnalysis

    Raises
    ------
    AnalysisError
        No ion with a positive, finite mass.

    Notes
    -----
    Widths at half, a tenth and a hundredth of the maximum (MRP = m / width)
    as in Larson et al. [1]_; the background is uniform in time of flight, as
    in Haley et al. [2]_ (see the module docstring).

    References
    ----------
    .. [1] D.J. Larson, T.J. Prosa, R.M. Ulfig, B.P. Geiser, T.F. Kelly, *Local
       Electrode Atom Probe Tomography: A User's Guide*, Springer (2013).
    .. [2] D. Haley, A.J. London, M.P. Moody, "Processing APT spectral backgrounds
       for improved quantification", Microsc. Microanal. (2020).

    Examples
    --------
    Gaussian peaks (sigma 0.007, 0.007 and 0.016 Da: FWHM = 2.355 sigma = 0.016,
    0.016 and 0.038 Da) of 820 6Li+, 10,000 7Li+ and 4000 O+ ions on 1000
    background ions:

    >>> import numpy as np
    >>> from liprobe.spectrum import analyse_peaks
    >>> rng = np.random.default_rng(0)
    >>> mass = np.concatenate([rng.normal(6.015, 0.007, 820), rng.normal(7.016, 0.007, 10000),
    ...                        rng.normal(15.995, 0.016, 4000), rng.uniform(1, 40, 1000)])
    >>> pa = analyse_peaks(mass, mass_range=(1, 40))
    >>> for p in pa.peaks:        # the small 6Li+ peak is measured on fewer counts
    ...     print(f"{p.mass:6.3f} Da {p.counts:6.0f} ions  FWHM {p.fwhm:.3f} Da  "
    ...           f"MRP {p.mrp('fwhm'):.0f}")
     6.014 Da    816 ions  FWHM 0.013 Da  MRP 455
     7.016 Da   9999 ions  FWHM 0.017 Da  MRP 420
    15.995 Da   4000 ions  FWHM 0.038 Da  MRP 416
    """
    from ..run import MaskedSource, Run

    # the masses in evaporation order (the time scale pairs each ion's mass with its own
    # time of flight), read from the file only where sampled
    ordered: Any
    if isinstance(mass, Run):
        ordered = mass.source("mass")
    elif isinstance(mass, (np.ndarray, MaskedSource)):
        ordered = mass
    elif tof is not None:
        ordered = mass = np.concatenate([np.asarray(c).ravel() for c in column_chunks(mass)]
                                        or [np.zeros(0, np.float32)])
    else:
        ordered = None
    if tof is not None and len(tof) != len(ordered):
        raise AnalysisError(f"tof has {len(tof)} ions, mass has {len(ordered)}")
    sm = sorted_mass if sorted_mass is not None else sorted_masses(mass)
    if len(sm) == 0:
        raise AnalysisError("no ions with a positive, finite mass")
    n_ions = len(ordered) if ordered is not None else len(sm)
    scale = time_scale(ordered if ordered is not None else sm, tof, ns_per_sqrt_da)
    dets = detect_peaks(sm, mass_range, min_significance)
    if max_peaks is not None and len(dets) > max_peaks:
        dets = sorted(sorted(dets, key=lambda d: -d.significance)[:max_peaks],
                      key=lambda d: d.mass)
    bg = fit_background(sm, background_windows([(d.mass, d.fwhm) for d in dets], mass_range),
                        n_ions, scale)
    nbs = [(d.mass, d.fwhm) for d in dets]
    peaks = tuple(measure_peak(sm, d.mass, d.fwhm, bg, nbs, scale, d.significance)
                  for d in dets)
    return PeakAnalysis(peaks, bg, tuple(float(v) for v in mass_range), int(n_ions),
                        float(min_significance))
