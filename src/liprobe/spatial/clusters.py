"""Cluster search: maximum separation (or DBSCAN), per-cluster composition, a random baseline.

The maximum-separation method (Hyde & English 2000; Vaumousse et al. 2003),
with the parameters named as in the literature:

1. ``d_max``: two solute ions (the ``species``) within ``d_max`` of each other
   belong to the same cluster; clusters are the connected components of that
   graph.
2. ``N_min``: a cluster holds at least ``N_min`` solute ions; smaller groups
   are matrix.
3. envelope ``L``: every other counted ion within ``L`` of a cluster's solute
   ion joins the cluster of the nearest one.
4. erosion ``d_erosion``: an ion that joined through the envelope is removed
   again when an unclustered ion lies within ``d_erosion`` of it (it is on the
   cluster's surface, where the envelope reaches past the solute). Erosion
   removes only ions the envelope added, never a cluster's solute ions.

"Within" is ``distance <= d`` everywhere in this module (linkage, DBSCAN's
neighbourhoods, envelope and erosion): an ion exactly ``d_max`` away is linked.
The linkage holds memory proportional to the solute ions, never to their pairs
(a grid of cells and union-find; :func:`link_solute`).

``L`` must be long enough that every matrix ion inside a cluster has a solute
ion within ``L`` (default ``d_max``); ``L - d_erosion`` is about how far the
cluster then reaches past its outermost solute ions. The default
``d_erosion = L`` ends a cluster slightly inside them (the envelope's surface
is scalloped), which raises the solute's share by a few at.% on small
clusters; a ``d_erosion`` a little shorter than ``L`` (by about half the
spacing of the ions) counts them whole (tests/analyses/test_clusters.py).

DBSCAN (Ester et al. 1996) replaces step 1: a solute ion with at least
``core_points`` solute ions within ``d_max`` (itself included) is a core
point; core points within ``d_max`` are linked, and every other solute
ion within ``d_max`` of a core point joins the cluster of the nearest one
(the rest is noise). Steps 2 to 4 follow as above.

Choosing the parameters (Stephenson et al. 2007), when they are not given:
``d_max`` is where the solute's k-th nearest-neighbour distance distribution
(order ``knn_order``, 3 by default: a solute ion of a cluster then has about
three others within ``d_max``, above the continuum percolation threshold of
about 2.7 neighbours, so that a cluster holds together; the 1st-neighbour
distribution gives a ``d_max`` that breaks clusters into pieces) stops
exceeding that of randomly relabelled ions: the
distance at which the cumulative excess of measured over random distances is
largest, i.e. where the two distributions cross. The search stops with an
error when that largest excess is below 3 times what chance gives: the root
mean square of the same statistic (the largest cumulative excess, wherever
it falls) of each relabelling against the mean of the others, scaled to the
data's number of centres (at least ``DMAX_MIN_SHUFFLES`` relabellings); the
data then look random. ``N_min`` is one more than the largest cluster found
by the same search, at that ``d_max``, in ``shuffles`` random relabellings:
the smallest size chance did not produce. The result says which were chosen
and how.

Per cluster: ions, solute ions, atoms (molecular ions decomposed, as in
:mod:`liprobe.composition`), composition with its binomial error
``sqrt(C (1 - C) / N)`` of ``N`` atoms, centre (mean position of its ions)
and radius of gyration (root mean square distance of its ions from the
centre; a uniform sphere of radius ``R`` has ``sqrt(3/5) R``).

The random baseline runs steps 1 and 2 on the same ions with their labels
permuted ``shuffles`` times: the mean number of clusters chance gives with
the same parameters, and the size distribution of what it finds. Its
relabellings are drawn from a seed stream of their own, independent of those
that chose ``N_min`` (which would find no group of ``N_min`` by
construction): on random data the clusters found and the baseline estimate
the same number.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .._jit import njit
from ..errors import AnalysisError
from ..rangetable import RangeTable
from ..run import Run
from .neighbours import (
    CountedIons,
    counted_positions,
    kd_tree,
    nearest_neighbours,
    shuffle_labels,
    species_kinds,
)

__all__ = ["Cluster", "RandomBaseline", "ClusterSearch", "find_clusters", "cluster_labels",
           "link_solute", "METHODS", "MAX_PAIR_CHECKS"]

METHODS = ("maxsep", "dbscan")
#: Cells of the grid that pre-selects ions near the clusters (envelope, erosion).
_MAX_CELLS = 1 << 26
_CHUNK = 1 << 22
#: Most cells of the grid that finds the pairs of solute ions within d_max (32 MB of starts).
_MAX_LINK_CELLS = 1 << 22
#: Most distances one linkage may compute (a grid cell and its 13 later neighbours): about a
#: minute of one core; above it the search stops, before any work, with a one-line error.
MAX_PAIR_CHECKS = 3e9
#: Bin of the nearest-neighbour distributions that choose d_max (nm).
DMAX_BIN_NM = 0.01
#: How many times chance's cumulative excess (the root mean square of the same statistic
#: between relabellings) the data's must reach to choose d_max.
DMAX_SIGMA = 3.0
#: Fewest relabellings that choose d_max (they also give chance's excess).
DMAX_MIN_SHUFFLES = 5
#: An envelope longer than this many ion spacings draws a warning.
ENVELOPE_SPACINGS = 4.0


# -- the search on arrays ------------------------------------------------------------

@njit(cache=True, nogil=True)
def _root(parent, i):
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


@njit(cache=True, nogil=True)
def _pair_kernel(p, orig, cell_start, shape, r2, parent, counts, link):
    """Every pair of points within ``sqrt(r2)`` (``d^2 <= r2``), each pair once: union of
    their sets in ``parent`` (over the original indices ``orig``) when ``link``, else
    ``counts[i] += 1`` for both. ``p`` is sorted by cell; the cells a pair is looked for
    in are the point's own (later points only) and the 13 later of its 26 neighbours."""
    nx, ny, nz = shape[0], shape[1], shape[2]
    for a in range(nx):
        for b in range(ny):
            for c in range(nz):
                own = (a * ny + b) * nz + c
                s0, s1 = cell_start[own], cell_start[own + 1]
                if s0 == s1:
                    continue
                for da in range(-1, 2):
                    if a + da < 0 or a + da >= nx:
                        continue
                    for db in range(-1, 2):
                        if b + db < 0 or b + db >= ny:
                            continue
                        for dc in range(-1, 2):
                            if c + dc < 0 or c + dc >= nz:
                                continue
                            other = ((a + da) * ny + b + db) * nz + c + dc
                            if other < own:
                                continue
                            t0, t1 = cell_start[other], cell_start[other + 1]
                            for q in range(s0, s1):
                                qx, qy, qz = p[q, 0], p[q, 1], p[q, 2]
                                start = q + 1 if other == own else t0
                                for w in range(start, t1):
                                    dx = p[w, 0] - qx
                                    dy = p[w, 1] - qy
                                    dz = p[w, 2] - qz
                                    if dx * dx + dy * dy + dz * dz <= r2:
                                        if link:
                                            ri = _root(parent, orig[q])
                                            rj = _root(parent, orig[w])
                                            if ri < rj:
                                                parent[rj] = ri
                                            elif rj < ri:
                                                parent[ri] = rj
                                        else:
                                            counts[orig[q]] += 1
                                            counts[orig[w]] += 1


class _Pairs:
    """The points sorted into cells at least ``r_nm`` wide (at most ``_MAX_LINK_CELLS``):
    memory proportional to the points, whatever the number of pairs."""

    def __init__(self, points: np.ndarray, r_nm: float):
        pts = np.ascontiguousarray(points, np.float64)
        lo = pts.min(axis=0)
        span = np.maximum(pts.max(axis=0) - lo, 1e-9)
        cell = max(r_nm, float(np.prod(span) / _MAX_LINK_CELLS) ** (1.0 / 3.0))
        shape = np.floor(span / cell).astype(np.int64) + 1
        idx = np.minimum(np.floor((pts - lo) / cell).astype(np.int64), shape - 1)
        lin = (idx[:, 0] * shape[1] + idx[:, 1]) * shape[2] + idx[:, 2]
        self.orig = np.argsort(lin, kind="stable").astype(np.int64)
        self.p = pts[self.orig]
        per_cell = np.bincount(lin, minlength=int(np.prod(shape)))
        self.cell_start = np.concatenate([[0], np.cumsum(per_cell)]).astype(np.int64)
        self.shape, self.r2, self.cell, self.n = shape, r_nm * r_nm, cell, len(pts)
        self.per_cell = per_cell.reshape(tuple(int(v) for v in shape))
        self.r_nm = r_nm

    def checks(self) -> float:
        """Distances the kernel computes: pairs in a cell and in the 13 later neighbours."""
        g = self.per_cell.astype(np.float64)
        total = float((g * (g - 1) / 2).sum())
        nx, ny, nz = g.shape
        for da, db, dc in _LATER:
            a0, a1 = max(0, -da), nx - max(0, da)
            b0, b1 = max(0, -db), ny - max(0, db)
            c0, c1 = max(0, -dc), nz - max(0, dc)
            if a1 <= a0 or b1 <= b0 or c1 <= c0:
                continue
            total += float((g[a0:a1, b0:b1, c0:c1]
                            * g[a0 + da:a1 + da, b0 + db:b1 + db, c0 + dc:c1 + dc]).sum())
        return total

    def check_size(self) -> None:
        """A one-line error, before any work, when the pairs within ``r`` are too many."""
        checks = self.checks()
        pairs = checks * (2.0 / 3.0 * math.pi * self.r_nm ** 3) / (13.5 * self.cell ** 3)
        if checks > MAX_PAIR_CHECKS:
            raise AnalysisError(
                f"about {pairs:,.3g} pairs of the {self.n:,} solute ions are within "
                f"{self.r_nm:g} nm ({checks:,.3g} distances to compute, above the limit of "
                f"{MAX_PAIR_CHECKS:,.3g}): give a smaller d_max, or a ROI")

    def components(self) -> np.ndarray:
        parent = np.arange(self.n, dtype=np.int64)
        _pair_kernel(self.p, self.orig, self.cell_start, self.shape, self.r2, parent,
                     np.zeros(0, np.int64), True)
        root = parent
        for _ in range(64):                         # flatten: parent -> root
            nxt = root[root]
            if np.array_equal(nxt, root):
                break
            root = nxt
        # roots are the smallest index of each set: numbered in order of first point
        return np.unique(root, return_inverse=True)[1].astype(np.int64)

    def counts(self) -> np.ndarray:
        """Points within ``r`` of each point, itself included."""
        counts = np.ones(self.n, np.int64)
        _pair_kernel(self.p, self.orig, self.cell_start, self.shape, self.r2,
                     np.zeros(0, np.int64), counts, False)
        return counts


_LATER = [(da, db, dc) for da in (-1, 0, 1) for db in (-1, 0, 1) for dc in (-1, 0, 1)
          if (da, db, dc) > (0, 0, 0)]


def _within(d: np.ndarray, r: float) -> np.ndarray:
    """``d <= r``: the one convention of "within" (a k-d tree query is run with an upper
    bound one ulp past ``r``, as scipy's bound is strict)."""
    return np.isfinite(d) & (d <= r)


def _bound(r: float) -> float:
    return float(np.nextafter(r, np.inf))


def link_solute(points: np.ndarray, dmax_nm: float, method: str = "maxsep",
                core_points: int = 5) -> np.ndarray:
    """Group the solute ions at ``points``: a label per point (-1 for DBSCAN's noise).

    Two ions are linked when their distance is at most ``dmax_nm`` (``<=``, the
    convention of the whole module). The pairs are found on a grid of cells at
    least ``dmax_nm`` wide and joined by union-find as they are found: memory
    proportional to the points, never to the pairs (an estimate of the pairs
    refuses, before any work, a search above :data:`MAX_PAIR_CHECKS`).

    Parameters
    ----------
    points : ndarray, shape (n, 3)
        Positions (nm).
    dmax_nm : float
        Maximum separation (DBSCAN's eps).
    method : {"maxsep", "dbscan"}
    core_points : int
        DBSCAN's minimum number of points within ``dmax_nm`` of a core point,
        itself included.

    Returns
    -------
    ndarray of int64, shape (n,)
        Group of each point, 0 ... m-1 in order of their first point, or -1.

    Raises
    ------
    AnalysisError
        An unknown method, or too many pairs within ``dmax_nm``.

    Examples
    --------
    >>> import numpy as np
    >>> from liprobe.spatial.clusters import link_solute
    >>> p = np.array([[0, 0, 0], [0.4, 0, 0], [0.8, 0, 0], [5, 0, 0]], float)
    >>> link_solute(p, 0.5).tolist()
    [0, 0, 0, 1]
    >>> link_solute(p, 0.4).tolist()
    [0, 0, 0, 1]
    >>> link_solute(p, 0.5, "dbscan", core_points=3).tolist()
    [0, 0, 0, -1]
    """
    if method not in METHODS:
        raise AnalysisError(f"unknown cluster method '{method}' (give one of "
                            f"{', '.join(METHODS)})")
    n = len(points)
    if n == 0:
        return np.zeros(0, np.int64)
    grid = _Pairs(points, dmax_nm)
    grid.check_size()
    if method == "maxsep":
        return grid.components()
    core = grid.counts() >= core_points
    labels = np.full(n, -1, np.int64)
    if not core.any():
        return labels
    core_idx = np.flatnonzero(core)
    labels[core_idx] = _Pairs(points[core_idx], dmax_nm).components()
    border = np.flatnonzero(~core)
    if len(border):
        d, i = kd_tree(points[core_idx]).query(points[border], k=1,
                                               distance_upper_bound=_bound(dmax_nm), workers=-1)
        ok = _within(d, dmax_nm)
        labels[border[ok]] = labels[core_idx[i[ok]]]
    found = labels >= 0
    labels[found] = np.unique(labels[found], return_inverse=True)[1]
    return labels


def _group_sizes(labels: np.ndarray) -> np.ndarray:
    return np.bincount(labels[labels >= 0]) if (labels >= 0).any() else np.zeros(0, np.int64)


def _near_mask(points: np.ndarray, seeds: np.ndarray, radius: float) -> np.ndarray:
    """A superset of the points within ``radius`` of a seed: those in a cell of a seed or
    next to one, on a grid of cells at least ``radius`` wide."""
    out = np.zeros(len(points), bool)
    if len(seeds) == 0 or radius <= 0:
        return out
    lo = seeds.min(axis=0) - radius
    hi = seeds.max(axis=0) + radius
    span = np.maximum(hi - lo, 1e-9)
    cell = max(radius, float(np.prod(span) / _MAX_CELLS) ** (1.0 / 3.0))
    shape = tuple(int(s) for s in np.floor(span / cell).astype(np.int64) + 1)
    from scipy.ndimage import binary_dilation

    grid = np.zeros(shape, bool)
    s = np.minimum(np.floor((seeds - lo) / cell).astype(np.int64), np.array(shape) - 1)
    grid[s[:, 0], s[:, 1], s[:, 2]] = True
    grid = binary_dilation(grid, np.ones((3, 3, 3), bool))
    for a in range(0, len(points), _CHUNK):
        p = points[a:a + _CHUNK]
        inside = np.all((p >= lo) & (p <= hi), axis=1)
        idx = np.flatnonzero(inside)
        c = np.minimum(np.floor((p[idx] - lo) / cell).astype(np.int64), np.array(shape) - 1)
        out[a + idx] = grid[c[:, 0], c[:, 1], c[:, 2]]
    return out


def cluster_labels(xyz_nm: np.ndarray, is_solute: np.ndarray, dmax_nm: float, nmin: int,
                   envelope_nm: float | None = None, erosion_nm: float | None = None,
                   method: str = "maxsep", core_points: int = 5
                   ) -> tuple[np.ndarray, np.ndarray]:
    """The cluster of each ion (-1: matrix) by the steps of the module's description.

    Parameters
    ----------
    xyz_nm : ndarray, shape (n, 3)
        Positions of the counted ions (nm).
    is_solute : ndarray of bool, shape (n,)
    dmax_nm : float
    nmin : int
        Fewest solute ions of a cluster.
    envelope_nm, erosion_nm : float, optional
        ``L`` and ``d_erosion`` (default ``d_max`` and ``L``; 0 to skip the step).
    method : {"maxsep", "dbscan"}
    core_points : int
        DBSCAN only.

    Returns
    -------
    labels : ndarray of int64, shape (n,)
        Clusters numbered 0, 1, ... by decreasing solute ions (then first ion).
    group_sizes : ndarray of int64
        Solute ions of every group of step 1 (clusters and smaller groups).
    """
    envelope_nm = dmax_nm if envelope_nm is None else envelope_nm
    erosion_nm = envelope_nm if erosion_nm is None else erosion_nm
    sol = np.flatnonzero(is_solute)
    groups = link_solute(xyz_nm[sol], dmax_nm, method, core_points)
    sizes = _group_sizes(groups)
    keep = np.flatnonzero(sizes >= nmin)
    labels = np.full(len(xyz_nm), -1, np.int64)
    if len(keep) == 0:
        return labels, sizes
    # number the clusters by decreasing size, ties by their first solute ion
    first = np.full(len(sizes), len(groups), np.int64)
    ok = groups >= 0
    np.minimum.at(first, groups[ok], np.flatnonzero(ok))
    order = keep[np.lexsort((first[keep], -sizes[keep]))]
    new = np.full(len(sizes), -1, np.int64)
    new[order] = np.arange(len(order))
    sol_label = np.where(groups >= 0, new[np.maximum(groups, 0)], -1)
    labels[sol] = sol_label
    core = sol[sol_label >= 0]
    if envelope_nm > 0:
        cand = np.flatnonzero(_near_mask(xyz_nm, xyz_nm[core], envelope_nm) & (labels < 0))
        if len(cand):
            d, i = kd_tree(xyz_nm[core]).query(xyz_nm[cand], k=1,
                                                distance_upper_bound=_bound(envelope_nm),
                                                workers=-1)
            hit = _within(d, envelope_nm)
            added = cand[hit]
            labels[added] = labels[core[i[hit]]]
            if erosion_nm > 0 and len(added):
                free = np.flatnonzero(_near_mask(xyz_nm, xyz_nm[added], erosion_nm)
                                      & (labels < 0))
                if len(free):
                    d, _i = kd_tree(xyz_nm[free]).query(xyz_nm[added], k=1,
                                                        distance_upper_bound=_bound(erosion_nm),
                                                        workers=-1)
                    labels[added[_within(d, erosion_nm)]] = -1
    return labels, sizes


# -- results ------------------------------------------------------------------------

def _num(v):
    return float(v) if v is not None and math.isfinite(v) else None


@dataclass(frozen=True)
class Cluster:
    """One cluster: what it holds and where it is.

    Attributes
    ----------
    ions, solute_ions, atoms : int
        Counted ions, those of the solute species, and their atoms.
    centre_nm : tuple of float
        Mean position of its ions (nm).
    radius_gyration_nm : float
        Root mean square distance of its ions from the centre (nm).
    composition, composition_error : dict of str to float
        At.% of each element and its 1-sigma binomial error.
    """

    ions: int
    solute_ions: int
    atoms: int
    centre_nm: tuple
    radius_gyration_nm: float
    composition: dict
    composition_error: dict

    def to_dict(self) -> dict:
        return {"ions": self.ions, "solute_ions": self.solute_ions, "atoms": self.atoms,
                "centre_nm": list(self.centre_nm),
                "radius_gyration_nm": self.radius_gyration_nm,
                "composition": dict(self.composition),
                "composition_error": dict(self.composition_error)}


@dataclass(frozen=True)
class RandomBaseline:
    """What the same search finds in randomly relabelled ions.

    Attributes
    ----------
    shuffles, seed : int
    clusters : float
        Mean number of clusters (groups of at least ``N_min`` solute ions).
    clusters_per_shuffle : tuple of int
    largest : int
        Solute ions of the largest group found in any shuffle.
    group_sizes : dict of int to float
        Mean number of groups of each size (solute ions) per shuffle.
    """

    shuffles: int
    seed: int
    clusters: float
    clusters_per_shuffle: tuple
    largest: int
    group_sizes: dict

    def to_dict(self) -> dict:
        return {"shuffles": self.shuffles, "seed": self.seed, "clusters": self.clusters,
                "clusters_per_shuffle": list(self.clusters_per_shuffle),
                "largest_group": self.largest,
                "what": "the same search (groups of at least N_min solute ions) on the same "
                        "ions with their labels permuted over the selection"}


@dataclass(frozen=True)
class ClusterSearch:
    """The clusters of a run, their parameters and the random baseline.

    Attributes
    ----------
    method : str
        ``"maxsep"`` or ``"dbscan"``.
    species : str
        The solute.
    dmax_nm : float
    nmin : int
    envelope_nm, erosion_nm : float
        ``L`` and ``d_erosion``.
    core_points : int or None
        DBSCAN's core count (None for maximum separation).
    knn_order : int
        Order of the neighbour distribution that chooses ``d_max``.
    choice : dict
        ``dmax`` and ``nmin``: ``"given"`` or how each was chosen.
    clusters : tuple of Cluster
        By decreasing solute ions.
    random_baseline : RandomBaseline
    group_sizes : dict of int to int
        Number of groups of each size (solute ions) in the data, clusters and
        smaller groups.
    solute_ions, ions_counted : int
    matrix_composition, matrix_composition_error : dict
        At.% (and error) of the counted ions in no cluster.
    labels : ndarray of int64, shape (ions_counted,)
        Cluster of each counted ion (-1: matrix), in evaporation order.
    xyz_nm : ndarray, shape (ions_counted, 3)
    """

    method: str
    species: str
    dmax_nm: float
    nmin: int
    envelope_nm: float
    erosion_nm: float
    core_points: int | None
    knn_order: int
    choice: dict
    clusters: tuple
    random_baseline: RandomBaseline
    group_sizes: dict
    solute_ions: int
    ions_counted: int
    elements: tuple
    matrix_composition: dict
    matrix_composition_error: dict
    labels: np.ndarray = field(repr=False)
    xyz_nm: np.ndarray = field(repr=False)
    excluded: tuple = ()
    selection: dict = field(default_factory=dict)
    warnings: tuple = ()

    @property
    def n_clusters(self) -> int:
        return len(self.clusters)

    def rows(self) -> list[dict]:
        """One dict per cluster (for a CSV)."""
        out = []
        for i, c in enumerate(self.clusters):
            row = {"cluster": i + 1, "ions": c.ions, "solute_ions": c.solute_ions,
                   "atoms": c.atoms, "x_nm": c.centre_nm[0], "y_nm": c.centre_nm[1],
                   "z_nm": c.centre_nm[2], "radius_gyration_nm": c.radius_gyration_nm}
            for el in self.elements:
                row[f"{el}_at%"] = c.composition.get(el)
                row[f"{el}_err"] = c.composition_error.get(el)
            out.append(row)
        return out

    def to_dict(self) -> dict:
        sizes = sorted(set(self.group_sizes) | set(self.random_baseline.group_sizes))
        in_clusters = int((self.labels >= 0).sum())
        sol_in = sum(c.solute_ions for c in self.clusters)
        return {
            "method": self.method, "species": self.species,
            "parameters": {"dmax_nm": self.dmax_nm, "nmin": self.nmin,
                           "envelope_nm": self.envelope_nm, "erosion_nm": self.erosion_nm,
                           "core_points": self.core_points, "knn_order": self.knn_order},
            "choice": dict(self.choice), "n_clusters": self.n_clusters,
            "clusters": [c.to_dict() for c in self.clusters],
            "random_baseline": self.random_baseline.to_dict(),
            "group_sizes": {"solute_ions": sizes,
                            "measured": [self.group_sizes.get(s, 0) for s in sizes],
                            "random": [self.random_baseline.group_sizes.get(s, 0.0)
                                       for s in sizes]},
            "solute_ions": self.solute_ions, "solute_in_clusters": sol_in,
            "ions_counted": self.ions_counted, "ions_in_clusters": in_clusters,
            "elements": list(self.elements),
            "matrix": {"composition": dict(self.matrix_composition),
                       "composition_error": dict(self.matrix_composition_error)},
            "error": "binomial, sqrt(C(1-C)/N), N atoms",
            "excluded": list(self.excluded), "selection": dict(self.selection),
            "warnings": list(self.warnings)}


# -- the search on a run ---------------------------------------------------------------

def _compositions(ions: CountedIons, labels: np.ndarray, n_groups: int, elements):
    """Atoms per element of each group ``0 .. n_groups - 1`` and of the rest (last row)."""
    el_idx = [ions.elements.index(el) for el in elements]
    atoms = ions.atoms_per_kind[:, el_idx]                       # kinds x elements
    g = np.where(labels >= 0, labels, n_groups)
    per_kind = np.zeros((n_groups + 1, len(ions.table.ions)), np.int64)
    np.add.at(per_kind, (g, ions.kind), 1)
    return per_kind @ atoms                                      # groups x elements


def _percent(atoms_row, elements):
    n = int(atoms_row.sum())
    comp: dict[str, float | None] = {}
    err: dict[str, float | None] = {}
    for el, a in zip(elements, atoms_row):
        if n == 0:
            comp[el] = err[el] = None
            continue
        c = a / n
        comp[el] = 100.0 * c
        err[el] = 100.0 * math.sqrt(c * (1.0 - c) / n)
    return comp, err


def _ordinal(n: int) -> str:
    return f"{n}" + {1: "st", 2: "nd", 3: "rd"}.get(n if n < 20 else n % 10, "th")


def _max_excess(f: np.ndarray, ref: np.ndarray) -> tuple[float, int]:
    """Largest cumulative excess of ``f`` over ``ref`` (fractions of centres) and its bin."""
    e = f - ref
    i = int(np.argmax(e))
    return float(e[i]), i


def _choose_dmax(ions, n_sol, sp, species, knn_order, shuffles, seed, slab):
    """d_max where the k-th neighbour distribution stops exceeding random, if it departs
    from random more than chance does (see the module's description)."""
    if n_sol - 1 < knn_order:
        raise AnalysisError(
            f"cannot choose d_max: {n_sol:,} counted ion(s) of {species} are too few for a "
            f"{_ordinal(knn_order)} nearest-neighbour distribution; give --dmax, or a lower "
            "--knn-order")
    n_sh = max(shuffles, DMAX_MIN_SHUFFLES)
    nn = nearest_neighbours(ions, ions.table, sp, sp,
                            k=knn_order, bin_nm=DMAX_BIN_NM, shuffles=n_sh,
                            seed=seed, slab_nm=slab)
    n_c, n_r = nn.centres, nn.random_centres
    each = np.cumsum(nn.random_kth_each, axis=1) / n_r            # shuffles x bins
    f = np.cumsum(nn.counts[-1]) / n_c
    excess, i = _max_excess(f, each.mean(axis=0))
    # the same statistic for each relabelling against the mean of the others: how large
    # chance makes it (the look-elsewhere effect and the correlated bins included), scaled
    # from the relabellings' centres (n_r, against n_sh - 1 others) to the data's (n_c,
    # against n_sh)
    scale = math.sqrt((1.0 / n_c + 1.0 / (n_sh * n_r)) / (1.0 / n_r + 1.0 / ((n_sh - 1) * n_r)))
    null = np.array([_max_excess(each[j], np.delete(each, j, axis=0).mean(axis=0))[0]
                     for j in range(n_sh)]) * scale
    chance = float(np.sqrt(np.mean(null ** 2)))
    ions_excess = excess * n_c
    if excess <= 0 or excess < DMAX_SIGMA * chance:
        raise AnalysisError(
            f"cannot choose d_max: the {_ordinal(knn_order)} nearest-neighbour distances of "
            f"{species} do not depart from those of randomly relabelled ions (largest "
            f"cumulative excess {ions_excess:.0f} ions, {DMAX_SIGMA:g} x chance's "
            f"{chance * n_c:.0f} in {n_sh} relabellings): the data look random at this "
            "order; give --dmax")
    dmax = float(nn.edges_nm[i + 1])
    return dmax, {"dmax": "chosen", "dmax_how": (
        f"where the {_ordinal(knn_order)} nearest-neighbour distance distribution of {species} "
        f"stops exceeding that of relabelled ions (Stephenson et al. 2007): cumulative excess "
        f"{int(round(ions_excess)):,} of {n_c:,} ions at {dmax:.2f} nm, "
        f"{excess / chance:.1f} x the root mean square of the same excess between "
        f"{n_sh} relabellings")}


def _ion_spacing(xyz: np.ndarray) -> float:
    """Mean ion spacing (nm), ``(V / n)^(1/3)``, V the volume of the cells (2 nm, or more
    for a large volume) that hold ions."""
    lo = xyz.min(axis=0)
    span = np.maximum(xyz.max(axis=0) - lo, 1e-9)
    cell = max(2.0, float(np.prod(span) / _MAX_LINK_CELLS) ** (1.0 / 3.0))
    shape = np.floor(span / cell).astype(np.int64) + 1
    occupied = np.zeros(int(np.prod(shape)), bool)
    for a in range(0, len(xyz), _CHUNK):
        idx = np.minimum(np.floor((xyz[a:a + _CHUNK] - lo) / cell).astype(np.int64), shape - 1)
        occupied[(idx[:, 0] * shape[1] + idx[:, 1]) * shape[2] + idx[:, 2]] = True
    return float((occupied.sum() * cell ** 3 / len(xyz)) ** (1.0 / 3.0))


def _random_groups(ions, sp_kinds, dmax_nm, method, core_points, shuffles, rng):
    """Group sizes of step 1 in ``shuffles`` relabellings drawn from ``rng``."""
    out = []
    for _ in range(shuffles):
        lab = shuffle_labels(ions.kind, ions.xyz_nm[:, 2], rng)
        out.append(_group_sizes(link_solute(ions.xyz_nm[sp_kinds[lab]], dmax_nm, method,
                                            core_points)))
    return out


def find_clusters(run: Run | CountedIons, ranges: RangeTable, species, dmax_nm: float | None = None,
                  nmin: int | None = None, method: str = "maxsep",
                  envelope_nm: float | None = None, erosion_nm: float | None = None,
                  core_points: int = 5, knn_order: int = 3, shuffles: int = 5, seed: int = 0,
                  exclude=(), selection: dict | None = None) -> ClusterSearch:
    """Clusters of ``species`` in ``run``, with their composition and a random baseline.

    Parameters
    ----------
    run : Run or CountedIons
        Needs ``x y z`` (nm) and ``mass`` (Da).
    ranges : RangeTable
    species : str or iterable of str
        The solute: ions (``Cr+``) or elements (``Cr``: every ion carrying it).
    dmax_nm : float, optional
        Maximum separation ``d_max`` (DBSCAN's eps); default: chosen from the
        nearest-neighbour distributions (see the module's description).
    nmin : int, optional
        ``N_min``, the fewest solute ions of a cluster; default: one more than
        the largest group found in ``shuffles`` random relabellings (their own,
        not the baseline's).
    method : {"maxsep", "dbscan"}
    envelope_nm, erosion_nm : float, optional
        ``L`` (default ``d_max``) and ``d_erosion`` (default ``L``); 0 skips
        the step.
    core_points : int
        DBSCAN's core count (itself included).
    knn_order : int
        Order of the neighbour distribution that chooses ``d_max``.
    shuffles : int
        Random relabellings of the baseline, and as many again to choose
        ``N_min`` (at least ``DMAX_MIN_SHUFFLES`` to choose ``d_max``).
    seed : int
    exclude : iterable of str
        Elements whose ions are dropped whole.
    selection : dict, optional

    Returns
    -------
    ClusterSearch

    Raises
    ------
    AnalysisError
        No counted ions, a species not ranged, bad parameters, too many pairs
        within ``d_max`` (:data:`MAX_PAIR_CHECKS`), too few solute ions for the
        neighbour order, or ``d_max`` to choose on data that look random.

    References
    ----------
    .. [1] J. M. Hyde, C. A. English, "An analysis of the structure of irradiation
       induced Cu-enriched clusters in low and high nickel welds", MRS Proc. 650
       (2000) R6.6.
    .. [2] D. Vaumousse, A. Cerezo, P. J. Warren, "A procedure for quantification
       of precipitate microstructures from three-dimensional atom probe data",
       Ultramicroscopy 95 (2003) 215-221 (d_max, N_min, envelope, erosion).
    .. [3] L. T. Stephenson, M. P. Moody, P. V. Liddicoat, S. P. Ringer, "New
       techniques for the analysis of fine-scaled clustering phenomena within
       atom probe tomography (APT) data", Microsc. Microanal. 13 (2007) 448-463
       (choosing d_max and N_min against randomly labelled data).
    .. [4] M. Ester, H.-P. Kriegel, J. Sander, X. Xu, "A density-based algorithm for
       discovering clusters in large spatial databases with noise", Proc. KDD-96
       (1996) 226-231 (DBSCAN).

    Examples
    --------
    Two tight groups of Cr (27 and 8 ions on 0.3 nm lattices) in a sparse
    field of Ni: with d_max = 0.4 nm and N_min = 10 only the larger is a
    cluster; its centre is the group's and its radius of gyration that of a
    3 x 3 x 3 lattice, 0.3 nm x sqrt(3 x 2/3) (each axis adds 2/3 x 0.3^2).

    >>> import numpy as np
    >>> import liprobe
    >>> from liprobe import Range, RangeTable, parse_ion
    >>> from liprobe.spatial.clusters import find_clusters
    >>> table = RangeTable.from_ranges([Range(51.5, 52.5, parse_ion("Cr+")),
    ...                                 Range(57.5, 58.5, parse_ion("Ni+"))])
    >>> g3 = 0.3 * np.stack(np.meshgrid(*[np.arange(3.0)] * 3, indexing="ij"), -1).reshape(-1, 3)
    >>> g2 = 0.3 * np.stack(np.meshgrid(*[np.arange(2.0)] * 3, indexing="ij"), -1).reshape(-1, 3)
    >>> ni = np.random.default_rng(0).uniform(-10, 10, (300, 3))
    >>> xyz = np.vstack([g3 + 5, g2 - 5, ni])
    >>> run = liprobe.Run.from_arrays(x=xyz[:, 0], y=xyz[:, 1], z=xyz[:, 2],
    ...                               mass=np.repeat([52.0, 58.0], [35, 300]))
    >>> cs = find_clusters(run, table, "Cr", dmax_nm=0.4, nmin=10, envelope_nm=0)
    >>> cs.n_clusters, cs.clusters[0].solute_ions, cs.clusters[0].centre_nm
    (1, 27, (5.3, 5.3, 5.3))
    >>> print(f"{cs.clusters[0].radius_gyration_nm:.4f} {0.3 * np.sqrt(2):.4f}")
    0.4243 0.4243
    >>> cs.random_baseline.clusters
    0.0
    """
    if method not in METHODS:
        raise AnalysisError(f"unknown cluster method '{method}' (give one of "
                            f"{', '.join(METHODS)})")
    if dmax_nm is not None and not (dmax_nm > 0 and math.isfinite(dmax_nm)):
        raise AnalysisError(f"d_max must be a positive number of nm, not {dmax_nm}")
    for what, v in (("the envelope L", envelope_nm), ("the erosion distance", erosion_nm)):
        if v is not None and not (v >= 0 and math.isfinite(v)):
            raise AnalysisError(f"{what} must be 0 or more nm, not {v}")
    if nmin is not None and nmin < 1:
        raise AnalysisError(f"N_min must be 1 or more, not {nmin}")
    if core_points < 1:
        raise AnalysisError(f"DBSCAN's core count must be 1 or more, not {core_points}")
    if shuffles < 1:
        raise AnalysisError(f"give at least one shuffle for the random baseline, not {shuffles}")
    if not 1 <= knn_order <= 100:
        raise AnalysisError(f"the neighbour order must be 1 to 100, not {knn_order}")
    ions = run if isinstance(run, CountedIons) else counted_positions(run, ranges, exclude)
    sp_kinds = species_kinds(ions, species)
    name = species if isinstance(species, str) else ",".join(species)
    is_sol = ions.mask(sp_kinds)
    n_sol = int(is_sol.sum())
    if n_sol < 2:
        raise AnalysisError(f"{n_sol} counted ion(s) of {name}: nothing to cluster")
    choice: dict = {}
    if dmax_nm is None:
        dmax_nm, how = _choose_dmax(ions, n_sol, species, name, knn_order, shuffles, seed,
                                    None)
        choice.update(how)
    else:
        choice["dmax"] = "given"
    _Pairs(ions.xyz_nm[is_sol], dmax_nm).check_size()      # before any relabelling
    if nmin is None:
        # N_min from relabellings of their own seed stream: the baseline below counts on
        # others, so that it is a measurement and not 0 by construction
        picked = _random_groups(ions, sp_kinds, dmax_nm, method, core_points, shuffles,
                                np.random.default_rng([seed, 1]))
        top = max((int(s.max()) for s in picked if len(s)), default=0)
        nmin = max(top + 1, 2)
        choice["nmin"] = "chosen"
        choice["nmin_how"] = (f"one more than the largest group ({top} solute ions) that "
                              f"the same search found in {shuffles} random relabelling(s) "
                              "(Stephenson et al. 2007), independent of the baseline's")
    else:
        choice["nmin"] = "given"
    random_sizes = _random_groups(ions, sp_kinds, dmax_nm, method, core_points, shuffles,
                                  np.random.default_rng([seed, 2]))
    largest = max((int(s.max()) for s in random_sizes if len(s)), default=0)
    per_shuffle = tuple(int((s >= nmin).sum()) for s in random_sizes)
    hist: dict = {}
    for s in random_sizes:
        for v, c in zip(*np.unique(s, return_counts=True)):
            hist[int(v)] = hist.get(int(v), 0.0) + c / shuffles
    baseline = RandomBaseline(shuffles=shuffles, seed=seed, clusters=float(np.mean(per_shuffle)),
                              clusters_per_shuffle=per_shuffle, largest=largest,
                              group_sizes=dict(sorted(hist.items())))
    warns = list(ranges.warnings)
    env = dmax_nm if envelope_nm is None else envelope_nm
    spacing = _ion_spacing(ions.xyz_nm)
    if env > ENVELOPE_SPACINGS * spacing:
        warns.append(f"the envelope L = {env:g} nm is {env / spacing:.1f} ion spacings "
                     f"(about {spacing:.2f} nm): it takes in a shell of matrix ions, and "
                     "erosion removes only envelope-added ions near unclustered ones; "
                     "consider a smaller --envelope")
    envelope_nm = dmax_nm if envelope_nm is None else envelope_nm
    erosion_nm = envelope_nm if erosion_nm is None else erosion_nm
    labels, sizes = cluster_labels(ions.xyz_nm, is_sol, dmax_nm, nmin, envelope_nm, erosion_nm,
                                   method, core_points)
    n_cl = int(labels.max()) + 1 if len(labels) and labels.max() >= 0 else 0
    elements = ions.reported_elements()
    atoms = _compositions(ions, labels, n_cl, elements)
    clusters = []
    if n_cl:
        lab = labels[labels >= 0]
        p = ions.xyz_nm[labels >= 0]
        n_ions = np.bincount(lab, minlength=n_cl)
        n_solute = np.bincount(lab, weights=is_sol[labels >= 0], minlength=n_cl)
        centre = np.stack([np.bincount(lab, weights=p[:, a], minlength=n_cl) / n_ions
                           for a in range(3)], axis=1)
        r2 = np.bincount(lab, weights=((p - centre[lab]) ** 2).sum(axis=1), minlength=n_cl)
        rg = np.sqrt(r2 / n_ions)
        for c in range(n_cl):
            comp, err = _percent(atoms[c], elements)
            clusters.append(Cluster(
                ions=int(n_ions[c]), solute_ions=int(n_solute[c]), atoms=int(atoms[c].sum()),
                centre_nm=tuple(round(float(v), 6) for v in centre[c]),
                radius_gyration_nm=float(rg[c]), composition=comp, composition_error=err))
    mcomp, merr = _percent(atoms[-1], elements)
    g_hist = {int(v): int(c) for v, c in zip(*np.unique(sizes, return_counts=True))}
    return ClusterSearch(
        method=method, species=name, dmax_nm=float(dmax_nm), nmin=int(nmin),
        envelope_nm=float(envelope_nm), erosion_nm=float(erosion_nm),
        core_points=core_points if method == "dbscan" else None, knn_order=knn_order,
        choice=choice, clusters=tuple(clusters), random_baseline=baseline, group_sizes=g_hist,
        solute_ions=n_sol, ions_counted=ions.n, elements=elements, matrix_composition=mcomp,
        matrix_composition_error=merr, labels=labels, xyz_nm=ions.xyz_nm,
        excluded=ions.excluded, selection=dict(selection or {}),
        warnings=tuple(warns))
