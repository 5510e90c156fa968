"""Nearest-neighbour distances between species, and the composition of each ion's neighbours.

Both measures compare the data with the same data randomly relabelled: the
positions of the counted ions stay where they are and their labels (which
ion each is) are permuted among them, so the comparator has the same
volume, density, edges and detector efficiency as the data; it is computed,
not assumed. The labels are permuted over the whole selection, or only
within slabs along z (``slab_nm``), so that a composition gradient along the
depth (delithiation from the surface) does not read as clustering.

Counted ions are the ranged ions, less those holding an ``exclude`` element
(dropped whole, as in :mod:`liprobe.composition`). A species is an ion
(``Li+``) or an element (``Li``: every ion carrying it), counted as ions;
several species are their union.

- :func:`nearest_neighbours`: the distance from each ion of one species (the
  centres) to its 1st ... k-th nearest ion of another (or of every counted
  ion), as histograms per order, against the same for relabelled ions
  (Stephenson et al. 2007 use these distributions to choose the cluster
  search's ``d_max``; :mod:`liprobe.spatial.clusters`).
- :func:`neighbour_composition`: the share of a species among the k nearest
  counted ions of each of its ions, against labels shuffled within z-slabs;
  the excess over random measures clustering of a major species (Li is about
  30 % of the ions of a cathode, too many for a cluster search), beside the
  frequency distribution analysis (:mod:`liprobe.fda`).

The queries use scipy's :class:`~scipy.spatial.cKDTree` on all cores
(``workers=-1``), chunk by chunk of centres (about 260,000 distances at a
time), into running histograms, sums and sums of squares: memory does not
grow with the centres or with k. The counted ions are held in memory
(positions as float64 and the kind of each, 32 bytes per counted ion) with a
k-d tree over them: measured, the peak grows by about 75 bytes per counted
ion (733 MB for k = 10 on 10 M ions, bench/results/clusters.md), beside the
run's own columns; ``max_centres`` bounds the work.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .._jit import njit
from ..errors import AnalysisError
from ..rangetable import RangeTable
from ..run import Run
from .voxels import counted_ions, ion_kinds

__all__ = ["CountedIons", "counted_positions", "species_kinds", "shuffle_labels",
           "SlabShuffler", "knn_distances", "NeighbourDistances", "nearest_neighbours",
           "NeighbourComposition", "neighbour_composition", "kd_tree", "MAX_K"]

_CHUNK = 1 << 20
#: Highest neighbour order :func:`nearest_neighbours` computes.
MAX_K = 100
#: Most centres of each relabelling in :func:`nearest_neighbours` (a seeded choice; the
#: random histograms are scaled to the measured centres).
RANDOM_CENTRES = 200_000
#: Most histogram bins of :func:`nearest_neighbours`.
MAX_BINS = 100_000
#: Distances held by one chunk of a k-nearest-neighbour query (4 MB, 8 with their indices).
_QUERY_VALUES = 1 << 18


# -- the counted ions -------------------------------------------------------------

@dataclass(frozen=True)
class CountedIons:
    """The counted ions of a selection: where each is and which ion it is.

    Attributes
    ----------
    xyz_nm : ndarray of float64, shape (n, 3)
        Positions (nm), in evaporation order.
    kind : ndarray of int64, shape (n,)
        Index of each ion in ``table.ions``.
    table : RangeTable
    elements : tuple of str
        Every element of the table (columns of ``atoms_per_kind``).
    atoms_per_kind : ndarray of int64, shape (len(table.ions), len(elements))
        Atoms of each ion (rows of excluded ions are zero).
    excluded : tuple of str
    ions_total : int
        Ions of the selection, counted or not.
    """

    xyz_nm: np.ndarray = field(repr=False)
    kind: np.ndarray = field(repr=False)
    table: RangeTable = field(repr=False)
    elements: tuple
    atoms_per_kind: np.ndarray = field(repr=False)
    excluded: tuple
    ions_total: int

    @property
    def n(self) -> int:
        return len(self.kind)

    def mask(self, kinds: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
        """Which counted ions are of ``kinds`` (a bool array over ``table.ions``), by
        ``labels`` (default: the true kinds)."""
        return kinds[self.kind if labels is None else labels]

    def reported_elements(self) -> tuple:
        """Elements carried by a counted ion, in table order."""
        keep = self.atoms_per_kind.sum(axis=0) > 0
        return tuple(el for el, k in zip(self.elements, keep) if k)


def counted_positions(run: Run, ranges: RangeTable, exclude=(),
                      chunk_ions: int = _CHUNK) -> CountedIons:
    """Positions and ion kinds of the counted ions of ``run``, read chunk by chunk.

    Parameters
    ----------
    run : Run
        Needs ``x y z`` (nm) and ``mass`` (Da).
    ranges : RangeTable
    exclude : iterable of str
        Elements whose ions are dropped whole.
    chunk_ions : int

    Returns
    -------
    CountedIons

    Raises
    ------
    ColumnError
        A missing column.
    AnalysisError
        No counted ions.
    """
    for c in ("x", "y", "z", "mass"):
        run.source(c)              # ColumnError naming the column
    all_els, _rep, win_ion, matrix = counted_ions(ranges, exclude)
    parts, kinds = [], []
    gens = [run.chunks(c, chunk_ions) for c in ("x", "y", "z", "mass")]
    for (_s, x), (_s2, y), (_s3, z), (_s4, mass) in zip(*gens):
        k = ion_kinds(mass, ranges, win_ion)
        keep = k >= 0
        parts.append(np.stack([x[keep], y[keep], z[keep]], axis=1).astype(np.float64))
        kinds.append(k[keep])
    xyz = np.concatenate(parts) if parts else np.zeros((0, 3))
    kind = np.concatenate(kinds) if kinds else np.zeros(0, np.int64)
    if len(kind) == 0:
        raise AnalysisError("no ranged (non-excluded) ions in the selection", run.path)
    return CountedIons(xyz_nm=np.ascontiguousarray(xyz), kind=kind.astype(np.int64),
                       table=ranges, elements=tuple(all_els),
                       atoms_per_kind=np.asarray(matrix, np.int64), excluded=tuple(exclude),
                       ions_total=run.n_ions)


def species_kinds(ions: CountedIons, species) -> np.ndarray:
    """Which ions of ``ions.table`` a species names: ``Li+`` (that ion), ``Li`` (every ion
    carrying Li), or several of them (their union).

    Returns
    -------
    ndarray of bool, shape (len(table.ions),)

    Raises
    ------
    AnalysisError
        A species no counted ion is, or one that is excluded.
    ValueError
        Text that is neither an ion nor an element.
    """
    from ..chemistry import Ion, parse_species
    from ..rangetable import unranged_reason

    table = ions.table
    if isinstance(species, str):
        species = (species,)
    out = np.zeros(len(table.ions), bool)
    counted = ions.atoms_per_kind.sum(axis=1) > 0 if len(table.ions) else out
    for text in species:
        sp = parse_species(text)
        if isinstance(sp, Ion):
            sel = np.array([ion == sp for ion in table.ions], bool)
        else:
            sel = np.array([ion.count(sp) > 0 for ion in table.ions], bool)
        if not sel.any():
            raise AnalysisError(unranged_reason(sp, table) or f"{text} is not ranged",
                                table.path)
        if not (sel & counted).any():
            raise AnalysisError(f"{text} is excluded (--exclude "
                                f"{','.join(ions.excluded)}): nothing left to measure")
        out |= sel & counted
    return out


@njit(cache=True, nogil=True)
def _permute_segments(values, starts, u):
    """Fisher-Yates shuffle of ``values[starts[s]:starts[s + 1]]`` in place, for every s,
    with the uniform numbers ``u`` (one per value)."""
    for s in range(starts.shape[0] - 1):
        a = starts[s]
        for i in range(starts[s + 1] - 1, a, -1):
            j = a + int(u[i] * (i - a + 1))
            if j > i:
                j = i
            values[i], values[j] = values[j], values[i]


class SlabShuffler:
    """Permutes labels within slabs of ``slab_nm`` along z (or over all ions when None),
    the slabs sorted once: each call costs one pass over the labels."""

    def __init__(self, z_nm: np.ndarray, slab_nm: float | None = None):
        self.slab_nm = slab_nm
        if slab_nm is None:
            self.order = None
            return
        slab = np.floor(np.asarray(z_nm, np.float64) / slab_nm).astype(np.int64)
        self.order = np.argsort(slab, kind="stable")
        s = slab[self.order]
        self.starts = np.concatenate([[0], np.flatnonzero(s[1:] != s[:-1]) + 1, [len(s)]]
                                     ).astype(np.int64)

    def __call__(self, kind: np.ndarray, rng) -> np.ndarray:
        if self.order is None:
            return kind[rng.permutation(len(kind))]
        v = np.ascontiguousarray(kind[self.order])
        _permute_segments(v, self.starts, rng.random(len(v)))
        out = np.empty_like(kind)
        out[self.order] = v
        return out


def shuffle_labels(kind: np.ndarray, z_nm: np.ndarray, rng, slab_nm: float | None = None
                   ) -> np.ndarray:
    """``kind`` permuted at random among the ions, within slabs of ``slab_nm`` along z (or
    over them all when ``slab_nm`` is None): each slab keeps its own composition.

    Examples
    --------
    >>> import numpy as np
    >>> from liprobe.spatial.neighbours import shuffle_labels
    >>> kind = np.array([0, 0, 0, 1, 1, 1])
    >>> z = np.array([0.1, 0.2, 0.3, 1.1, 1.2, 1.3])
    >>> shuffle_labels(kind, z, np.random.default_rng(0), slab_nm=1.0).tolist()
    [0, 0, 0, 1, 1, 1]
    """
    return SlabShuffler(z_nm, slab_nm)(kind, rng)


def kd_tree(points: np.ndarray):
    """A :class:`scipy.spatial.cKDTree` of ``points`` built for speed (unbalanced, not
    compacted: twice as fast to build, as fast to query on APT data)."""
    from scipy.spatial import cKDTree

    return cKDTree(points, balanced_tree=False, compact_nodes=False)


def knn_distances(tree, points: np.ndarray, k: int, self_index: np.ndarray | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Distances (nm) and indices of the ``k`` nearest points of ``tree`` to each point.

    Parameters
    ----------
    tree : scipy.spatial.cKDTree
    points : ndarray, shape (n, 3)
    k : int
    self_index : ndarray of int, shape (n,), optional
        Index in the tree of each point itself (-1 where it is not in the tree):
        that point is skipped, so the first neighbour is another ion.

    Returns
    -------
    distances : ndarray of float64, shape (n, k)
        ``inf`` where the tree has fewer points.
    indices : ndarray of int64, shape (n, k)
        ``len(tree.data)`` where the tree has fewer points.
    """
    if self_index is None:
        d, i = tree.query(points, k=k, workers=-1)
        return d.reshape(len(points), k), i.reshape(len(points), k)
    d, i = tree.query(points, k=k + 1, workers=-1)
    d, i = d.reshape(len(points), k + 1), i.reshape(len(points), k + 1)
    drop = i == np.asarray(self_index)[:, None]
    drop[~drop.any(axis=1), -1] = True            # not found (or not in the tree): the last
    keep = ~drop
    return d[keep].reshape(len(points), k), i[keep].reshape(len(points), k)


def _self_index(from_idx: np.ndarray, to_mask: np.ndarray | None) -> np.ndarray:
    """Index of each centre (an index into the counted ions) in the target set."""
    if to_mask is None:
        return from_idx
    pos = np.cumsum(to_mask) - 1
    return np.where(to_mask[from_idx], pos[from_idx], -1)


def _centres(mask: np.ndarray, max_centres: int | None, rng) -> tuple[np.ndarray, int]:
    idx = np.flatnonzero(mask)
    n = len(idx)
    if max_centres is not None and n > max_centres:
        idx = np.sort(rng.choice(idx, max_centres, replace=False))
    return idx, n


def _names(species) -> str:
    return species if isinstance(species, str) else ",".join(species)


# -- distances -------------------------------------------------------------------

def _chunks(n: int, k: int):
    """Slices of the centres so that a query holds about ``_QUERY_VALUES`` distances."""
    step = max(1, _QUERY_VALUES // (k + 1))
    for a in range(0, n, step):
        yield a, min(a + step, n)


class _Histograms:
    """Running histograms (bins of ``bin_nm`` from 0), sums and sums of squares of the
    distances of each order, fed chunk by chunk. Without a fixed number of bins the
    histograms grow with the largest distance seen, up to :data:`MAX_BINS`; past it a
    distance counts only as beyond."""

    def __init__(self, k: int, bin_nm: float, n_bins: int | None):
        self.k, self.bin, self.cap = k, bin_nm, MAX_BINS if n_bins is None else n_bins
        self.counts = np.zeros((k, n_bins if n_bins is not None else 1), np.int64)
        self.beyond = np.zeros(k, np.int64)
        self.n = 0
        self.shift: np.ndarray | None = None
        self.s1 = np.zeros(k)
        self.s2 = np.zeros(k)

    def add(self, d: np.ndarray) -> None:
        if len(d) == 0:
            return
        if self.shift is None:
            self.shift = d.mean(axis=0)
        x = d - self.shift
        self.s1 += x.sum(axis=0)
        self.s2 += (x * x).sum(axis=0)
        self.n += len(d)
        with np.errstate(over="ignore"):          # a tiny bin: inf, capped below
            b = np.floor(np.minimum(d / self.bin, self.cap)).astype(np.int64)
        inside = b < self.cap
        width = self.counts.shape[1]
        top = int(b[inside].max()) + 1 if inside.any() else 0
        if top > width:
            grown = np.zeros((self.k, max(top, min(2 * width, self.cap))), np.int64)
            grown[:, :width] = self.counts
            self.counts, width = grown, grown.shape[1]
        order = np.broadcast_to(np.arange(self.k), b.shape)
        self.counts += np.bincount((order[inside] * width + b[inside]),
                                   minlength=self.k * width).reshape(self.k, width)
        self.beyond += (~inside).sum(axis=0)

    def mean(self) -> np.ndarray:
        if self.n == 0 or self.shift is None:
            return np.full(self.k, np.nan)
        return self.shift + self.s1 / self.n

    def sem(self) -> np.ndarray:
        """Standard error of the mean (NaN below two values)."""
        if self.n < 2:
            return np.full(self.k, np.nan)
        var = np.maximum(self.s2 - self.s1 ** 2 / self.n, 0.0) / (self.n - 1)
        return np.sqrt(var / self.n)

    def median(self) -> np.ndarray:
        """The median of each order from its histogram, interpolated linearly within the
        bin that holds it (NaN when it is past the last bin)."""
        out = np.full(self.k, np.nan)
        for j in range(self.k):
            c = np.cumsum(self.counts[j])
            half = 0.5 * self.n
            if self.n == 0 or c[-1] < half:
                continue
            b = int(np.searchsorted(c, half))
            below = c[b - 1] if b else 0
            out[j] = self.bin * (b + (half - below) / self.counts[j, b])
        return out

    def quantile_bin(self, other: _Histograms, q: float) -> int | None:
        """Bin holding the ``q`` quantile of the last order of both histograms together
        (None past the last bin)."""
        w = max(self.counts.shape[1], other.counts.shape[1])
        c = np.zeros(w, np.int64)
        c[:self.counts.shape[1]] += self.counts[-1]
        c[:other.counts.shape[1]] += other.counts[-1]
        total = c.sum() + self.beyond[-1] + other.beyond[-1]
        cum = np.cumsum(c)
        if total == 0 or cum[-1] < q * total:
            return None
        return int(np.searchsorted(cum, q * total))

    def cut(self, n_bins: int) -> tuple[np.ndarray, np.ndarray]:
        """The counts of the first ``n_bins`` bins, and how many are past them."""
        out = np.zeros((self.k, n_bins), np.int64)
        w = min(n_bins, self.counts.shape[1])
        out[:, :w] = self.counts[:, :w]
        return out, self.n - out.sum(axis=1)


@dataclass(frozen=True)
class NeighbourDistances:
    """k-th nearest-neighbour distance distributions of one species to another.

    Attributes
    ----------
    species_from, species_to : str
        The centres' species and the targets' (``"all"``: every counted ion).
    k : int
        Orders 1 ... k.
    centres : int
        Centres measured (a seeded choice when the species has more than
        ``max_centres`` ions).
    ions_from, ions_to : int
        Counted ions of each species.
    edges_nm : ndarray of float64, shape (n_bins + 1,)
    counts : ndarray of int64, shape (k, n_bins)
        Centres whose j-th neighbour (row j - 1) is in each bin.
    random_counts : ndarray of float64, shape (k, n_bins)
        The same for relabelled ions, mean over ``shuffles``, scaled to
        ``centres`` (each relabelling measures at most ``random_centres``).
    beyond, random_beyond : ndarray, shape (k,)
        Distances past the last edge.
    mean_nm, mean_err_nm, median_nm : ndarray of float64, shape (k,)
        Of the measured distances; the error is the standard error of the mean
        over the centres (NaN, null in :meth:`to_dict` with a reason, for a
        single centre); the median is read from the histogram, interpolated
        within the bin that holds it (to within ``bin_nm``).
    random_mean_nm, random_mean_err_nm, random_median_nm : ndarray, shape (k,)
        Of the relabelled ions (pooled over the shuffles).
    random_centres : int
        Centres measured in each relabelling.
    shuffles, seed : int
    slab_nm : float or None
        Slab thickness of the relabelling (None: over the whole selection).
    reasons : dict
        Why a value is null in :meth:`to_dict`.
    random_kth_each : ndarray of int64, shape (shuffles, n_bins)
        The k-th order's histogram of each relabelling (raw counts of its
        ``random_centres`` centres): the spread between relabellings.
    """

    species_from: str
    species_to: str
    k: int
    centres: int
    ions_from: int
    ions_to: int
    edges_nm: np.ndarray = field(repr=False)
    counts: np.ndarray = field(repr=False)
    random_counts: np.ndarray = field(repr=False)
    beyond: np.ndarray = field(repr=False)
    random_beyond: np.ndarray = field(repr=False)
    mean_nm: np.ndarray = field(repr=False)
    mean_err_nm: np.ndarray = field(repr=False)
    median_nm: np.ndarray = field(repr=False)
    random_mean_nm: np.ndarray = field(repr=False)
    random_mean_err_nm: np.ndarray = field(repr=False)
    random_median_nm: np.ndarray = field(repr=False)
    random_centres: int
    shuffles: int
    seed: int
    slab_nm: float | None
    excluded: tuple = ()
    selection: dict = field(default_factory=dict)
    warnings: tuple = ()
    reasons: dict = field(default_factory=dict)
    random_kth_each: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.int64),
                                        repr=False)

    @property
    def centres_nm(self) -> np.ndarray:
        return 0.5 * (self.edges_nm[1:] + self.edges_nm[:-1])

    @property
    def bin_nm(self) -> float:
        return float(self.edges_nm[1] - self.edges_nm[0])

    def rows(self) -> list[dict]:
        """One dict per bin: its edges, then the measured and random counts per order."""
        out = []
        for b in range(len(self.edges_nm) - 1):
            row = {"lo_nm": float(self.edges_nm[b]), "hi_nm": float(self.edges_nm[b + 1])}
            for j in range(self.k):
                row[f"nn{j + 1}"] = int(self.counts[j, b])
                row[f"nn{j + 1}_random"] = float(self.random_counts[j, b])
            out.append(row)
        return out

    def to_dict(self) -> dict:
        def num(v):
            return float(v) if math.isfinite(v) else None

        orders = []
        for j in range(self.k):
            orders.append({
                "k": j + 1, "mean_nm": float(self.mean_nm[j]),
                "mean_err_nm": num(self.mean_err_nm[j]),
                "median_nm": num(self.median_nm[j]),
                "random_mean_nm": float(self.random_mean_nm[j]),
                "random_mean_err_nm": num(self.random_mean_err_nm[j]),
                "random_median_nm": num(self.random_median_nm[j]),
                "counts": self.counts[j].tolist(),
                "random_counts": [float(v) for v in self.random_counts[j]],
                "beyond": int(self.beyond[j]), "random_beyond": float(self.random_beyond[j])})
        return {"from": self.species_from, "to": self.species_to, "k": self.k,
                "centres": self.centres, "ions_from": self.ions_from, "ions_to": self.ions_to,
                "bin_nm": self.bin_nm, "edges_nm": self.edges_nm.tolist(),
                "shuffles": self.shuffles, "seed": self.seed, "slab_nm": self.slab_nm,
                "random_centres": self.random_centres,
                "random": ("the same ions' labels permuted " +
                           ("over the whole selection" if self.slab_nm is None else
                            f"within z-slabs of {self.slab_nm:g} nm") +
                           f", mean of {self.shuffles} permutation(s) of "
                           f"{self.random_centres:,} centres each, counts scaled to "
                           f"{self.centres:,}"),
                "mean_error": "standard error of the mean over the centres",
                "median": "from the histogram, interpolated within its bin",
                "reasons": dict(self.reasons),
                "orders": orders, "excluded": list(self.excluded),
                "selection": dict(self.selection), "warnings": list(self.warnings)}


def _check_common(k: int, shuffles: int, slab_nm, max_centres) -> None:
    if not 1 <= k <= MAX_K:
        raise AnalysisError(f"the neighbour order k must be 1 to {MAX_K}, not {k}")
    if shuffles < 1:
        raise AnalysisError(f"give at least one shuffle for the random comparison, not "
                            f"{shuffles}")
    if slab_nm is not None and not (slab_nm > 0 and math.isfinite(slab_nm)):
        raise AnalysisError(f"the slab thickness must be a positive number of nm, not "
                            f"{slab_nm}")
    if max_centres is not None and max_centres < 1:
        raise AnalysisError(f"the most centres must be 1 or more, not {max_centres}")


def nearest_neighbours(run: Run | CountedIons, ranges: RangeTable, species_from,
                       species_to=None, k: int = 5, bin_nm: float = 0.02,
                       max_distance_nm: float | None = None, shuffles: int = 1, seed: int = 0,
                       slab_nm: float | None = None, max_centres: int | None = None,
                       random_centres: int | None = RANDOM_CENTRES, exclude=(),
                       selection: dict | None = None) -> NeighbourDistances:
    """1st to k-th nearest-neighbour distances of one species to another, against random.

    Parameters
    ----------
    run : Run or CountedIons
        Needs ``x y z`` (nm) and ``mass`` (Da) (or the counted ions, already read).
    ranges : RangeTable
    species_from : str or iterable of str
        The centres: ions (``Cr+``) or elements (``Cr``).
    species_to : str or iterable of str, optional
        The neighbours (default: every counted ion). A centre is never its own
        neighbour.
    k : int
        Highest order.
    bin_nm : float
        Histogram bin width (nm).
    max_distance_nm : float, optional
        Last edge (default: the upper edge of the bin that holds the 99.9th
        percentile of the k-th distances, measured and random).
    shuffles : int
        Random relabellings averaged for the comparator.
    seed : int
    slab_nm : float, optional
        Relabel within z-slabs this thick (default: over the whole selection).
    max_centres : int, optional
        Measure at most this many centres (a seeded choice), in the data and in
        each relabelling.
    random_centres : int, optional
        At most this many centres in each relabelling (a seeded choice; None: as
        many as measured): the comparator's histograms are smooth long before
        a million centres, and each centre is a k-d tree query.
    exclude : iterable of str
        Elements whose ions are dropped whole.
    selection : dict, optional

    Returns
    -------
    NeighbourDistances

    Raises
    ------
    AnalysisError
        A species not ranged, too few ions, bad parameters.

    References
    ----------
    .. [1] L. T. Stephenson, M. P. Moody, P. V. Liddicoat, S. P. Ringer, "New
       techniques for the analysis of fine-scaled clustering phenomena within
       atom probe tomography (APT) data", Microsc. Microanal. 13 (2007) 448-463
       (k-th nearest-neighbour distributions against randomly labelled data).

    Examples
    --------
    Cr on a cubic lattice of 1 nm among Ni ions at the cube centres: the first
    Cr neighbour of a Cr ion is 1 nm away, the first of any ion sqrt(3)/2 nm.

    >>> import numpy as np
    >>> import liprobe
    >>> from liprobe import Range, RangeTable, parse_ion
    >>> from liprobe.spatial.neighbours import nearest_neighbours
    >>> table = RangeTable.from_ranges([Range(51.5, 52.5, parse_ion("Cr+")),
    ...                                 Range(57.5, 58.5, parse_ion("Ni+"))])
    >>> g = np.stack(np.meshgrid(*[np.arange(8.0)] * 3, indexing="ij"), -1).reshape(-1, 3)
    >>> xyz = np.vstack([g, g + 0.5])
    >>> run = liprobe.Run.from_arrays(x=xyz[:, 0], y=xyz[:, 1], z=xyz[:, 2],
    ...                               mass=np.repeat([52.0, 58.0], len(g)))
    >>> nn = nearest_neighbours(run, table, "Cr", "Cr", k=1, bin_nm=0.1)
    >>> float(nn.mean_nm[0]), nn.centres, nn.ions_to
    (1.0, 512, 512)
    >>> print(f"{nearest_neighbours(run, table, 'Cr', k=1).mean_nm[0]:.3f}")
    0.866
    """
    if not (bin_nm > 0 and math.isfinite(bin_nm)):
        raise AnalysisError(f"the bin width must be a positive number of nm, not {bin_nm}")
    if max_distance_nm is not None and not (max_distance_nm > 0
                                            and math.isfinite(max_distance_nm)):
        raise AnalysisError(f"the largest distance must be a positive number of nm, not "
                            f"{max_distance_nm}")
    _check_common(k, shuffles, slab_nm, max_centres)
    if max_distance_nm is not None and not max_distance_nm / bin_nm <= MAX_BINS:
        raise AnalysisError(f"{max_distance_nm / bin_nm:,.0f} bins of {bin_nm:g} nm is above "
                            f"the limit of {MAX_BINS:,}: give wider bins or a shorter distance")
    if max_distance_nm is not None and round(max_distance_nm / bin_nm) < 1:
        raise AnalysisError(f"the largest distance {max_distance_nm:g} nm is less than one "
                            f"bin of {bin_nm:g} nm")
    ions = run if isinstance(run, CountedIons) else counted_positions(run, ranges, exclude)
    from_kinds = species_kinds(ions, species_from)
    to_kinds = None if species_to is None else species_kinds(ions, species_to)
    rng = np.random.default_rng(seed)

    def measure(labels, limit, hist, kth=None):
        """Query the centres chunk by chunk into ``hist`` (and the k-th order into ``kth``):
        memory bounded by the chunk, whatever the centres and k."""
        fmask = ions.mask(from_kinds, labels)
        centres, n_from = _centres(fmask, limit, rng)
        if to_kinds is None:
            tree, to_mask, n_to = all_tree, None, ions.n
        else:
            to_mask = ions.mask(to_kinds, labels)
            n_to = int(to_mask.sum())
            tree = kd_tree(ions.xyz_nm[to_mask]) if n_to else None
        if len(centres) == 0:
            raise AnalysisError(f"no counted ion of {_names(species_from)} in the selection")
        self_idx = _self_index(centres, to_mask)
        others = n_to - (1 if (self_idx >= 0).any() else 0)
        if tree is None or others < k:
            raise AnalysisError(f"{_names(species_to or 'all')} has {n_to:,} counted ion(s): "
                                f"too few for {k} neighbours of each centre")
        for a, b in _chunks(len(centres), k):
            d, _i = knn_distances(tree, ions.xyz_nm[centres[a:b]], k, self_idx[a:b])
            hist.add(d)
            if kth is not None:
                kth.add(d[:, -1:])
        return len(centres), n_from, n_to

    all_tree = kd_tree(ions.xyz_nm) if to_kinds is None else None
    fixed = None if max_distance_nm is None else int(round(max_distance_nm / bin_nm))
    if fixed is not None and fixed > MAX_BINS:
        raise AnalysisError(f"{fixed:,} bins of {bin_nm:g} nm is above the limit of "
                            f"{MAX_BINS:,}: give wider bins or a shorter distance")
    data = _Histograms(k, bin_nm, fixed)
    n_c, n_from, n_to = measure(None, max_centres, data)
    limit = min(n_c, random_centres or n_c)
    shuffle = SlabShuffler(ions.xyz_nm[:, 2], slab_nm)
    pooled = _Histograms(k, bin_nm, fixed)
    kth = []                                    # each relabelling's k-th order (raw counts)
    for _ in range(shuffles):
        one = _Histograms(1, bin_nm, fixed)
        measure(shuffle(ions.kind, rng), limit, pooled, one)
        kth.append(one)
    if fixed is None:
        top = data.quantile_bin(pooled, 0.999)
        if top is None:
            raise AnalysisError(f"more than {MAX_BINS:,} bins of {bin_nm:g} nm hold the "
                                f"99.9th percentile of the {k}-th distances: give wider bins "
                                "or --max-distance")
        n_bins = max(top + 1, 1)
    else:
        n_bins = fixed
    edges = bin_nm * np.arange(n_bins + 1, dtype=np.float64)
    counts, beyond = data.cut(n_bins)
    r_counts, r_beyond = pooled.cut(n_bins)
    n_r = pooled.n
    scale = n_c / limit
    reasons = {}
    mean_err = data.sem()
    if n_c < 2:
        reasons["mean_err_nm"] = f"{n_c} centre: no scatter to give the error of the mean"
    r_err = pooled.sem()
    if n_r < 2:
        reasons["random_mean_err_nm"] = f"{n_r} centre: no scatter to give the error"
    median, r_median = data.median(), pooled.median()
    if not np.isfinite(median).all() or not np.isfinite(r_median).all():
        reasons["median_nm"] = "half the distances or more are past the last edge"
    return NeighbourDistances(
        species_from=_names(species_from), species_to=_names(species_to or "all"), k=k,
        centres=n_c, ions_from=n_from, ions_to=n_to, edges_nm=edges, counts=counts,
        random_counts=scale * r_counts / shuffles,
        beyond=beyond, random_beyond=scale * r_beyond / shuffles,
        mean_nm=data.mean(), mean_err_nm=mean_err, median_nm=median,
        random_mean_nm=pooled.mean(), random_mean_err_nm=r_err, random_median_nm=r_median,
        random_centres=limit, shuffles=shuffles, seed=seed,
        slab_nm=slab_nm, excluded=ions.excluded, selection=dict(selection or {}),
        warnings=tuple(ranges.warnings), reasons=reasons,
        random_kth_each=np.stack([h.cut(n_bins)[0][0] for h in kth]))


# -- the composition of the neighbourhood ------------------------------------------

@dataclass(frozen=True)
class NeighbourComposition:
    """The share of a species among the k nearest counted ions of its own ions, against
    labels shuffled within z-slabs.

    Attributes
    ----------
    species, to : str
        The centres, and the species whose share among their neighbours is
        measured (by default the same).
    k : int
    slab_nm : float or None
    centres : int
        Centres measured (a seeded choice of at most ``max_centres``).
    ions_species : int
        Counted ions of ``species``.
    ions_counted : int
    bulk_pct : float
        Share of ``to`` among all counted ions (%).
    fraction_pct : float
        Mean share of ``to`` among the k nearest neighbours of each centre (%).
    random_fraction_pct : float
        The same, mean over ``shuffles`` relabellings.
    random_sd_pct : float or None
        Standard deviation of the relabellings' values (None with one shuffle or
        one centre, the reason in ``reasons``).
    excess_pct, excess_err_pct : float or None
        ``fraction - random_fraction`` (percentage points) and its 1-sigma error,
        ``random_sd * sqrt(1 + 1/shuffles)`` (the scatter of one labelling, which
        counts the overlap of neighbourhoods, plus that of the random mean).
    reasons : dict
        Why a value is None.
    """

    species: str
    to: str
    k: int
    slab_nm: float | None
    centres: int
    ions_species: int
    ions_counted: int
    bulk_pct: float
    fraction_pct: float
    random_fraction_pct: float
    random_sd_pct: float | None
    excess_pct: float
    excess_err_pct: float | None
    shuffles: int
    seed: int
    max_centres: int | None
    excluded: tuple = ()
    reasons: dict = field(default_factory=dict)
    selection: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"species": self.species, "to": self.to, "k": self.k, "slab_nm": self.slab_nm,
                "centres": self.centres, "max_centres": self.max_centres,
                "ions_species": self.ions_species, "ions_counted": self.ions_counted,
                "bulk_pct": self.bulk_pct, "fraction_pct": self.fraction_pct,
                "random_fraction_pct": self.random_fraction_pct,
                "random_sd_pct": self.random_sd_pct, "excess_pct": self.excess_pct,
                "excess_err_pct": self.excess_err_pct, "shuffles": self.shuffles,
                "seed": self.seed, "excluded": list(self.excluded),
                "reasons": dict(self.reasons), "selection": dict(self.selection)}


def neighbour_composition(run: Run | CountedIons, ranges: RangeTable, species, to=None,
                          k: int = 10, slab_nm: float | None = 1.0,
                          max_centres: int | None = 20_000, shuffles: int = 8, seed: int = 0,
                          exclude=(), selection: dict | None = None) -> NeighbourComposition:
    """Share of ``to`` (default ``species``) among the k nearest counted ions of each ion of
    ``species``, and its excess over labels shuffled within z-slabs.

    Parameters
    ----------
    run : Run or CountedIons
    ranges : RangeTable
    species : str or iterable of str
        The centres (``Li``: every Li-bearing ion).
    to : str or iterable of str, optional
        The species counted among the neighbours (default: ``species``).
    k : int
        Neighbours per centre (the centre itself is not one).
    slab_nm : float, optional
        Shuffle the labels within z-slabs this thick (None: over the whole
        selection).
    max_centres : int, optional
        At most this many centres (a seeded choice), in the data and in each
        relabelling: the work is bounded whatever the run's size.
    shuffles : int
        Relabellings (two or more give the error).
    seed : int
    exclude : iterable of str
    selection : dict, optional

    Returns
    -------
    NeighbourComposition

    References
    ----------
    .. [1] L. T. Stephenson, A. V. Ceguerra, T. Li, T. Rojhirunsakool, S. Nag,
       R. Banerjee, J. M. Cairney, S. P. Ringer, "Point-by-point compositional
       analysis for atom probe tomography", MethodsX 1 (2014) 12-18
       (compositions of k-nearest-neighbour blocks).

    Examples
    --------
    Cr on one side of a plane, Ni on the other: a Cr ion's 10 nearest neighbours
    are nearly all Cr, far more than the 50 % of randomly shuffled labels.

    >>> import numpy as np
    >>> import liprobe
    >>> from liprobe import Range, RangeTable, parse_ion
    >>> from liprobe.spatial.neighbours import neighbour_composition
    >>> table = RangeTable.from_ranges([Range(51.5, 52.5, parse_ion("Cr+")),
    ...                                 Range(57.5, 58.5, parse_ion("Ni+"))])
    >>> xyz = np.random.default_rng(1).uniform(0, 10, (4000, 3))
    >>> run = liprobe.Run.from_arrays(x=xyz[:, 0], y=xyz[:, 1], z=xyz[:, 2],
    ...                               mass=np.where(xyz[:, 0] < 5, 52.0, 58.0))
    >>> nc = neighbour_composition(run, table, "Cr", k=10)
    >>> nc.fraction_pct > 90, abs(nc.random_fraction_pct - 50) < 2, nc.excess_pct > 40
    (True, True, True)
    """
    _check_common(k, shuffles, slab_nm, max_centres)
    ions = run if isinstance(run, CountedIons) else counted_positions(run, ranges, exclude)
    sp_kinds = species_kinds(ions, species)
    to_kinds = sp_kinds if to is None else species_kinds(ions, to)
    if ions.n <= k:
        raise AnalysisError(f"{ions.n:,} counted ion(s): too few for {k} neighbours each")
    tree = kd_tree(ions.xyz_nm)
    rng = np.random.default_rng(seed)

    def share(labels):
        centres, n_sp = _centres(sp_kinds[labels], max_centres, rng)
        if len(centres) == 0:
            raise AnalysisError(f"no counted ion of {_names(species)} in the selection")
        hits = 0
        for a, b in _chunks(len(centres), k):
            _d, idx = knn_distances(tree, ions.xyz_nm[centres[a:b]], k, centres[a:b])
            hits += int(to_kinds[labels[idx]].sum())
        return 100.0 * hits / (len(centres) * k), len(centres), n_sp

    measured, n_c, n_sp = share(ions.kind)
    shuffle = SlabShuffler(ions.xyz_nm[:, 2], slab_nm)
    rand = np.array([share(shuffle(ions.kind, rng))[0] for _ in range(shuffles)])
    reasons = {}
    sd = err = None
    if shuffles < 2:
        reasons["excess_err_pct"] = "one shuffle gives no scatter: give two or more"
    elif n_c < 2:
        reasons["excess_err_pct"] = (f"{n_c} centre: the relabellings' scatter is not the "
                                     "error of a mean over centres; give more centres")
    else:
        sd = float(rand.std(ddof=1))
        err = sd * math.sqrt(1.0 + 1.0 / shuffles)
    return NeighbourComposition(
        species=_names(species), to=_names(to if to is not None else species), k=k,
        slab_nm=slab_nm, centres=n_c, ions_species=n_sp, ions_counted=ions.n,
        bulk_pct=100.0 * float(to_kinds[ions.kind].mean()), fraction_pct=measured,
        random_fraction_pct=float(rand.mean()), random_sd_pct=sd,
        excess_pct=measured - float(rand.mean()), excess_err_pct=err, shuffles=shuffles,
        seed=seed, max_centres=max_centres, excluded=ions.excluded, reasons=reasons,
        selection=dict(selection or {}))
