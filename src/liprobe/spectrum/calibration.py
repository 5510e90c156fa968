"""Mass calibration check: a linear fit in sqrt(m) on known peaks, and peak drift over a run.

Flight time is proportional to sqrt(m/n) (``shared/reference/mass-spectrum.md``
section 1), so a residual time offset and flight-length error show up as
``sqrt(m_true) = a + b sqrt(m_observed)``. The check fits that line on named
known peaks and reports each peak's offset before and after; it is *not*
applied by default (file masses are already calibrated by the acquisition
software): :func:`apply_calibration` does it when asked.

Drift: the run is cut into blocks of consecutive ions; in each block the
position of every named peak is measured (count-weighted centroid of the
counts within +-1 FWHM of the peak, background subtracted); the drift is the
least-squares slope of position against ion index.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import AnalysisError
from ._shared import sorted_masses, sorted_search

__all__ = ["CalibrationFit", "calibration_from_pairs", "calibration_check", "PeakDrift",
           "peak_drift", "apply_calibration", "peak_position"]


@dataclass(frozen=True)
class CalibrationFit:
    """``sqrt(m_true) = a + b sqrt(m_obs)`` fitted on named peaks."""

    a: float | None
    b: float | None
    peaks: tuple          # (name, true_Da, observed_Da)
    reason: str | None = None

    def corrected(self, m_obs):
        """Masses after the calibration (Da)."""
        if self.a is None:
            return np.asarray(m_obs, float)
        s = self.a + self.b * np.sqrt(np.maximum(np.asarray(m_obs, float), 0.0))
        return s * s

    def to_dict(self) -> dict:
        rows = []
        for name, t, o in self.peaks:
            after = None if self.a is None else float(self.corrected(o)) - t
            rows.append({"ion": name, "true_mass": round(t, 5), "observed_mass": round(o, 5),
                         "offset_da": round(o - t, 5),
                         "offset_ppm": round(1e6 * (o - t) / t, 1),
                         "offset_after_fit_da": None if after is None else round(after, 5)})
        rms = None
        if self.a is not None and self.peaks:
            rms = math.sqrt(np.mean([(float(self.corrected(o)) - t) ** 2
                                     for _, t, o in self.peaks]))
        d = {"model": "sqrt(m_true) = a + b sqrt(m_observed) (not applied)",
             "a_sqrt_da": self.a, "b": self.b, "peaks": rows, "rms_after_fit_da": rms}
        if self.reason:
            d["reason"] = self.reason
        return d


def calibration_from_pairs(pairs) -> CalibrationFit:
    """Fit ``sqrt(true) = a + b sqrt(observed)`` to ``(name, true_Da, observed_Da)`` pairs."""
    pairs = tuple((str(n), float(t), float(o)) for n, t, o in pairs)
    if len(pairs) < 2:
        return CalibrationFit(None, None, pairs, "at least two known peaks are needed")
    x = np.sqrt([o for _, _, o in pairs])
    y = np.sqrt([t for _, t, _ in pairs])
    if np.ptp(x) == 0:
        return CalibrationFit(None, None, pairs, "the known peaks are all at one mass")
    b, a = np.polyfit(x, y, 1)
    return CalibrationFit(float(a), float(b), pairs)


def _main_peak(ion):
    from ..chemistry import parse_ion

    if isinstance(ion, str):
        ion = parse_ion(ion)
    pk = ion.peaks()
    if not pk:
        raise AnalysisError(f"{ion.name} has no isotope peaks")
    return ion, max(pk, key=lambda p: p[1])[0]


def peak_position(sm: np.ndarray, expected_da: float, search_da: float,
                  fwhm_da: float | None = None) -> tuple[float | None, int]:
    """Centroid (Da) of the largest peak within ``search_da`` of ``expected_da`` in sorted masses.

    The maximum of a histogram with bins of a tenth of the FWHM (default
    0.2 % of the mass), refined as the background-subtracted, count-weighted
    centroid within +-1 FWHM of it. Returns ``(None, 0)`` without counts.
    """
    w = fwhm_da or 2e-3 * expected_da
    h = w / 10.0
    lo, hi = expected_da - search_da, expected_da + search_da
    n = max(3, int(math.ceil((hi - lo) / h)))
    edges = lo + h * np.arange(n + 1)
    cnt = np.diff(sorted_search(sm, edges)).astype(float)
    if cnt.sum() < 10:
        return None, int(cnt.sum())
    sm3 = np.convolve(cnt, np.ones(5) / 5, mode="same")
    k = int(np.argmax(sm3))
    x0 = edges[k] + h / 2
    a, b = sorted_search(sm, [x0 - w, x0 + w])
    seg = np.asarray(sm[a:b], float)
    if len(seg) < 5:
        return float(x0), len(seg)
    floor = np.median(cnt) / h
    # subtract a flat floor by trimming: centroid of the excess over the floor density
    hist, e = np.histogram(seg, bins=20, range=(x0 - w, x0 + w))
    ex = np.maximum(hist - floor * (e[1] - e[0]), 0)
    if ex.sum() <= 0:
        return float(x0), len(seg)
    c = 0.5 * (e[:-1] + e[1:])
    return float(np.sum(c * ex) / ex.sum()), int(ex.sum())


def calibration_check(mass, ions, search_da: float | None = None,
                      sorted_mass: np.ndarray | None = None) -> CalibrationFit:
    """Fit the sqrt(m) calibration on the main isotope peaks of named ions.

    Parameters
    ----------
    mass : ndarray, or iterable of chunks
        Mass-to-charge in Da.
    ions : iterable of str or Ion
        Known ions (e.g. ``["H+", "O+", "O2+", "Ni++"]``).
    search_da : float, optional
        How far from the expected mass to look (default 0.5 % of the mass,
        at least 0.05 Da).
    """

    sm = sorted_mass if sorted_mass is not None else sorted_masses(mass)
    pairs = []
    missing = []
    for ion in ions:
        ion, m = _main_peak(ion)
        pos, _n = peak_position(sm, m, search_da or max(0.005 * m, 0.05))
        if pos is None:
            missing.append(ion.name)
            continue
        pairs.append((ion.name, m, pos))
    fit = calibration_from_pairs(pairs)
    if missing:
        why = f"no counts near {', '.join(missing)}"
        return CalibrationFit(fit.a, fit.b, fit.peaks, why if fit.reason is None
                              else f"{fit.reason}; {why}")
    return fit


def apply_calibration(mass, fit: CalibrationFit) -> np.ndarray:
    """Masses corrected by ``fit`` (float64, a new array)."""
    return fit.corrected(mass)


@dataclass(frozen=True)
class PeakDrift:
    """Positions of named peaks in blocks of consecutive ions."""

    block_start: np.ndarray         # first ion index of each block
    block_stop: np.ndarray
    positions: dict                 # ion name -> array of Da (NaN where too few counts)
    expected: dict                  # ion name -> Da
    slope_da_per_mion: dict         # ion name -> Da per million ions (None if < 2 blocks)

    def to_dict(self) -> dict:
        out: dict[str, Any] = {
            "blocks": [[int(a), int(b)] for a, b in zip(self.block_start, self.block_stop)],
            "peaks": {}}
        for name, pos in self.positions.items():
            vals = [None if not np.isfinite(v) else round(float(v), 5) for v in pos]
            fin = [v for v in vals if v is not None]
            out["peaks"][name] = {
                "expected_mass": round(self.expected[name], 5),
                "positions": vals,
                "range_da": None if len(fin) < 2 else round(max(fin) - min(fin), 5),
                "slope_da_per_million_ions": self.slope_da_per_mion[name],
            }
        return out


def peak_drift(mass, ions, blocks: int = 10, search_da: float | None = None) -> PeakDrift:
    """Where named peaks sit in each of ``blocks`` consecutive parts of the run.

    Parameters
    ----------
    mass : ndarray of float, shape (n,)
        Mass-to-charge in Da, in evaporation order.
    ions : iterable of str or Ion
    blocks : int
    """
    m = np.asarray(mass)
    if m.ndim != 1 or len(m) == 0:
        raise AnalysisError("peak drift needs a non-empty mass column")
    blocks = max(1, min(int(blocks), len(m)))
    cuts = np.linspace(0, len(m), blocks + 1).astype(np.int64)
    named = [_main_peak(i) for i in ions]
    positions = {ion.name: np.full(blocks, np.nan) for ion, _ in named}
    expected = {ion.name: mm for ion, mm in named}
    for b in range(blocks):
        sm = np.sort(np.asarray(m[cuts[b]:cuts[b + 1]], np.float32))
        for ion, mm in named:
            pos, n = peak_position(sm, mm, search_da or max(0.005 * mm, 0.05))
            if pos is not None and n >= 20:
                positions[ion.name][b] = pos
    slopes = {}
    mid = 0.5 * (cuts[:-1] + cuts[1:]) / 1e6
    for name, track in positions.items():
        ok = np.isfinite(track)
        slopes[name] = (round(float(np.polyfit(mid[ok], track[ok], 1)[0]), 6)
                        if ok.sum() >= 2 else None)
    return PeakDrift(cuts[:-1], cuts[1:], positions, expected, slopes)
