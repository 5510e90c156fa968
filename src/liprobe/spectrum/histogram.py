"""Mass spectra: histograms of the mass-to-charge column.

The histogram is a numba kernel over uniform bins (one pass, per-thread
partial histograms), chunkable so that memory stays flat on large files.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._jit import get_num_threads, njit, prange
from ..errors import AnalysisError
from ..run import column_chunks
from ..stats import check_bin_cells
from ._shared import sorted_masses, sorted_search

__all__ = ["MassHistogram", "mass_histogram", "normalization_factor", "SpectrumComparison",
           "compare_spectra"]


@njit(cache=True, nogil=True)
def _exact_bin(m, lo, width, n_bins):
    """Bin of m with edges ``lo + width * k`` (float64, as returned), or -1."""
    if not (m >= lo):
        return -1
    k = np.int64((m - lo) / width)
    while k > 0 and m < lo + width * np.float64(k):
        k -= 1
    while m >= lo + width * np.float64(k + 1):
        k += 1
    return k if k < n_bins else -1


#: Most ions per kernel call: the per-thread counters are uint32.
_MAX_CALL_IONS = 1 << 31


@njit(parallel=True, cache=True, nogil=True, boundscheck=False)
def _histogram_kernel(mass, lo, width, n_bins, n_threads):
    """Counts per bin of ``mass`` (at most ``_MAX_CALL_IONS`` ions), in one parallel pass.

    Each thread counts its contiguous part into its own row of uint32
    counters (half the cache of int64), with one spare entry where values
    outside the bins land (clamped, no branch); loop indices are unsigned,
    which spares numba's negative-index handling.
    """
    n = mass.shape[0]
    inv_width = 1.0 / width
    part = np.zeros((n_threads, n_bins + 1), dtype=np.uint32)
    per = (n + n_threads - 1) // n_threads
    nb = np.uint64(n_bins)
    for t in prange(n_threads):
        i = np.uint64(min(t * per, n))
        b = np.uint64(min(t * per + per, n))
        row = part[t]
        while i < b:
            m = np.float64(mass[i])
            x = (m - lo) * inv_width
            k = np.int64(x + 1e-9)
            # within 1e-9 of a bin border (float64 rounding is ~1e-16 relative):
            # decide exactly against lo + width * k, the returned edges
            if np.int64(x - 1e-9) != k or x < 1e-9:
                k = _exact_bin(m, lo, width, n_bins)
            row[min(np.uint64(k), nb)] += np.uint32(1)    # -1, NaN, beyond: the spare
            i += np.uint64(1)
    out = np.zeros(n_bins, dtype=np.int64)
    for t in range(n_threads):
        for j in range(n_bins):
            out[j] += part[t, j]
    return out


@dataclass(frozen=True)
class MassHistogram:
    """Counts per mass bin; ``edges`` in Da (``len(counts) + 1`` of them)."""

    edges: np.ndarray
    counts: np.ndarray

    @property
    def centers(self) -> np.ndarray:
        return 0.5 * (self.edges[:-1] + self.edges[1:])

    @property
    def bin_width(self) -> float:
        return float(self.edges[1] - self.edges[0])


def mass_histogram(mass, bin_da: float = 0.01, mass_range=(0.0, 200.0)) -> MassHistogram:
    """Histogram of mass-to-charge values in uniform bins.

    Parameters
    ----------
    mass : ndarray of float, shape (n,), or iterable of such chunks
        Mass-to-charge in Da (e.g. ``run.chunks("mass")``).
    bin_da : float
        Bin width in Da.
    mass_range : (float, float)
        Lower and upper limit in Da; values outside (and NaN) are not counted.
        Bins are ``[edges[k], edges[k+1])`` with ``edges = lo + bin_da * arange(n + 1)``
        in float64, exactly (no rounding at bin borders).

    Returns
    -------
    MassHistogram

    Raises
    ------
    AnalysisError
        A bin width or range that gives no bins (or more than 10^8).

    Examples
    --------
    >>> import numpy as np
    >>> import liprobe
    >>> mass = np.array([6.99, 7.01, 7.02, 15.99, 16.0, 16.01, 16.02, 250.0])
    >>> h = liprobe.mass_histogram(mass, bin_da=1.0, mass_range=(0, 20))
    >>> len(h.counts), h.bin_width, h.centers[:3]
    (20, 1.0, array([0.5, 1.5, 2.5]))
    >>> [int(h.counts[k]) for k in (6, 7, 15, 16)]   # [6, 7) Da: 1 ion, [7, 8) Da: 2 ...
    [1, 2, 1, 3]
    >>> int(h.counts.sum())                          # 250 Da lies outside the range
    7
    """
    lo, hi = float(mass_range[0]), float(mass_range[1])
    if not (bin_da > 0 and hi > lo):
        raise AnalysisError(f"bad histogram: bin {bin_da} Da over [{lo}, {hi}) Da")
    check_bin_cells((hi - lo) / bin_da, f"a histogram of [{lo:g}, {hi:g}) Da in bins of "
                    f"{bin_da:g} Da")
    n_bins = int(round((hi - lo) / bin_da))
    if n_bins < 1 or n_bins > 100_000_000:
        raise AnalysisError(f"bad histogram: {n_bins} bins of {bin_da} Da")
    counts = np.zeros(n_bins, np.int64)
    edges = lo + bin_da * np.arange(n_bins + 1, dtype=np.float64)
    threads = get_num_threads()
    for chunk in column_chunks(mass):
        m = np.ascontiguousarray(chunk)
        if m.dtype not in (np.float32, np.float64) or not m.dtype.isnative:
            m = m.astype(np.float32)
        for a in range(0, len(m), _MAX_CALL_IONS):
            counts += _histogram_kernel(m[a:a + _MAX_CALL_IONS], lo, float(bin_da), n_bins,
                                        threads)
    return MassHistogram(edges, counts)


# --------------------------------------------------------------------------
# normalisation and comparison of two spectra (the study's Figure 4a)
# --------------------------------------------------------------------------

def normalization_factor(mass, normalize: str = "total", mass_range=(0.0, 200.0),
                         sorted_mass: np.ndarray | None = None) -> tuple[float, str]:
    """Counts that a spectrum is divided by, and what they are.

    Parameters
    ----------
    mass : ndarray of float
        Mass-to-charge in Da.
    normalize : str
        ``"total"``: all ions in ``mass_range``; an ion (``"O2+"``): the
        background-subtracted counts of its main isotope peak, from the
        peak's shape analysis (:func:`liprobe.spectrum.peaks.analyse_peaks` picks the
        measured peak nearest its m/n, within 0.5 % of it).
    """

    sm = sorted_mass if sorted_mass is not None else sorted_masses(mass)
    lo, hi = mass_range
    if normalize == "total":
        n = float(sorted_search(sm, hi) - sorted_search(sm, lo))
        if n <= 0:
            raise AnalysisError(f"no ions in [{lo}, {hi}) Da to normalise by")
        return n, f"all {int(n):,} ions in [{lo:g}, {hi:g}) Da"
    from ..chemistry import parse_ion
    from .calibration import peak_position

    try:
        ion = parse_ion(normalize)
    except ValueError as e:
        raise AnalysisError(f"cannot normalise by '{normalize}': {e}") from None
    m0 = max(ion.peaks(), key=lambda p: p[1])[0]
    pos, _ = peak_position(sm, m0, max(0.005 * m0, 0.05))
    if pos is None:
        raise AnalysisError(f"no {ion.name} peak near {m0:.3f} Da to normalise by")
    from .peaks import analyse_peaks

    pa = analyse_peaks(sm, mass_range=(pos - 0.5, pos + 0.5), sorted_mass=sm)
    p = pa.nearest(pos)
    if p is None or abs(p.mass - m0) > 0.005 * m0 or p.counts <= 0:
        raise AnalysisError(f"no significant {ion.name} peak near {m0:.3f} Da to normalise by")
    return float(p.counts), f"{ion.name} peak at {p.mass:.3f} Da ({p.counts:,.0f} counts)"


@dataclass(frozen=True)
class SpectrumComparison:
    """Two runs' peaks side by side, each normalised (see :func:`compare_spectra`)."""

    normalize: str
    norm_a: tuple     # (counts, description)
    norm_b: tuple
    shared: tuple     # dicts: mass, per-run counts, normalised counts, fwhm, mrp, tails
    only_a: tuple     # masses
    only_b: tuple

    def to_dict(self) -> dict:
        return {"normalize": self.normalize,
                "normalization": {"a": {"counts": self.norm_a[0], "what": self.norm_a[1]},
                                  "b": {"counts": self.norm_b[0], "what": self.norm_b[1]}},
                "shared_peaks": [dict(d) for d in self.shared],
                "only_in_a": list(self.only_a), "only_in_b": list(self.only_b)}


def compare_spectra(peaks_a, peaks_b, norm_a, norm_b, normalize: str = "total",
                    tolerance_rel: float = 1e-3) -> SpectrumComparison:
    """Match the peaks of two runs and compare them after normalisation.

    Parameters
    ----------
    peaks_a, peaks_b : liprobe.spectrum.peaks.PeakAnalysis
    norm_a, norm_b : (float, str)
        From :func:`normalization_factor`.
    tolerance_rel : float
        Two peaks are the same when within this fraction of the mass (or
        within the larger FWHM).
    """
    b_list = list(peaks_b.peaks)
    used = set()
    shared = []
    only_a = []
    for p in peaks_a.peaks:
        best, dist = None, np.inf
        for j, q in enumerate(b_list):
            d = abs(q.mass - p.mass)
            lim = max(tolerance_rel * p.mass, p.fwhm or 0.0, q.fwhm or 0.0)
            if d <= lim and d < dist and j not in used:
                best, dist = j, d
        if best is None:
            only_a.append(round(p.mass, 4))
            continue
        used.add(best)
        q = b_list[best]
        shared.append({
            "mass": round(0.5 * (p.mass + q.mass), 4),
            "counts_a": p.counts, "counts_b": q.counts,
            "normalized_a": p.counts / norm_a[0], "normalized_b": q.counts / norm_b[0],
            "ratio_b_over_a": (q.counts / norm_b[0]) / (p.counts / norm_a[0])
            if p.counts > 0 else None,
            "fwhm_a": p.fwhm, "fwhm_b": q.fwhm,
            "mrp_fwhm_a": p.mrp("fwhm"), "mrp_fwhm_b": q.mrp("fwhm"),
            "mrp_fw10_a": p.mrp("fw10"), "mrp_fw10_b": q.mrp("fw10"),
            "tail_ns_a": p.tail_ns, "tail_ns_b": q.tail_ns,
            "tail_fraction_a": p.tail_fraction, "tail_fraction_b": q.tail_fraction,
        })
    only_b = [round(q.mass, 4) for j, q in enumerate(b_list) if j not in used]
    return SpectrumComparison(normalize, tuple(norm_a), tuple(norm_b), tuple(shared),
                              tuple(only_a), tuple(only_b))
