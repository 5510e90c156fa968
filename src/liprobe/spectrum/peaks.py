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
from typing import Any

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


def measure_peak(sm: np.ndarray, center: float, fwhm_guess: float, background: Background,
                 neighbours=(), scale: TimeScale | None = None, significance: float = 0.0,
                 _retry: bool = True) -> Peak:
    """Measure the shape of the peak near ``center`` (Da) from sorted masses ``sm``.

    Parameters
    ----------
    sm : ndarray
        Sorted masses in Da (:func:`sorted_masses`).
    center, fwhm_guess : float
        Where the peak is and about how wide, in Da (from :func:`detect_peaks`).
    background : Background
        The run's background (the floor of the local background).
    neighbours : iterable of (mass, fwhm)
        Other peaks, whose cores are cut out of this one's tail.
    scale : TimeScale, optional
        For ``tail_ns``.
    """
    reasons: dict = {}
    w0 = max(float(fwhm_guess), 1e-4)
    h = w0 / 10.0
    nb = sorted((float(m), float(w)) for m, w in neighbours if abs(m - center) > 0.5 * w0)
    left_nb = [m + 3.0 * w for m, w in nb if m < center]
    right_nb = [m - 2.0 * w for m, w in nb if m > center]
    lim_lo = max(left_nb) if left_nb else -np.inf
    lim_hi = min(right_nb) if right_nb else np.inf
    lo = center - 8.0 * w0
    hi = center + max(0.7, 15.0 * w0)
    edges, y = _hist(sm, lo, hi, h)
    x = 0.5 * (edges[:-1] + edges[1:])
    # local background (counts per Da): a clean window left of the peak, floored by the model
    glob = float(background.per_da(center))
    # (the lowest of three sub-windows of [m - 3 w - L, m - 3 w): the tail of a peak
    # further left decays towards this one, so the nearest, lowest part is its level here)
    bl_hi = center - 3.0 * w0
    bl_lo = max(center - 3.0 * w0 - max(6.0 * w0, 0.06), lim_lo)
    local = glob
    if bl_hi - bl_lo >= 2.0 * w0:
        cuts = np.linspace(bl_lo, bl_hi, 4)
        n_bl = np.diff(sorted_search(sm, cuts))
        local = max(glob, float(np.min(n_bl)) / (cuts[1] - cuts[0]))
    b_bin = local * h
    ys = y - b_bin
    # the maximum and the centre: log-parabola through the top
    k_lo = int(np.searchsorted(x, center - 0.6 * w0))
    k_hi = int(np.searchsorted(x, center + 0.6 * w0))
    k_hi = max(k_hi, k_lo + 1)
    sm3 = _running_mean(ys, 3)
    k_max = k_lo + int(np.argmax(sm3[k_lo:k_hi]))
    top = sm3[k_max]
    if top <= 0:
        return Peak(center, None, local, 0.0, significance, None, None, None, None, None, None,
                    reasons={"height": "no counts above the background"})
    sel = np.arange(max(k_max - 5, 0), min(k_max + 6, len(ys)))
    sel = sel[ys[sel] > 0.5 * top]
    H_bin, c = top, float(x[k_max])
    if len(sel) >= 3:
        try:
            p = np.polyfit(x[sel] - x[k_max], np.log(ys[sel]), 2, w=np.sqrt(ys[sel]))
            if p[0] < 0:
                xv = -p[1] / (2 * p[0])
                if abs(xv) < 2 * h:
                    c = float(x[k_max] + xv)
                    H_bin = float(math.exp(p[2] - p[1] ** 2 / (4 * p[0])))
        except (np.linalg.LinAlgError, ValueError):
            pass
    height = H_bin / h
    stop_lo = max(0, int(np.searchsorted(x, lim_lo)) - 1) if np.isfinite(lim_lo) else -1
    stop_hi = min(len(x), int(np.searchsorted(x, lim_hi))) if np.isfinite(lim_hi) else len(x)
    widths: dict[str, float | None] = {}
    crossings: dict[str, tuple[float, float]] = {}
    ratio = height / local if local > 0 else np.inf
    for key, f in LEVELS.items():
        level = f * H_bin
        if ratio < 1.0 / f:
            reasons[key] = (f"peak-to-background {ratio:.3g} is below {1 / f:.0f}: the "
                            f"{100 * f:g} % level is under the background")
            widths[key] = None
            continue
        n_s = int(math.ceil(_LEVEL_COUNTS / max(level, 1e-9)))
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
    fwhm = widths.get("fwhm")
    if fwhm is not None and _retry and h > fwhm / 5.0:
        return measure_peak(sm, c, fwhm, background, neighbours, scale, significance, False)
    # the clean (low-mass) side gives the core's sigma
    sigma = None
    if "fwhm" in crossings:
        sigma = (c - crossings["fwhm"][0]) / math.sqrt(2 * math.log(2))
    w_core = fwhm if fwhm is not None else w0
    # peak counts: [c - 2 FWHM, c + max(0.1, 2 FWHM))
    p_lo, p_hi = c - 2.0 * w_core, c + max(0.1, 2.0 * w_core)
    n_peak = float(sorted_search(sm, p_hi) - sorted_search(sm, p_lo)) - local * (p_hi - p_lo)
    # tail: exponential beyond the 10 % crossing and 3 sigma
    tail_da = tail_ns = None
    t_start = c + max((crossings["fw10"][1] - c) if "fw10" in crossings else 2.0 * w_core,
                      3.0 * (sigma or w_core / 2.355))
    t_end = min(lim_hi, c + max(0.6, 20.0 * w_core))
    masks = [(m - 1.5 * w, m + 2.0 * w) for m, w in nb if t_start - 2 * w < m < t_end + 2 * w]
    tail_model = None
    if t_end - t_start < 3.0 * w_core:
        reasons["tail_ns"] = "no room for a tail before the next peak"
    else:
        ht = max(h, (t_end - t_start) / 60.0)
        te, ty = _hist(sm, t_start, t_end, ht)
        tx = 0.5 * (te[:-1] + te[1:])
        keep = np.ones(len(tx), bool)
        for a_, b_ in masks:
            keep &= ~((tx >= a_) & (tx < b_))
        excess = float(np.sum(ty[keep] - local * ht))
        if keep.sum() < 5 or excess < 30:
            reasons["tail_ns"] = (f"no measurable tail ({excess:.0f} counts above the "
                                  "background beyond the core)")
        else:
            pos = (ty - local * ht) > 0
            tau0 = 0.1
            good = keep & pos
            if good.sum() >= 3:
                slope = np.polyfit(tx[good] - t_start, np.log(ty[good] - local * ht), 1,
                                   w=np.sqrt(ty[good]))[0]
                if slope < 0:
                    tau0 = min(-1.0 / slope, 5.0)
            fit = _fit_exp_tail(tx[keep], ty[keep], glob * ht, local * ht, max(tau0, ht))
            if fit is None or fit[1] > 2.0 * (t_end - t_start):
                reasons["tail_ns"] = "the tail fit did not converge (no exponential decay)"
            else:
                amp_bin, tail_da, floor = fit
                tail_model = (t_start, amp_bin / ht, tail_da, floor / ht)  # per Da
                dtdm = scale.dt_dm(c) if scale is not None else None
                if dtdm is None:
                    reasons["tail_ns"] = (scale.reason if scale is not None and scale.reason
                                          else "no time-of-flight scale")
                else:
                    tail_ns = float(tail_da * dtdm)
    if tail_da is None:
        reasons.setdefault("tail_da", reasons.get("tail_ns"))
    # tail fraction: background-subtracted counts in [c + 0.1, c + 0.5) over the peak's counts
    tail_fraction = None
    right10 = (crossings["fw10"][1] - c) if "fw10" in crossings else None
    if right10 is None:
        reasons["tail_fraction"] = "the 10 % width is not measured"
    elif right10 > 0.1:
        reasons["tail_fraction"] = (f"the peak core reaches {right10:.3f} Da above the "
                                    "maximum, beyond 0.1 Da")
    elif n_peak <= 0:
        reasons["tail_fraction"] = "no peak counts above the background"
    else:
        a_, b_ = c + 0.1, c + 0.5
        fe, fy = _hist(sm, a_, b_, min(h, 0.005))
        fx = 0.5 * (fe[:-1] + fe[1:])
        hb = fe[1] - fe[0]
        cut = np.zeros(len(fx), bool)
        for m, w in nb:
            if a_ - 3 * w < m < b_ + 3 * w:
                cut |= (fx >= m - 1.5 * w) & (fx < m + 2.0 * w)
        # the floor under the tail: the tail fit's (a peak on the tail of a larger one
        # has a lower floor there than on its left), else the local background
        floor = local if tail_model is None else max(tail_model[3], glob)
        uncut = float(np.sum(fy[~cut] - floor * hb))
        tail_counts: float | None = uncut
        if cut.any():
            if tail_model is None:
                reasons["tail_fraction"] = ("another peak lies 0.1-0.5 Da above and the "
                                            "tail under it could not be modelled")
                tail_counts = None
            else:
                t0, dens0, tau, _ = tail_model
                tail_counts = uncut + float(np.sum(dens0 * np.exp(-(fx[cut] - t0) / tau) * hb))
        if tail_counts is not None:
            tail_fraction = tail_counts / n_peak
            if tail_fraction < 0:
                reasons["tail_fraction"] = (f"the background-subtracted tail is negative "
                                            f"({tail_fraction:.3g}): the floor under it is "
                                            "not flat (a larger peak's tail)")
                tail_fraction = None
    # where the peak meets the background: the Gaussian side at sigma sqrt(2 ln(H / b)),
    # the tail side where the fitted tail falls to the background (full-width ranging,
    # mass-spectrum.md section 5); a side that cannot be modelled is left out
    floor_d = max(local, glob, 1e-12)
    if sigma is not None and height > floor_d:
        left_meet = c - sigma * math.sqrt(2.0 * math.log(height / floor_d))
        right_meet = None
        if tail_model is not None:
            t0, dens0, tau, fl = tail_model
            fl = max(fl, glob, 1e-12)
            if dens0 > fl:
                right_meet = t0 + tau * math.log(dens0 / fl)
        if right_meet is None and "fw1" in crossings:
            right_meet = crossings["fw1"][1]
        if right_meet is not None:
            crossings["background"] = (float(left_meet), float(right_meet))
    tail_weight = None
    if tail_model is not None and n_peak > 0:
        t0, dens0, tau, _ = tail_model
        w_n = dens0 * tau * math.exp(min((t0 - c) / tau, 50.0))   # w N
        n_tot = n_peak + w_n * math.exp(-(p_hi - c) / tau)
        tail_weight = float(min(max(w_n / n_tot, 0.0), 1.0))
    return Peak(mass=c, height=float(height), background=float(local), counts=n_peak,
                significance=float(significance), fwhm=widths.get("fwhm"),
                fw10=widths.get("fw10"), fw1=widths.get("fw1"), tail_da=tail_da,
                tail_ns=tail_ns, tail_fraction=tail_fraction, sigma_left=sigma,
                tail_weight=tail_weight, edges=crossings, reasons=reasons)


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
        and ``ppm_per_ns``).
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
    if tof is not None and not isinstance(mass, np.ndarray):
        # the time scale pairs each ion's mass with its own time of flight: the masses in
        # evaporation order, not sorted
        mass = np.concatenate([np.asarray(c).ravel() for c in column_chunks(mass)] or
                              [np.zeros(0, np.float32)])
    if tof is not None and len(tof) != len(mass):
        raise AnalysisError(f"tof has {len(tof)} ions, mass has {len(mass)}")
    sm = sorted_mass if sorted_mass is not None else sorted_masses(mass)
    if len(sm) == 0:
        raise AnalysisError("no ions with a positive, finite mass")
    n_ions = len(mass) if isinstance(mass, np.ndarray) else len(sm)
    scale = time_scale(mass if isinstance(mass, np.ndarray) else sm, tof, ns_per_sqrt_da)
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
