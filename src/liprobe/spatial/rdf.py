"""Radial distribution (pair correlation) between species, normalised by the bulk composition.

Around each ion of species A (the centres), the counted ions in spherical
shells ``[r, r + bin_nm)`` out to ``max_distance_nm`` (5 nm by default) are
counted, all of them and those of species B. The pair correlation is the
share of B in the shell over its share among all counted ions:

    g_AB(r) = (N_B(r) / N(r)) / (n_B / n)

(De Geuser et al. 2006; the composition-normalised radial distribution of
APT). Dividing by the shell's own ion count ``N(r)`` rather than by its volume
times a density removes the edges of the data and the variations of the
detection density: a randomly distributed B gives ``g`` close to 1 at every
r, an attraction of B to A ``g > 1`` at short r, a depletion ``g < 1``. A
centre is never counted in its own shells, so for ``A = B`` random labels give
``(n_B - 1) / (n - 1)`` over ``n_B / n``, below 1 in a small selection: the
reference is the relabelled ions' ``g_random``, not 1.

Its error is computed, not assumed: the same ions are relabelled
``shuffles`` times (labels permuted over the whole selection), ``g`` is
measured on each, and the standard deviation of those values at each r is
the scatter of ``g`` for randomly placed species with these centres, these
densities and these shells (it counts the overlap of the shells of nearby
centres, which binomial errors would miss). The mean of the relabelled
values, ``g_random``, is the reference ``g`` is compared with.

Memory: the shells are summed over the centres as they are counted (in 64
blocks of 2 x n_bins counts), never held per centre.

The shells are counted by a numba kernel over a cell list (cells one
``max_distance_nm`` wide, every core); at most ``max_centres`` centres (a
seeded choice) bound the work, about ``centres x 4/3 pi r_max^3 x density``
distances per pass.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np

from .._jit import njit, prange
from ..errors import AnalysisError
from ..rangetable import RangeTable
from ..run import Run
from .neighbours import CountedIons, counted_positions, shuffle_labels, species_kinds

__all__ = ["PairCorrelation", "pair_correlation", "shell_counts", "MAX_BINS"]

#: Most shells.
MAX_BINS = 10_000
#: Most cells of the cell list.
_MAX_CELLS = 1 << 24
#: Blocks of centres the shell counts are summed in (one per writer).
_BLOCKS = 64


@njit(inline="always", cache=True, nogil=True)
def _count_around(c, centres, p, label, orig, cell_start, lo, inv_cell, shape, r2max, inv_bin,
                  n_bins, acc):
    """``acc[label, bin]`` += 1 for every ion within ``sqrt(r2max)`` of centre ``c`` (not
    itself), found in the 27 cells around it."""
    nx, ny, nz = shape[0], shape[1], shape[2]
    cx, cy, cz = centres[c, 0], centres[c, 1], centres[c, 2]
    me = np.int64(centres[c, 3])
    i = min(max(int(math.floor((cx - lo[0]) * inv_cell)), 0), nx - 1)
    j = min(max(int(math.floor((cy - lo[1]) * inv_cell)), 0), ny - 1)
    k = min(max(int(math.floor((cz - lo[2]) * inv_cell)), 0), nz - 1)
    for a in range(max(i - 1, 0), min(i + 2, nx)):
        for b in range(max(j - 1, 0), min(j + 2, ny)):
            for m in range(max(k - 1, 0), min(k + 2, nz)):
                cell = (a * ny + b) * nz + m
                for q in range(cell_start[cell], cell_start[cell + 1]):
                    if orig[q] == me:
                        continue
                    dx = p[q, 0] - cx
                    dy = p[q, 1] - cy
                    dz = p[q, 2] - cz
                    d2 = dx * dx + dy * dy + dz * dz
                    if d2 < r2max:
                        s = int(math.sqrt(d2) * inv_bin)
                        if s < n_bins:
                            acc[label[q], s] += 1


@njit(parallel=True, cache=True, nogil=True)
def _shell_kernel(centres, p, label, orig, cell_start, lo, inv_cell, shape, r_max, inv_bin,
                  n_bins, out):
    """``out[c, label, bin]`` += 1 for every ion within ``r_max`` of centre ``c`` (not itself).

    ``p`` (sorted by cell), ``label`` and ``orig`` (each sorted ion's index in the
    unsorted array) are in cell order; ``centres`` holds unsorted indices and their
    positions in its first three columns.
    """
    r2max = r_max * r_max
    for c in prange(centres.shape[0]):
        _count_around(c, centres, p, label, orig, cell_start, lo, inv_cell, shape, r2max,
                      inv_bin, n_bins, out[c])


@njit(parallel=True, cache=True, nogil=True)
def _shell_sum_kernel(centres, p, label, orig, cell_start, lo, inv_cell, shape, r_max, inv_bin,
                      n_bins, out):
    """``out[block, label, bin]`` += 1 for every ion within ``r_max`` of a centre (not itself),
    the centres dealt round-robin to ``out.shape[0]`` blocks (one writer per block): memory
    blocks x 2 x n_bins, whatever the number of centres."""
    r2max = r_max * r_max
    n_blocks = out.shape[0]
    for blk in prange(n_blocks):
        for c in range(blk, centres.shape[0], n_blocks):
            _count_around(c, centres, p, label, orig, cell_start, lo, inv_cell, shape, r2max,
                          inv_bin, n_bins, out[blk])


class _CellList:
    """The counted ions sorted by cells at least ``r_max`` wide."""

    def __init__(self, xyz: np.ndarray, r_max: float):
        lo = xyz.min(axis=0) - 1e-9
        span = np.maximum(xyz.max(axis=0) - lo, 1e-9)
        cell = max(r_max, float(np.prod(span) / _MAX_CELLS) ** (1.0 / 3.0))
        shape = (np.floor(span / cell).astype(np.int64) + 1)
        idx = np.minimum(np.floor((xyz - lo) / cell).astype(np.int64), shape - 1)
        lin = (idx[:, 0] * shape[1] + idx[:, 1]) * shape[2] + idx[:, 2]
        self.order = np.argsort(lin, kind="stable")
        self.p = np.ascontiguousarray(xyz[self.order])
        self.cell_start = np.searchsorted(lin[self.order], np.arange(int(np.prod(shape)) + 1))
        self.lo, self.inv_cell, self.shape, self.r_max = lo, 1.0 / cell, shape, r_max

    def counts(self, xyz, centres, is_to, n_bins, bin_nm) -> np.ndarray:
        """``(centres, 2, n_bins)``: ions of other species (0) and of B (1) per shell."""
        c = np.empty((len(centres), 4))
        c[:, :3] = xyz[centres]
        c[:, 3] = centres
        out = np.zeros((len(centres), 2, n_bins), np.int64)
        _shell_kernel(c, self.p, is_to[self.order].astype(np.int64), self.order.astype(np.int64),
                      self.cell_start.astype(np.int64), self.lo, self.inv_cell, self.shape,
                      self.r_max, 1.0 / bin_nm, n_bins, out)
        return out

    def summed(self, xyz, centres, is_to, n_bins, bin_nm) -> np.ndarray:
        """``(2, n_bins)``: :meth:`counts` summed over the centres, in memory of
        ``_BLOCKS x 2 x n_bins`` whatever the centres."""
        c = np.empty((len(centres), 4))
        c[:, :3] = xyz[centres]
        c[:, 3] = centres
        out = np.zeros((max(1, min(_BLOCKS, len(centres))), 2, n_bins), np.int64)
        _shell_sum_kernel(c, self.p, is_to[self.order].astype(np.int64),
                          self.order.astype(np.int64), self.cell_start.astype(np.int64),
                          self.lo, self.inv_cell, self.shape, self.r_max, 1.0 / bin_nm, n_bins,
                          out)
        return out.sum(axis=0)


def shell_counts(xyz_nm: np.ndarray, centres: np.ndarray, is_to: np.ndarray, max_distance_nm: float,
                 bin_nm: float) -> np.ndarray:
    """Ions around each centre per shell: ``out[c, 1, s]`` of B, ``out[c, 0, s]`` of the rest.

    Parameters
    ----------
    xyz_nm : ndarray, shape (n, 3)
    centres : ndarray of int, shape (m,)
        Indices of the centres in ``xyz_nm`` (never counted around themselves).
    is_to : ndarray of bool, shape (n,)
        Which ions are B.
    max_distance_nm, bin_nm : float
        Shells ``[s bin, (s + 1) bin)`` below ``max_distance_nm``.

    Returns
    -------
    ndarray of int64, shape (m, 2, n_bins)

    Examples
    --------
    >>> import numpy as np
    >>> from liprobe.spatial.rdf import shell_counts
    >>> xyz = np.array([[0, 0, 0], [0.5, 0, 0], [0, 1.5, 0], [3, 0, 0]], float)
    >>> shell_counts(xyz, np.array([0]), np.array([0, 1, 0, 1], bool), 2.0, 1.0)[0].tolist()
    [[0, 1], [1, 0]]
    """
    n_bins = int(round(max_distance_nm / bin_nm))
    cl = _CellList(np.ascontiguousarray(xyz_nm, np.float64), n_bins * bin_nm)
    return cl.counts(np.asarray(xyz_nm, np.float64), np.asarray(centres, np.int64),
                     np.asarray(is_to, bool), n_bins, bin_nm)


@dataclass(frozen=True)
class PairCorrelation:
    """``g_AB(r)``: the share of B in shells around A over its bulk share.

    Attributes
    ----------
    species_from, species_to : str
    centres : int
        Centres measured (a seeded choice of at most ``max_centres``).
    ions_from, ions_to, ions_counted : int
    bulk_pct : float
        Share of B among the counted ions (%).
    edges_nm : ndarray, shape (n_bins + 1,)
    ions, to_ions : ndarray of int64, shape (n_bins,)
        Counted ions and B ions in each shell, summed over the centres.
    g : ndarray of float64, shape (n_bins,)
        NaN in a shell without ions.
    g_error : ndarray of float64, shape (n_bins,)
        Standard deviation of ``g`` over the relabellings (NaN with one).
    g_random : ndarray of float64, shape (n_bins,)
        Mean ``g`` of the relabellings: the value of random labels, with the
        same centres excluded from their own shells (below 1 when A = B in a
        small selection); compare ``g`` with it, not with 1.
    shuffles, seed : int
    max_centres : int or None
    """

    species_from: str
    species_to: str
    centres: int
    ions_from: int
    ions_to: int
    ions_counted: int
    bulk_pct: float
    edges_nm: np.ndarray = field(repr=False)
    ions: np.ndarray = field(repr=False)
    to_ions: np.ndarray = field(repr=False)
    g: np.ndarray = field(repr=False)
    g_error: np.ndarray = field(repr=False)
    g_random: np.ndarray = field(repr=False)
    shuffles: int
    seed: int
    max_centres: int | None
    excluded: tuple = ()
    selection: dict = field(default_factory=dict)
    warnings: tuple = ()

    @property
    def r_nm(self) -> np.ndarray:
        """Shell centres (nm)."""
        return 0.5 * (self.edges_nm[1:] + self.edges_nm[:-1])

    @property
    def bin_nm(self) -> float:
        return float(self.edges_nm[1] - self.edges_nm[0])

    def rows(self) -> list[dict]:
        return [{"lo_nm": float(self.edges_nm[i]), "hi_nm": float(self.edges_nm[i + 1]),
                 "r_nm": float(self.r_nm[i]), "ions": int(self.ions[i]),
                 "to_ions": int(self.to_ions[i]), "g": float(self.g[i]),
                 "g_err": float(self.g_error[i]), "g_random": float(self.g_random[i])}
                for i in range(len(self.g))]

    def to_dict(self) -> dict:
        def num(v):
            return float(v) if math.isfinite(v) else None

        shells = [{"r_nm": float(self.r_nm[i]), "lo_nm": float(self.edges_nm[i]),
                   "hi_nm": float(self.edges_nm[i + 1]), "ions": int(self.ions[i]),
                   "to_ions": int(self.to_ions[i]), "g": num(self.g[i]),
                   "g_err": num(self.g_error[i]), "g_random": num(self.g_random[i])}
                  for i in range(len(self.g))]
        d = {"from": self.species_from, "to": self.species_to, "centres": self.centres,
             "max_centres": self.max_centres, "ions_from": self.ions_from,
             "ions_to": self.ions_to, "ions_counted": self.ions_counted,
             "bulk_pct": self.bulk_pct, "bin_nm": self.bin_nm,
             "max_distance_nm": float(self.edges_nm[-1]),
             "normalisation": "g = (B ions / all ions in the shell) / (B ions / all ions)",
             "error": f"standard deviation of g over {self.shuffles} random relabelling(s)",
             "shuffles": self.shuffles, "seed": self.seed, "shells": shells,
             "excluded": list(self.excluded), "selection": dict(self.selection),
             "warnings": list(self.warnings)}
        reasons = []
        if (self.ions == 0).any():
            reasons.append("shells without ions have no g (null)")
        if self.shuffles < 2:
            reasons.append("one relabelling gives no scatter: g_err is null")
        if reasons:
            d["null_reason"] = "; ".join(reasons)
        return d


def pair_correlation(run: Run | CountedIons, ranges: RangeTable, species_from, species_to=None,
                     max_distance_nm: float = 5.0, bin_nm: float = 0.1,
                     max_centres: int | None = 2000, shuffles: int = 10, seed: int = 0,
                     exclude=(), selection: dict | None = None) -> PairCorrelation:
    """The pair correlation ``g_AB(r)`` of B around A, normalised by B's bulk composition.

    Parameters
    ----------
    run : Run or CountedIons
        Needs ``x y z`` (nm) and ``mass`` (Da).
    ranges : RangeTable
    species_from : str or iterable of str
        A, the centres: ions (``Cr+``) or elements (``Cr``).
    species_to : str or iterable of str, optional
        B (default: A).
    max_distance_nm, bin_nm : float
        Shells of ``bin_nm`` out to ``max_distance_nm``.
    max_centres : int, optional
        At most this many centres (a seeded choice; None: every ion of A).
    shuffles : int
        Relabellings that give the error.
    seed : int
    exclude : iterable of str
    selection : dict, optional

    Returns
    -------
    PairCorrelation

    References
    ----------
    .. [1] F. De Geuser, W. Lefebvre, D. Blavette, "3D atom probe study of solute
       atoms clustering during natural ageing and pre-ageing of an Al-Mg-Si
       alloy", Philos. Mag. Lett. 86 (2006) 227-234 (radial distribution
       functions normalised by the bulk composition).

    Examples
    --------
    Cr in one half of a box, Ni in the other: around a Cr ion the share of Cr
    is well above its bulk 50 % at 2 nm, so g > 1; Cr shuffled at random
    gives about 1.

    >>> import numpy as np
    >>> import liprobe
    >>> from liprobe import Range, RangeTable, parse_ion
    >>> from liprobe.spatial.rdf import pair_correlation
    >>> table = RangeTable.from_ranges([Range(51.5, 52.5, parse_ion("Cr+")),
    ...                                 Range(57.5, 58.5, parse_ion("Ni+"))])
    >>> xyz = np.random.default_rng(2).uniform(0, 20, (40000, 3))
    >>> run = liprobe.Run.from_arrays(x=xyz[:, 0], y=xyz[:, 1], z=xyz[:, 2],
    ...                               mass=np.where(xyz[:, 0] < 10, 52.0, 58.0))
    >>> pc = pair_correlation(run, table, "Cr", max_distance_nm=3.0, bin_nm=0.5)
    >>> bool(pc.g[4] > 1.5), bool(abs(pc.g_random[4] - 1) < 3 * pc.g_error[4])
    (True, True)
    """
    if not (bin_nm > 0 and math.isfinite(bin_nm)):
        raise AnalysisError(f"the shell width must be a positive number of nm, not {bin_nm}")
    if not (max_distance_nm > 0 and math.isfinite(max_distance_nm)):
        raise AnalysisError(f"the largest distance must be a positive number of nm, not "
                            f"{max_distance_nm}")
    ratio = max_distance_nm / bin_nm              # inf for a tiny shell: no round()
    n_bins = int(round(ratio)) if ratio <= MAX_BINS else MAX_BINS + 1
    if not 1 <= n_bins <= MAX_BINS:
        many = f"{ratio:,.0f}" if math.isfinite(ratio) else "infinitely many"
        raise AnalysisError(f"{max_distance_nm:g} nm in shells of {bin_nm:g} nm makes {many}"
                            f" shells: give 1 to {MAX_BINS:,}")
    if shuffles < 1:
        raise AnalysisError(f"give at least one shuffle for the error, not {shuffles}")
    if max_centres is not None and max_centres < 1:
        raise AnalysisError(f"the most centres must be 1 or more, not {max_centres}")
    ions = run if isinstance(run, CountedIons) else counted_positions(run, ranges, exclude)
    a_kinds = species_kinds(ions, species_from)
    b_kinds = a_kinds if species_to is None else species_kinds(ions, species_to)
    r_max = n_bins * bin_nm
    cells = _CellList(ions.xyz_nm, r_max)
    rng = np.random.default_rng(seed)

    def measure(labels):
        is_a = a_kinds[labels]
        is_b = b_kinds[labels]
        centres = np.flatnonzero(is_a)
        n_a = len(centres)
        if n_a == 0:
            raise AnalysisError(f"no counted ion of {_name(species_from)} in the selection")
        if max_centres is not None and n_a > max_centres:
            centres = np.sort(rng.choice(centres, max_centres, replace=False))
        c = cells.summed(ions.xyz_nm, centres, is_b, n_bins, bin_nm)
        all_ions = c.sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            g = c[1] / all_ions / (is_b.sum() / ions.n)
        return g, all_ions, c[1], len(centres), n_a, int(is_b.sum())

    g, n_all, n_b, n_c, n_a, n_to = measure(ions.kind)
    if n_to == 0:
        raise AnalysisError(f"no counted ion of {_name(species_to)} in the selection")
    rand = np.array([measure(shuffle_labels(ions.kind, ions.xyz_nm[:, 2], rng))[0]
                     for _ in range(shuffles)])
    with warnings.catch_warnings():          # shells without ions: NaN, said in to_dict
        warnings.simplefilter("ignore", RuntimeWarning)
        err = (np.nanstd(rand, axis=0, ddof=1) if shuffles >= 2
               else np.full(n_bins, np.nan))
        g_rand = np.nanmean(rand, axis=0)
    return PairCorrelation(
        species_from=_name(species_from), species_to=_name(species_to or species_from),
        centres=n_c, ions_from=n_a, ions_to=n_to, ions_counted=ions.n,
        bulk_pct=100.0 * n_to / ions.n, edges_nm=bin_nm * np.arange(n_bins + 1, dtype=float),
        ions=n_all, to_ions=n_b, g=g, g_error=err, g_random=g_rand, shuffles=shuffles,
        seed=seed, max_centres=max_centres, excluded=ions.excluded,
        selection=dict(selection or {}), warnings=tuple(ranges.warnings))


def _name(species) -> str:
    return species if isinstance(species, str) else ",".join(species)
