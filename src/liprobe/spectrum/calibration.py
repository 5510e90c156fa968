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
    mass : ndarray of float, shape (n,), or Run
        Mass-to-charge in Da, in evaporation order.
    ions : iterable of str or Ion
    blocks : int
    """
    from ..run import Run

    # a Run's blocks are lazy selections, each sorted a chunk at a time (in scratch when
    # large): the column is never held whole
    m = mass if isinstance(mass, Run) else np.asarray(mass)
    n = m.n_ions if isinstance(m, Run) else len(m)
    if (not isinstance(m, Run) and m.ndim != 1) or n == 0:
        raise AnalysisError("peak drift needs a non-empty mass column")
    blocks = max(1, min(int(blocks), n))
    cuts = np.linspace(0, n, blocks + 1).astype(np.int64)
    named = [_main_peak(i) for i in ions]
    positions = {ion.name: np.full(blocks, np.nan) for ion, _ in named}
    expected = {ion.name: mm for ion, mm in named}
    for b in range(blocks):
        part = slice(int(cuts[b]), int(cuts[b + 1]))
        sm = sorted_masses(m.select(part) if isinstance(m, Run) else m[part])
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


# --------------------------------------------------------------------------
# calibration from the peaks themselves: anchors identified by their isotope pattern
# --------------------------------------------------------------------------

#: An anchor's secondary isotopes are those of at least this fraction of its main isotope.
ANCHOR_MIN_ISOTOPE = 0.03
#: How far (Da, or relative to the mass, the larger) from its ion a main peak may sit.
ANCHOR_SEARCH_DA = 0.15
ANCHOR_SEARCH_REL = 0.006
#: An anchor's main peak needs at least these counts.
ANCHOR_MIN_COUNTS = 200.0
#: A secondary isotope's counts may differ from the pattern's prediction by this share
#: (peak-shape systematics, a small other ion under it) on top of 3 sigma.
ANCHOR_COUNT_TOLERANCE = 0.3
#: The isotopes of one ion must sit at offsets equal within this many FWHM.
ANCHOR_POSITION_FWHM = 1.0
#: Anchors closer than this (Da) are merged into one point of the model.
ANCHOR_MERGE_DA = 1.0


@dataclass(frozen=True)
class OffsetModel:
    """Mass offsets (observed minus true, Da) measured on anchor peaks, between them interpolated.

    The offset is linear in ``sqrt(m)`` between neighbouring anchor points and
    constant beyond the first and last: a flexible model, since real offsets
    can be large at low mass and vanish above about 60 Da (the real Si run:
    +0.05 Da at 6-16 Da, none at 58Ni+), which a two-parameter ``sqrt(m)``
    line cannot follow.

    Attributes
    ----------
    anchors : tuple of dict
        ``ion``, ``mass`` (true main isotope, Da), ``observed`` (Da), ``offset_da``,
        ``counts``, ``isotopes`` (how many of its isotopes were matched).
    points : tuple of (float, float)
        ``(observed mass, offset)`` of the model, merged anchors, by mass.
    reason : str or None
        Why the model is flat zero (no anchor).
    """

    anchors: tuple
    points: tuple
    reason: str | None = None

    def offset(self, m_obs):
        """The offset (Da) at observed masses ``m_obs``."""
        m = np.asarray(m_obs, dtype=float)
        if not self.points:
            return np.zeros_like(m)
        x = np.sqrt([p[0] for p in self.points])
        y = np.array([p[1] for p in self.points])
        return np.interp(np.sqrt(np.maximum(m, 0.0)), x, y)

    def extrapolation_da(self, m):
        """How far the offset is uncertain at ``m`` (Da): zero between the anchors, the
        whole offset of the nearest end beyond them (the offset may go on, or vanish: the
        real Si run has +0.05 Da at 14 Da and none at 1 Da)."""
        m = np.asarray(m, dtype=float)
        if not self.points:
            return np.zeros_like(m)
        lo, hi = self.points[0], self.points[-1]
        return np.where(m < lo[0], abs(lo[1]), np.where(m > hi[0], abs(hi[1]), 0.0))

    def true_mass(self, m_obs):
        """Calibrated masses (Da) of observed ones."""
        m = np.asarray(m_obs, dtype=float)
        return m - self.offset(m)

    def observed_mass(self, m_true):
        """Where a true mass appears in the file (Da), inverting :meth:`true_mass`."""
        m = np.asarray(m_true, dtype=float)
        out = m + self.offset(m)
        for _ in range(3):                       # the offset varies slowly: fixed point
            out = m + self.offset(out)
        return out

    def to_dict(self) -> dict:
        return {"model": "offset (observed - true) linear in sqrt(m) between anchor peaks, "
                         "constant beyond; applied to identify the peaks, windows written in "
                         "the file's masses",
                "anchors": [dict(a) for a in self.anchors],
                "points": [{"observed_mass": round(m, 4), "offset_da": round(o, 5)}
                           for m, o in self.points],
                "reason": self.reason}


def _pattern_anchor(cand, peaks, pm, rel):
    """The best anchor ``(offset, counts, isotopes matched)`` of one candidate, or None."""
    main_m, main_a = cand.main_peak
    secondary = [(m, a) for m, a in cand.peaks
                 if m != main_m and a >= ANCHOR_MIN_ISOTOPE * main_a]
    if not secondary:
        return None
    search = max(ANCHOR_SEARCH_DA, ANCHOR_SEARCH_REL * main_m)
    best = None
    for k in np.flatnonzero(np.abs(pm - main_m) <= search):
        p = peaks[k]
        if p.counts < ANCHOR_MIN_COUNTS:
            continue
        delta = p.mass - main_m
        chi2, ok, seen, used = 0.0, True, 0, [int(k)]
        for m, a in secondary:
            w = rel * m
            j = int(np.argmin(np.abs(pm - (m + delta))))
            pred = p.counts * a / main_a
            if abs(pm[j] - (m + delta)) > ANCHOR_POSITION_FWHM * w:
                # not seen: fine only if it would not be a clear peak
                if pred > 5.0 * math.sqrt(max(pred, 1.0)) + 20.0:
                    ok = False
                    break
                continue
            obs = peaks[j].counts
            sig = math.sqrt(max(obs, 1.0) + pred) + ANCHOR_COUNT_TOLERANCE * pred
            if abs(obs - pred) > 3.0 * sig:
                ok = False
                break
            chi2 += ((obs - pred) / sig) ** 2
            seen += 1
            used.append(j)
        if ok and seen and (best is None or chi2 < best[3]):
            best = (float(delta), float(p.counts), seen + 1, chi2, float(p.mass), tuple(used))
    return best


def _consistent(anchors: list, rel: float) -> list:
    """Drop anchors whose offset disagrees with their neighbours' by more than 2 FWHM.

    An interior anchor is compared with the model interpolated from the others
    (leave one out); the first and the last with their one neighbour, and only
    when that neighbour has more counts (extrapolation is no prediction). The
    worst is dropped first, until all agree: a wrongly named peak (an ion whose
    pattern happens to fit) stands out against its neighbours.
    """
    anchors = list(anchors)
    while len(anchors) >= 2:
        worst, worst_z = None, 2.0
        for i, a in enumerate(anchors):
            if 0 < i < len(anchors) - 1:
                rest = anchors[:i] + anchors[i + 1:]
                x = np.sqrt([r["observed"] for r in rest])
                y = np.array([r["offset_da"] for r in rest])
                pred = float(np.interp(math.sqrt(a["observed"]), x, y))
            else:
                nb = anchors[1] if i == 0 else anchors[-2]
                if nb["counts"] <= a["counts"]:
                    continue
                pred = nb["offset_da"]
            z = abs(a["offset_da"] - pred) / (rel * a["mass"])
            if z > worst_z:
                worst, worst_z = i, z
        if worst is None:
            break
        anchors.pop(worst)
    return anchors


def anchor_offsets(peaks, candidates, rel: float) -> OffsetModel:
    """Find anchor peaks by their isotope pattern and build the offset model.

    An anchor is a candidate ion whose main isotope lies on a peak of at least
    :data:`ANCHOR_MIN_COUNTS` within ``max(0.15 Da, 0.6 % of m)`` of its mass,
    and whose every isotope of at least 3 % of the main one is seen at the
    same offset (within one FWHM) with the counts its pattern predicts
    (within 3 sigma plus 30 %), or would be too small to be a peak; at least
    one of them must be seen. Only ions
    with such a pattern qualify (Li, Si, Cr, Fe, Ni, Cu, Zn, Mg, Mo... not O,
    Al, Mn, Co). When two candidates anchor the same peak at offsets more than
    one FWHM apart, the peak is not used. An anchor whose offset differs by
    more than 2 FWHM from what the other anchors give at its mass is dropped
    (the worst first). Anchors within 1 Da are merged (count-weighted mean).

    Parameters
    ----------
    peaks : sequence of Peak
        From :func:`liprobe.spectrum.peaks.analyse_peaks`.
    candidates : sequence of Candidate
        From :func:`liprobe.chemistry.candidates.candidate_ions`.
    rel : float
        Relative FWHM (``FWHM / m``) of the peaks.
    """
    pm = np.array([p.mass for p in peaks])
    if not len(pm):
        return OffsetModel((), (), "no peak")
    found: dict = {}                 # observed peak mass -> list of anchors
    for cand in candidates:
        hit = _pattern_anchor(cand, peaks, pm, rel)
        if hit is None:
            continue
        delta, counts, n_iso, chi2, where, used = hit
        found.setdefault(round(where, 4), []).append(
            {"ion": cand.ion.name, "mass": round(cand.main_peak[0], 5),
             "observed": round(where, 5), "offset_da": round(delta, 5),
             "counts": round(counts, 1), "isotopes": n_iso, "chi2": round(float(chi2), 2),
             "_peaks": used})
    # a peak that a larger anchor's isotopes already hold cannot anchor another ion
    # (60Ni+ at 59.93 Da is not a CoH+ of its own)
    claimed: set = set()
    for where in sorted(found, key=lambda w: -max(h["counts"] for h in found[w])):
        hits = [h for h in found[where] if h["_peaks"][0] not in claimed]
        found[where] = hits
        for h in hits:
            claimed.update(h["_peaks"])
    for hits in found.values():
        for h in hits:
            del h["_peaks"]
    anchors = []
    for where, hits in sorted(found.items()):
        if not hits:
            continue
        offs = [h["offset_da"] for h in hits]
        if max(offs) - min(offs) > rel * where:
            continue                   # two readings of one peak disagree: not an anchor
        anchors.append(min(hits, key=lambda h: h["chi2"]))
    anchors = _consistent(anchors, rel)
    if not anchors:
        return OffsetModel((), (), "no peak was identified by its isotope pattern")
    points: list = []
    group: list = []
    for a in anchors + [None]:
        if a is not None and (not group or a["observed"] - group[0]["observed"] <= ANCHOR_MERGE_DA):
            group.append(a)
            continue
        w = np.array([g["counts"] for g in group])
        points.append((float(np.average([g["observed"] for g in group], weights=w)),
                       float(np.average([g["offset_da"] for g in group], weights=w))))
        group = [a] if a is not None else []
    return OffsetModel(tuple(anchors), tuple(points))
