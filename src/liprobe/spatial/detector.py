"""Detector event maps: where the ions hit the detector, and how unevenly.

The map (Figure 1 of Singh et al., arXiv:2309.07842, 2023) is a 2-D histogram
of the hit positions ``det_x``, ``det_y`` (mm), of all ions and, given a range
table and a species, of that species and its fraction of the ranged ions. It
is a numba kernel over chunks of the columns (per-thread partial histograms),
so memory stays bounded whatever the file size. The map covers the square
``[-h, h]^2`` centred on the detector centre, ``h`` the largest ``|det_x|`` or
``|det_y|``, in ``bins x bins`` square bins.

Heterogeneity
-------------
A number that does not grow with the ion count, so that runs of different
length compare:

1. **Subsample.** ``sample_size`` ions (default 100,000, or all if fewer) are
   drawn without replacement with a seeded generator. Every statistic below
   is taken on this subsample, so its noise is the same for every run.
2. **Core area.** Only the part of the detector that maps to the oxide core
   enters; the outer ring, where ions of the coating land, is left out.
   The centre is the median hit position of the subsample, the detector
   radius ``R`` the radius holding 99.9 % of its hits. When a coating
   element is named (``coating_element``, e.g. Cr; none by default: a run
   need not be coated) and the ranges carry it, the coating fraction (ions carrying it among the
   ranged ions) is taken in 40 rings out to ``R``; the coating ring is found
   as in :mod:`liprobe.spatial.coating` (plateau of the ring profile, significantly
   above the inner level), and the core radius is where the fraction, walking
   inward from the plateau, falls below half-way between inner level and
   plateau, less ``0.05 R`` for trajectory blur (``core_method="coating"``).
   Otherwise the core radius is ``core_fraction * R`` (0.8 by default,
   ``core_method="fraction"``), or the radius given (``"given"``).
3. **Grid.** A square grid of ``grid_bins`` bins across the core diameter;
   only bins lying wholly inside the core disc count.
4. **Excess variance of the hit density** (``heterogeneity``): with ``c_i``
   the subsample's hits per bin, ``m`` their mean and ``s^2`` their variance,
   ``(s^2 - m) / m^2``: the variance beyond Poisson counting noise, relative
   to the squared mean. It estimates the squared relative rms variation of
   the underlying hit density at the grid's scale, whatever the ion count:
   0 for a uniform map (within ``heterogeneity_noise``, its standard
   deviation under the Poisson null, ``sqrt((2 + 1/m) / K) / m`` for ``K``
   bins), 0.01 for a 10 % rms variation. A smooth radial fall-off of the
   density (projection) also counts; compare runs of the same instrument.
5. **Species fraction** (with a species): the chi-square test of homogeneity
   of the species fraction of ranged ions over the grid bins
   (:func:`liprobe.stats.fraction_homogeneity`; bins with an expected count
   of at least 5 species and 5 other ions), its p-value, and ``mu =
   sqrt(chi2 / (N + chi2))`` with ``N`` the species count
   (:func:`liprobe.stats.pearson_mu`, Moody et al., Microsc. Res. Tech. 71
   (2008) 542), next to ``mu_shuffled``, the median mu of 10 copies with the
   species labels shuffled over the same hits (the random baseline).

Solute-fraction heterogeneity
-----------------------------
:func:`fraction_heterogeneity` measures how unevenly a *solute fraction*
(e.g. of Li among the counted ions), not the hit density, is spread over the
detector. Its inputs are the hits of the counted ions and which of them are
solute; every number is dimensionless.

1. **Grid.** As above: centre the median hit, ``R`` the radius holding
   99.9 % of the hits (both may be given), a square grid of ``bins`` bins
   across the disc of radius ``core_fraction * R``, only bins wholly inside
   it, and of those only bins with at least ``min_per_bin`` ions (a choice on
   the ion counts ``n_i`` alone, which does not bias the fraction).
2. **Excess variance of the fraction** (``heterogeneity``): with ``k_i`` the
   solute ions of bin ``i``, ``f_i = k_i / n_i``, ``N = sum n_i``, ``K`` the
   bins used and ``f = sum k_i / N``, Pearson's statistic of the 2 x K table
   ``X^2 = sum n_i (f_i - f)^2 / (f (1 - f))`` has the expectation ``(K - 1)
   N / (N - 1)`` under a random labelling of the same hits (the binomial
   term). The heterogeneity is ``(X^2 - (K - 1) N / (N - 1)) / N``: the
   ion-weighted variance of the true fraction between bins beyond binomial
   counting noise, in units of ``f (1 - f)``, the binomial variance of one
   ion. 0 for a random labelling, whatever the ion count; half the bins at
   ``p + d`` and half at ``p - d`` give ``d^2 / (p (1 - p))``. Like the hit
   density's, it depends on the grid's scale and area: compare runs taken
   with the same grid.
3. **Its noise** (``heterogeneity_noise``, computed analytically, no
   permutation): the standard deviation of ``X^2`` under a random labelling,
   ``V = 2 (K - 1) + (1 - 6 f (1 - f)) / (f (1 - f)) * (sum 1 / n_i - K^2 / N)``
   (the binomial fourth moment; checked against label permutations in the
   tests), over ``N``: ``sqrt(V) / N``. This is the noise of the null
   hypothesis: a heterogeneous map's estimate scatters more, and its
   standard error (``heterogeneity_err``) is ``sqrt(V + 4 N max(H, 0)) / N``
   for the measured heterogeneity ``H`` (the cross term of the binomial noise
   with the true variation; a slight overestimate, checked by simulation in
   the tests).
4. **Rim over core** (``rim_core_ratio``): the solute fraction of the ions
   in the annulus ``rim_fraction * R < r <= R`` over that of the ions in the
   disc ``r <= inner_fraction * R`` (0.8 and 0.5 by default), with its
   binomial error by the delta method,
   ``sqrt(f_rim (1 - f_rim) / n_rim + ratio^2 f_core (1 - f_core) / n_core) / f_core``.
   Above 1 for an enriched rim or a depleted core.

A quantity that cannot be computed (no ions, no solute or only solute, fewer
than two bins with ``min_per_bin`` ions, no ion in the rim or no solute in
the core) is NaN with a sentence in ``reason`` (the heterogeneity) or
``rim_core_reason`` (the ratio); no exception is raised for the data.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .._jit import get_num_threads, njit, prange
from ..errors import AnalysisError
from ..rangetable import RangeTable
from ..run import Run
from ..stats import check_bin_cells

__all__ = ["DetectorHeterogeneity", "DetectorMap", "FractionHeterogeneity", "detector_map",
           "fraction_heterogeneity", "species_windows", "hit_heterogeneity"]

_CHUNK = 1 << 22
_RINGS = 40
_SHUFFLES = 10


@njit(parallel=True, cache=True, nogil=True)
def _map_kernel(dx, dy, labels, is_species, x0, y0, inv_w, nb, out):
    """Add hits to ``out[thread, kind, iy * nb + ix]``; kind 0 all, 1 ranged, 2 species."""
    n = dx.shape[0]
    n_threads = out.shape[0]
    per = (n + n_threads - 1) // n_threads
    has_labels = labels.shape[0] == n
    for t in prange(n_threads):
        a = t * per
        b = min(a + per, n)
        for i in range(a, b):
            ix = np.int64((np.float64(dx[i]) - x0) * inv_w)
            iy = np.int64((np.float64(dy[i]) - y0) * inv_w)
            ix = min(max(ix, 0), nb - 1)
            iy = min(max(iy, 0), nb - 1)
            k = iy * nb + ix
            out[t, 0, k] += 1
            if has_labels:          # branch-free: labels are in random order
                w = np.int64(labels[i])
                ok = np.int64(w >= 0)
                out[t, 1, k] += ok
                out[t, 2, k] += ok * np.int64(is_species[max(w, 0)])


def species_windows(table: RangeTable, species: str) -> np.ndarray:
    """Which windows of ``table`` hold ``species``: an ion (``Li+``) or an element (``Li``).

    An element selects every ion carrying it (counted as ions, not atoms).

    Returns
    -------
    ndarray of bool, shape (len(table),)

    Raises
    ------
    AnalysisError
        If no window holds the species.
    ValueError
        If ``species`` is neither an ion nor an element.
    """
    from ..chemistry import Ion, parse_species

    sp = parse_species(species)
    if isinstance(sp, Ion):
        sel = np.array([r.ion == sp for r in table.ranges], dtype=bool)
    else:
        sel = np.array([r.ion.count(sp) > 0 for r in table.ranges], dtype=bool)
    if not sel.any():
        raise AnalysisError(f"species {species} is not ranged (ions ranged: "
                            f"{', '.join(i.name for i in table.ions) or 'none'})", table.path)
    return sel


@dataclass(frozen=True)
class DetectorHeterogeneity:
    """Heterogeneity of the hit map over the detector's core area (see the module docstring).

    Lengths in mm. ``fraction_*`` fields are None without a species, or with
    ``fraction_reason`` when the test cannot be made.
    """

    sample_size: int
    seed: int
    grid_bins: int
    bin_mm: float
    bins_used: int
    mean_count: float
    variance: float
    heterogeneity: float
    heterogeneity_noise: float
    fraction: float | None = None
    fraction_chi2: float | None = None
    fraction_dof: int | None = None
    fraction_p_value: float | None = None
    fraction_mu: float | None = None
    fraction_mu_n: int | None = None
    fraction_mu_shuffled: float | None = None
    fraction_bins_used: int | None = None
    fraction_reason: str | None = None

    @property
    def rms_variation(self) -> float:
        """Relative rms variation of the hit density, ``sqrt(max(heterogeneity, 0))``."""
        return float(np.sqrt(max(self.heterogeneity, 0.0)))

    def to_dict(self) -> dict:
        d = {
            "definition": "(var - mean) / mean**2 of hits per bin of a fixed-size random "
                          "subsample, over grid bins inside the detector's core disc",
            "sample_size": self.sample_size, "seed": self.seed,
            "grid_bins": self.grid_bins, "bin_mm": self.bin_mm, "bins_used": self.bins_used,
            "mean_count": self.mean_count, "variance": self.variance,
            "heterogeneity": self.heterogeneity,
            "heterogeneity_noise": self.heterogeneity_noise,
            "rms_variation": self.rms_variation,
        }
        if self.fraction is not None or self.fraction_reason is not None:
            d["species_fraction"] = {
                "fraction": self.fraction, "chi2": self.fraction_chi2,
                "dof": self.fraction_dof, "p_value": self.fraction_p_value,
                "mu": self.fraction_mu, "mu_n": self.fraction_mu_n, "mu_n_is": "species ions",
                "mu_shuffled": self.fraction_mu_shuffled,
                "bins_used": self.fraction_bins_used,
            }
            if self.fraction_reason:
                d["species_fraction"]["reason"] = self.fraction_reason
        return d


@dataclass(frozen=True)
class DetectorMap:
    """Hits per detector bin, and the heterogeneity of the map.

    Attributes
    ----------
    counts : ndarray of int64, shape (bins, bins)
        All hits; ``counts[iy, ix]`` (row = det_y, as an image).
    ranged, species_counts : ndarray of int64, shape (bins, bins), or None
        Ranged hits and hits of ``species`` (None without ranges / species).
    extent_mm : (x0, x1, y0, y1)
        Edges of the map in mm.
    center_mm : (float, float)
        Median hit position of the subsample.
    detector_radius_mm, core_radius_mm : float
        See the module docstring; ``core_method`` says how the core was found.
    """

    n_ions: int
    bins: int
    extent_mm: tuple
    counts: np.ndarray
    ranged: np.ndarray | None
    species_counts: np.ndarray | None
    species: str | None
    center_mm: tuple
    detector_radius_mm: float
    core_radius_mm: float
    core_method: str
    heterogeneity: DetectorHeterogeneity
    coating_element: str | None = None
    warnings: tuple = field(default=())

    @property
    def bin_mm(self) -> float:
        return (self.extent_mm[1] - self.extent_mm[0]) / self.bins

    def fraction(self) -> np.ndarray | None:
        """Species fraction of the ranged hits per bin (NaN where no ranged hit)."""
        if self.species_counts is None:
            return None
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.ranged > 0, self.species_counts / np.maximum(self.ranged, 1),
                            np.nan)

    def to_dict(self) -> dict:
        d = {
            "ions": self.n_ions,
            "bins": self.bins, "bin_mm": self.bin_mm, "extent_mm": list(self.extent_mm),
            "center_mm": list(self.center_mm),
            "detector_radius_mm": self.detector_radius_mm,
            "core_radius_mm": self.core_radius_mm, "core_method": self.core_method,
            "coating_element": self.coating_element,
            "max_count": int(self.counts.max()) if self.counts.size else 0,
            "ranged_ions": None if self.ranged is None else int(self.ranged.sum()),
            "species": self.species,
            "species_ions": (None if self.species_counts is None
                             else int(self.species_counts.sum())),
            "heterogeneity": self.heterogeneity.to_dict(),
            "warnings": list(self.warnings),
        }
        return d


def _grid_counts(dx, dy, center, core_r, grid_bins):
    """Bin index on the core grid of each hit (-1 outside the bins wholly inside the core)."""
    w = 2.0 * core_r / grid_bins
    ix = np.floor((dx - (center[0] - core_r)) / w).astype(np.int64)
    iy = np.floor((dy - (center[1] - core_r)) / w).astype(np.int64)
    inside = (ix >= 0) & (ix < grid_bins) & (iy >= 0) & (iy < grid_bins)
    # a bin is used when its farthest corner from the centre lies inside the disc
    e = (np.arange(grid_bins + 1) * w) - core_r
    far = np.maximum(np.abs(e[:-1]), np.abs(e[1:]))
    full = (far[:, None] ** 2 + far[None, :] ** 2) <= core_r ** 2   # [iy, ix]
    idx = np.where(inside, iy * grid_bins + ix, -1)
    ok = idx >= 0
    idx[ok] = np.where(full.ravel()[idx[ok]], idx[ok], -1)
    return idx, full.ravel(), w


def hit_heterogeneity(counts) -> tuple[float, float, float, float]:
    """Excess variance over Poisson of counts per bin, relative to the squared mean.

    Parameters
    ----------
    counts : array of int, shape (K,)
        Hits per bin, all bins of equal area.

    Returns
    -------
    heterogeneity : float
        ``(s**2 - m) / m**2`` (``s**2`` with ``ddof=1``).
    noise : float
        Its standard deviation for Poisson counts, ``sqrt((2 + 1/m) / K) / m``.
    mean, variance : float
    """
    c = np.asarray(counts, dtype=np.float64)
    if len(c) < 2 or c.mean() <= 0:
        raise AnalysisError(f"{len(c)} detector bin(s) with {c.sum():.0f} hits: too few "
                            "for a heterogeneity (use fewer --grid-bins or more ions)")
    m = float(c.mean())
    v = float(c.var(ddof=1))
    return (v - m) / m**2, float(np.sqrt((2.0 + 1.0 / m) / len(c)) / m), m, v


def _subsample_index(n: int, sample_size: int, seed: int) -> np.ndarray:
    """Sorted indices of the seeded subsample of ``min(sample_size, n)`` of ``n`` ions.

    The subsample of :func:`detector_map`'s heterogeneity: the same ions for
    the same ``n``, ``sample_size`` and ``seed``.
    """
    rng = np.random.default_rng(seed)
    m = min(int(sample_size), int(n))
    return np.sort(rng.choice(n, size=m, replace=False)) if m < n else np.arange(n)


@dataclass(frozen=True)
class FractionHeterogeneity:
    """How unevenly a solute fraction is spread over the detector (see the module docstring).

    Attributes
    ----------
    heterogeneity : float
        ``(X^2 - (K - 1) N / (N - 1)) / N``: the ion-weighted variance of the
        solute fraction between the grid's bins beyond binomial noise, in
        units of ``f (1 - f)`` (dimensionless; 0 for a random labelling).
        NaN with ``reason`` when not computable.
    heterogeneity_noise : float
        Its standard deviation under a random labelling of the same hits
        (analytic: ``sqrt(V) / N``, ``V`` in the module docstring).
    heterogeneity_err : float
        Its standard error, ``sqrt(V + 4 N max(H, 0)) / N``: the noise, widened
        by the scatter a true variation adds (equal to the noise for ``H <= 0``).
    noise_method : str
        ``"analytic"``.
    chi2 : float
        Pearson's ``X^2`` of the 2 x K table (``K - 1`` degrees of freedom).
    fraction : float
        ``f``, solute ions per ion in the bins used.
    bins, bins_used : int
        Bins across the grid's diameter; bins used (wholly inside the disc,
        with at least ``min_per_bin`` ions).
    bin_mm : float
        Side of a bin, mm.
    ions_used : int
        ``N``, the ions in the bins used.
    min_per_bin : int
    center_mm : (float, float)
    detector_radius_mm, core_radius_mm : float
        ``R`` and the grid's disc radius ``core_fraction * R``, mm.
    rim_core_ratio, rim_core_ratio_err : float
        Solute fraction in the rim annulus over that in the inner disc, and
        its binomial error; NaN with ``rim_core_reason`` when not computable.
    rim_solute_fraction, core_solute_fraction : float
    rim_ions, core_ions : int
    inner_radius_mm, rim_radius_mm : float
        The inner disc is ``r <= inner_radius_mm``, the rim ``rim_radius_mm < r
        <= detector_radius_mm``.
    reason, rim_core_reason : str or None
        Why the heterogeneity / the ratio is NaN.
    """

    heterogeneity: float
    heterogeneity_noise: float
    heterogeneity_err: float
    chi2: float
    fraction: float
    bins: int
    bins_used: int
    bin_mm: float
    ions_used: int
    min_per_bin: int
    center_mm: tuple
    detector_radius_mm: float
    core_radius_mm: float
    rim_core_ratio: float
    rim_core_ratio_err: float
    rim_solute_fraction: float
    core_solute_fraction: float
    rim_ions: int
    core_ions: int
    inner_radius_mm: float
    rim_radius_mm: float
    noise_method: str = "analytic"
    reason: str | None = None
    rim_core_reason: str | None = None

    def to_dict(self) -> dict:
        def num(v):
            return None if v is None or not np.isfinite(v) else float(v)

        d = {
            "definition": "(X^2 - (K-1) N/(N-1)) / N, X^2 = sum n_i (f_i - f)^2 / (f (1-f)) "
                          "over grid bins inside the detector's core disc with >= "
                          "min_per_bin ions",
            "heterogeneity": num(self.heterogeneity),
            "heterogeneity_noise": num(self.heterogeneity_noise),
            "heterogeneity_err": num(self.heterogeneity_err),
            "noise_method": self.noise_method, "chi2": num(self.chi2),
            "fraction": num(self.fraction), "bins": self.bins, "bins_used": self.bins_used,
            "bin_mm": num(self.bin_mm), "ions_used": self.ions_used,
            "min_per_bin": self.min_per_bin,
            "center_mm": [num(c) for c in self.center_mm],
            "detector_radius_mm": num(self.detector_radius_mm),
            "core_radius_mm": num(self.core_radius_mm),
            "rim_core_ratio": num(self.rim_core_ratio),
            "rim_core_ratio_err": num(self.rim_core_ratio_err),
            "rim_solute_fraction": num(self.rim_solute_fraction),
            "core_solute_fraction": num(self.core_solute_fraction),
            "rim_ions": self.rim_ions, "core_ions": self.core_ions,
            "inner_radius_mm": num(self.inner_radius_mm),
            "rim_radius_mm": num(self.rim_radius_mm),
        }
        if self.reason:
            d["reason"] = self.reason
        if self.rim_core_reason:
            d["rim_core_reason"] = self.rim_core_reason
        return d


def _rim_core(r, sol, inner_r, rim_r, det_r):
    """(ratio, err, f_rim, f_core, n_rim, n_core, reason) of the solute fraction."""
    nan = float("nan")
    core = r <= inner_r
    rim = (r > rim_r) & (r <= det_r)
    n_c, n_r = int(core.sum()), int(rim.sum())
    k_c, k_r = int(sol[core].sum()), int(sol[rim].sum())
    f_c = k_c / n_c if n_c else nan
    f_r = k_r / n_r if n_r else nan
    if n_c == 0 or n_r == 0:
        where = "inner disc" if n_c == 0 else "rim annulus"
        return nan, nan, f_r, f_c, n_r, n_c, f"no ion in the detector's {where}"
    if k_c == 0:
        return nan, nan, f_r, f_c, n_r, n_c, (f"no solute ion among the {n_c:,} ions of the "
                                              "detector's inner disc: no ratio")
    ratio = f_r / f_c
    err = float(np.sqrt(f_r * (1 - f_r) / n_r + ratio**2 * f_c * (1 - f_c) / n_c) / f_c)
    return float(ratio), err, f_r, f_c, n_r, n_c, None


def fraction_heterogeneity(x_mm, y_mm, is_solute, *, bins: int = 16,
                           core_fraction: float = 0.8, min_per_bin: int = 20,
                           inner_fraction: float = 0.5, rim_fraction: float = 0.8,
                           center_mm: tuple | None = None,
                           detector_radius_mm: float | None = None) -> FractionHeterogeneity:
    """Heterogeneity of a solute fraction over the detector, and its rim over its core.

    Parameters
    ----------
    x_mm, y_mm : array of float, shape (n,)
        Detector hit positions of the counted ions, mm (only the ions the
        fraction is taken over: ranged, excluded elements left out).
    is_solute : array of bool, shape (n,)
        Which of them are solute.
    bins : int
        Bins across the core disc's diameter (at least 2).
    core_fraction : float
        Radius of the grid's disc, in units of the detector radius ``R``.
    min_per_bin : int
        Bins with fewer ions are left out (at least 1).
    inner_fraction, rim_fraction : float
        The inner disc ``r <= inner_fraction * R`` and the rim annulus
        ``rim_fraction * R < r <= R`` of the rim-to-core ratio
        (``inner_fraction <= rim_fraction <= 1``).
    center_mm : (float, float), optional
        Centre of the detector; default the median hit position.
    detector_radius_mm : float, optional
        ``R``; default the radius around the centre holding 99.9 % of the hits.

    Returns
    -------
    FractionHeterogeneity
        With NaN values and a ``reason`` / ``rim_core_reason`` when the data
        allow no value (no ions, no solute, only solute, too few bins).

    Raises
    ------
    ValueError
        Bad parameters or arrays of different lengths (never for the data's values).

    Notes
    -----
    ``heterogeneity = (X^2 - (K - 1) N / (N - 1)) / N`` with Pearson's ``X^2 =
    sum n_i (f_i - f)^2 / (f (1 - f))`` over the ``K`` bins used, ``N`` ions;
    its noise ``sqrt(2 (K - 1) + (1 - 6 f (1 - f)) / (f (1 - f)) (sum 1/n_i -
    K^2 / N)) / N`` (analytic, under a random labelling); see the module
    docstring.

    Examples
    --------
    A uniform disc of hits, solute on the right half at 0.4 and on the left at
    0.2 (``d = 0.1`` around ``p = 0.3``): the heterogeneity is ``d^2 / (p (1 -
    p)) = 0.0476``, and a random labelling gives 0 within the noise.

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> r, t = 40 * np.sqrt(rng.random(400_000)), 2 * np.pi * rng.random(400_000)
    >>> x, y = r * np.cos(t), r * np.sin(t)
    >>> solute = rng.random(len(x)) < np.where(x > 0, 0.4, 0.2)
    >>> h = fraction_heterogeneity(x, y, solute, center_mm=(0, 0))
    >>> print(f"{h.heterogeneity:.4f} +- {h.heterogeneity_err:.4f}, truth {0.01 / 0.21:.4f}")
    0.0466 +- 0.0009, truth 0.0476
    >>> h0 = fraction_heterogeneity(x, y, rng.random(len(x)) < 0.3)
    >>> abs(h0.heterogeneity) < 3 * h0.heterogeneity_noise
    True
    """
    x = np.asarray(x_mm, dtype=np.float64).ravel()
    y = np.asarray(y_mm, dtype=np.float64).ravel()
    sol = np.asarray(is_solute).ravel().astype(bool)
    if not (len(x) == len(y) == len(sol)):
        raise ValueError(f"x_mm, y_mm and is_solute differ in length ({len(x)}, {len(y)}, "
                         f"{len(sol)})")
    if bins < 2 or min_per_bin < 1:
        raise ValueError("bins >= 2 and min_per_bin >= 1 are required")
    if not (0 < core_fraction <= 1 and 0 < inner_fraction <= rim_fraction <= 1):
        raise ValueError("0 < core_fraction <= 1 and 0 < inner_fraction <= rim_fraction <= 1 "
                         "are required")
    check_bin_cells(float(bins) ** 2, f"a grid of {bins:,} x {bins:,}", "give fewer bins")
    nan = float("nan")
    n = len(x)
    empty = dict(heterogeneity=nan, heterogeneity_noise=nan, heterogeneity_err=nan,
                 chi2=nan, fraction=nan,
                 bins=int(bins), bins_used=0, bin_mm=nan, ions_used=0,
                 min_per_bin=int(min_per_bin), center_mm=(nan, nan), detector_radius_mm=nan,
                 core_radius_mm=nan, rim_core_ratio=nan, rim_core_ratio_err=nan,
                 rim_solute_fraction=nan, core_solute_fraction=nan, rim_ions=0, core_ions=0,
                 inner_radius_mm=nan, rim_radius_mm=nan)
    ok = np.isfinite(x) & np.isfinite(y)
    if not ok.all():
        x, y, sol = x[ok], y[ok], sol[ok]
    if len(x) == 0:
        why = "no ions" if n == 0 else "no ion with a finite detector position"
        return FractionHeterogeneity(**empty, reason=why, rim_core_reason=why)
    center = ((float(np.median(x)), float(np.median(y))) if center_mm is None
              else (float(center_mm[0]), float(center_mm[1])))
    r = np.hypot(x - center[0], y - center[1])
    det_r = (float(np.percentile(r, 99.9)) if detector_radius_mm is None
             else float(detector_radius_mm))
    if not det_r > 0:
        why = "all hits at one point: no detector area"
        return FractionHeterogeneity(**dict(empty, center_mm=center), reason=why,
                                     rim_core_reason=why)
    core_r = core_fraction * det_r
    ratio, ratio_err, f_rim, f_core, n_rim, n_core, rc_why = _rim_core(
        r, sol, inner_fraction * det_r, rim_fraction * det_r, det_r)
    common = dict(empty, center_mm=center, detector_radius_mm=det_r, core_radius_mm=core_r,
                  bin_mm=2.0 * core_r / bins, rim_core_ratio=ratio,
                  rim_core_ratio_err=ratio_err, rim_solute_fraction=f_rim,
                  core_solute_fraction=f_core, rim_ions=n_rim, core_ions=n_core,
                  inner_radius_mm=inner_fraction * det_r, rim_radius_mm=rim_fraction * det_r)

    idx, full, _w = _grid_counts(x, y, center, core_r, bins)
    used = idx >= 0
    nb = bins * bins
    n_i = np.bincount(idx[used], minlength=nb)
    k_i = np.bincount(idx[used], weights=sol[used], minlength=nb)
    keep = full & (n_i >= min_per_bin)
    n_i, k_i = n_i[keep].astype(np.float64), k_i[keep]
    K = len(n_i)
    N = float(n_i.sum())
    common.update(bins_used=K, ions_used=int(N))
    if K < 2:
        why = (f"{K} detector bin(s) with at least {min_per_bin} ions: too few for a "
               "heterogeneity (use fewer bins, a smaller min_per_bin or more ions)")
        return FractionHeterogeneity(**common, reason=why, rim_core_reason=rc_why)
    ksum = float(k_i.sum())
    f = ksum / N
    common["fraction"] = f
    if ksum == 0 or ksum == N:
        why = (f"{'no' if ksum == 0 else 'every'} ion of the {int(N):,} in the {K} bins is "
               "solute: no fraction to vary")
        return FractionHeterogeneity(**common, reason=why, rim_core_reason=rc_why)
    pq = f * (1.0 - f)
    q = float((k_i * k_i / n_i).sum() - ksum * ksum / N)    # sum n_i (f_i - f)^2
    chi2 = q / pq
    het = (chi2 - (K - 1) * N / (N - 1)) / N
    v = 2.0 * (K - 1) + (1.0 - 6.0 * pq) / pq * (float((1.0 / n_i).sum()) - K * K / N)
    noise = float(np.sqrt(max(v, 0.0)) / N)
    err = float(np.sqrt(max(v, 0.0) + 4.0 * N * max(het, 0.0)) / N)
    common.update(heterogeneity=float(het), heterogeneity_noise=noise, heterogeneity_err=err,
                  chi2=float(chi2))
    return FractionHeterogeneity(**common, reason=None, rim_core_reason=rc_why)


def _coating_core_radius(r, ranged, coating, det_r):
    """Core radius from the coating ring on the detector, or None if no ring shows."""
    edges = np.linspace(0.0, det_r, _RINGS + 1)
    k = np.minimum((r / det_r * _RINGS).astype(np.int64), _RINGS)
    n = np.bincount(k[ranged], minlength=_RINGS + 1)[:_RINGS].astype(np.float64)
    c = np.bincount(k[ranged & coating], minlength=_RINGS + 1)[:_RINGS].astype(np.float64)
    kern = np.ones(3)
    n3 = np.convolve(n, kern, "same")
    c3 = np.convolve(c, kern, "same")
    with np.errstate(invalid="ignore", divide="ignore"):
        f3 = np.where(n3 >= 20, c3 / np.maximum(n3, 1), np.nan)
    if np.all(np.isnan(f3)):
        return None
    ip = int(np.nanargmax(f3))
    inner = slice(0, max(ip // 2, 1))
    n_in, c_in = n[inner].sum(), c[inner].sum()
    if n_in == 0 or ip < _RINGS // 2:
        return None
    bg = c_in / n_in
    top = f3[ip]
    sigma = np.sqrt(top * (1 - top) / n3[ip] + bg * (1 - bg) / n_in)
    if not (top - bg > 5 * sigma and top > 2 * bg):
        return None
    half = bg + 0.5 * (top - bg)
    j = ip
    while j > 0 and not (f3[j] < half):
        j -= 1
    return float(edges[j + 1] - 0.05 * det_r)


def _shuffled_mu(species_flag, bin_idx, n_bins, rng):
    from ..stats import fraction_homogeneity, pearson_mu

    mus = []
    n = np.bincount(bin_idx, minlength=n_bins)
    for _ in range(_SHUFFLES):
        k = np.bincount(bin_idx, weights=rng.permutation(species_flag), minlength=n_bins)
        h = fraction_homogeneity(k, n)
        if h.p_value is None or h.species + h.chi2 <= 0:
            return None
        mus.append(pearson_mu(h.chi2, h.species))
    return float(np.median(mus))


def detector_map(run: Run, ranges: RangeTable | None = None, species: str | None = None,
                 bins: int = 128, sample_size: int = 100_000, seed: int = 0,
                 grid_bins: int = 32, core_radius_mm: float | None = None,
                 core_fraction: float = 0.8, coating_element: str | None = None,
                 chunk_ions: int = _CHUNK) -> DetectorMap:
    """Hit density on the detector, optionally of one species, and its heterogeneity.

    Parameters
    ----------
    run : Run
        Needs ``det_x``, ``det_y`` (mm); ``mass`` too when ``ranges`` are given.
    ranges : RangeTable, optional
        To count ranged ions, find the coating ring and select ``species``.
    species : str, optional
        An ion (``Li+``) or an element (``Li``: every ion carrying it).
    bins : int
        Bins across the map, each way.
    sample_size : int
        Ions drawn (seeded) for the heterogeneity; all if the run has fewer.
    seed : int
    grid_bins : int
        Bins across the core diameter for the heterogeneity (at least 4: the
        bins must lie wholly inside the core disc).
    core_radius_mm : float, optional
        Core radius on the detector (mm) around the median hit position;
        default: from the coating ring, else ``core_fraction`` of the detector radius.
    core_fraction : float
    coating_element : str, optional
        Element of the coating (ions carrying it mark the outer ring): the core
        is then found inside its ring. None (default): no coating is looked
        for, and the core is ``core_fraction`` of the detector radius.
    chunk_ions : int
        Ions per chunk of the map pass (memory bound).

    Returns
    -------
    DetectorMap

    Raises
    ------
    ColumnError
        The run has no ``det_x``/``det_y`` (e.g. a ``.pos`` file), or no
        ``mass`` with ranges.
    AnalysisError
        No ions, a species that is not ranged, or too few hits for the grid.

    Notes
    -----
    The map is Figure 1 of Singh et al. [1]_; the species fraction's ``mu =
    sqrt(chi2 / (N + chi2))`` is the normalised Pearson coefficient of Moody
    et al. [2]_ (see the module docstring).

    References
    ----------
    .. [1] M.P. Singh, E.V. Woods, S.-H. Kim, C. Jung, L.S. Aota, B. Gault,
       "Facilitating the systematic nanoscale study of battery materials by atom
       probe tomography through in-situ metal coating", arXiv:2309.07842 (2023).
    .. [2] M.P. Moody et al., Microsc. Res. Tech. 71 (2008) 542-550 (full
       reference: :func:`liprobe.fda.frequency_distribution`).

    Examples
    --------
    A regular 100 x 100 grid of hits, 0.4 mm apart, Li+ on the right half:

    >>> import numpy as np
    >>> import liprobe
    >>> from liprobe import Range, RangeTable, parse_ion
    >>> table = RangeTable.from_ranges([Range(6.9, 7.2, parse_ion("Li+")),
    ...                                 Range(15.9, 16.2, parse_ion("O+"))])
    >>> g = (np.arange(100) - 49.5) * 0.4
    >>> det_x, det_y = (a.ravel().astype(np.float32) for a in np.meshgrid(g, g))
    >>> mass = np.where(det_x > 0, 7.0, 16.0).astype(np.float32)
    >>> run = liprobe.Run.from_arrays(det_x=det_x, det_y=det_y, mass=mass)
    >>> m = liprobe.detector_map(run, table, species="Li+", bins=4, grid_bins=8)
    >>> m.counts                           # 25 x 25 hits in each 9.9 mm square bin
    array([[625, 625, 625, 625],
           [625, 625, 625, 625],
           [625, 625, 625, 625],
           [625, 625, 625, 625]])
    >>> m.species_counts[0]
    array([  0,   0, 625, 625])

    On the heterogeneity grid every bin holds the same ``m`` = 196 hits: no
    variance, so ``(s^2 - m) / m^2 = -1 / 196``; half the bins are all Li+
    and half have none, so ``chi2 = 2 N`` with ``N`` the Li+ hits and ``mu =
    sqrt(2 / 3)``:

    >>> h = m.heterogeneity
    >>> print(f"{h.mean_count:.0f} {h.variance:.0f} {h.heterogeneity:.5f} {-1 / 196:.5f}")
    196 0 -0.00510 -0.00510
    >>> print(f"{h.fraction_chi2 / h.fraction_mu_n:.1f} {h.fraction_mu:.4f} {(2 / 3) ** 0.5:.4f}")
    2.0 0.8165 0.8165
    >>> h.fraction_mu_shuffled < 0.2        # the same hits with the Li+ labels shuffled
    True
    """
    if bins < 1 or grid_bins < 4 or sample_size < 1:
        raise ValueError("bins >= 1, grid_bins >= 4 and sample_size >= 1 are required")
    check_bin_cells(float(grid_bins) ** 2, f"a grid of {grid_bins:,} x {grid_bins:,}",
                    "give fewer grid bins")
    if species is not None and ranges is None:
        raise AnalysisError(f"species {species} needs a range file")
    n = run.n_ions
    src_x, src_y = run.source("det_x"), run.source("det_y")   # ColumnError if absent
    if ranges is not None:
        run.source("mass")
    if n == 0:
        raise AnalysisError("no ions to map", run.path)
    warnings = list(ranges.warnings) if ranges is not None else []
    if coating_element is not None and ranges is None:
        warnings.append(f"no range file: the {coating_element} coating ring cannot be found; "
                        f"core area taken as {core_fraction:g} of the detector radius")
    from ..ranging import assign

    sp_win = species_windows(ranges, species) if species is not None else None
    is_species = (sp_win if sp_win is not None else
                  np.zeros(max(len(ranges or ()), 1), bool)).astype(np.uint8)

    # -- pass 1: extent (detector centre at 0) ------------------------------
    half = 0.0
    for (_s, cx), (_t, cy) in zip(run.chunks("det_x", chunk_ions), run.chunks("det_y", chunk_ions)):
        half = max(half, float(np.max(np.abs(cx))), float(np.max(np.abs(cy))))
    half = half * (1 + 1e-6) if half > 0 else 1.0
    inv_w = bins / (2.0 * half)

    # -- pass 2: histograms --------------------------------------------------
    n_threads = get_num_threads()
    check_bin_cells(n_threads * 3 * float(bins) ** 2, f"a detector map of {bins:,} x {bins:,}",
                    "give fewer bins")
    part = np.zeros((n_threads, 3, bins * bins), dtype=np.int64)
    no_labels = np.zeros(0, np.int16)
    mass_chunks = run.chunks("mass", chunk_ions) if ranges is not None else None
    for (_s, cx), (_t, cy) in zip(run.chunks("det_x", chunk_ions), run.chunks("det_y", chunk_ions)):
        labels = no_labels
        if mass_chunks is not None:
            labels, _ = assign(next(mass_chunks)[1], ranges)
        _map_kernel(cx, cy, labels, is_species, -half, -half, inv_w, bins, part)
    total = part.sum(axis=0).reshape(3, bins, bins)

    # -- subsample -------------------------------------------------------------
    idx = _subsample_index(n, sample_size, seed)
    m = len(idx)
    sx = np.asarray(src_x[idx], dtype=np.float64)
    sy = np.asarray(src_y[idx], dtype=np.float64)
    center = (float(np.median(sx)), float(np.median(sy)))
    r = np.hypot(sx - center[0], sy - center[1])
    det_r = float(np.percentile(r, 99.9))
    if not det_r > 0:
        raise AnalysisError("all hits at one point: no detector area to map", run.path)
    s_ranged = s_species = None
    coating = None
    if ranges is not None:
        lab, _ = assign(np.asarray(run.source("mass")[idx]), ranges)
        s_ranged = lab >= 0
        safe = np.maximum(lab, 0)
        if sp_win is not None:
            s_species = s_ranged & sp_win[safe]
        if coating_element is not None and coating_element not in ranges.elements:
            warnings.append(f"the range file holds no {coating_element}: no coating ring to "
                            f"find; core area taken as {core_fraction:g} of the detector "
                            "radius")
        if coating_element is not None and coating_element in ranges.elements:
            carries = np.array([r_.ion.count(coating_element) > 0 for r_ in ranges.ranges])
            coating = s_ranged & carries[safe]

    method = "given"
    if core_radius_mm is not None:
        if not core_radius_mm > 0:
            raise ValueError("core_radius_mm must be positive")
        core_r = float(core_radius_mm)
    else:
        core_r = None
        if coating is not None and coating.any():
            core_r = _coating_core_radius(r, s_ranged, coating, det_r)
        if core_r is not None and core_r > 0:
            method = "coating"
        else:
            if coating is not None and coating.any():
                warnings.append(f"no {coating_element} ring found on the detector: core area "
                                f"taken as {core_fraction:g} of the detector radius")
            core_r, method = core_fraction * det_r, "fraction"

    bin_idx, full, w = _grid_counts(sx, sy, center, core_r, grid_bins)
    used = bin_idx >= 0
    counts = np.bincount(bin_idx[used], minlength=grid_bins * grid_bins)[full]
    het, noise, mean, var = hit_heterogeneity(counts)
    h_kw = {}
    if s_species is not None:
        from ..stats import fraction_homogeneity, pearson_mu

        keep = used & s_ranged
        nb = grid_bins * grid_bins
        kk = np.bincount(bin_idx[keep], weights=s_species[keep], minlength=nb)[full]
        nn = np.bincount(bin_idx[keep], minlength=nb)[full]
        h = fraction_homogeneity(kk, nn)
        h_kw = dict(fraction=h.fraction, fraction_chi2=h.chi2, fraction_dof=h.dof,
                    fraction_p_value=h.p_value, fraction_bins_used=h.bins_used,
                    fraction_reason=h.reason)
        if h.p_value is not None:
            h_kw["fraction_mu"] = pearson_mu(h.chi2, h.species)
            h_kw["fraction_mu_n"] = h.species
            remap = np.full(nb, -1, np.int64)
            remap[np.flatnonzero(full)] = np.arange(int(full.sum()))
            h_kw["fraction_mu_shuffled"] = _shuffled_mu(
                s_species[keep].astype(np.float64), remap[bin_idx[keep]], int(full.sum()),
                np.random.default_rng(seed + 1))
    het_result = DetectorHeterogeneity(
        sample_size=m, seed=seed, grid_bins=grid_bins, bin_mm=w, bins_used=len(counts),
        mean_count=mean, variance=var, heterogeneity=het, heterogeneity_noise=noise, **h_kw)
    return DetectorMap(
        n_ions=n, bins=bins, extent_mm=(-half, half, -half, half), counts=total[0],
        ranged=total[1] if ranges is not None else None,
        species_counts=total[2] if species is not None else None, species=species,
        center_mm=center, detector_radius_mm=det_r, core_radius_mm=core_r, core_method=method,
        heterogeneity=het_result,
        coating_element=coating_element if coating is not None else None,
        warnings=tuple(warnings))
