"""Proxigrams: composition against the signed distance from an isosurface, or the radius.

A proximity histogram (Hellman et al. 2000) bins the counted atoms of every
ion by the ion's own distance to the isosurface mesh (not by the voxel it
falls in), on both sides of the surface: negative on the side above the
threshold (inside a precipitate: the enclosed, high-concentration volume),
positive on the side below. Composition per bin from the atoms of the ranged
ions in it (molecular ions decomposed; ions holding an excluded element
dropped whole), with the binomial error ``sqrt(C (1 - C) / N)`` of ``N``
atoms (Danoix et al. 2007). Bins are ``bin_nm`` wide with an edge at 0, out
to ``max_distance_nm`` on each side; bins beyond the last ion on either side
are left out.

The distance of an ion to the mesh is the distance to the closest point of
the nearest triangle (Ericson 2005, 5.1.5). Candidate triangles are those in
the marching cubes' cells around the surface cell nearest to the ion's cell
(a Euclidean distance transform of the cells holding triangles, Maurer et
al. 2003, finds it), so that the work per ion is bounded; the sign comes
from the angle-weighted pseudonormal of the closest feature (face, edge or
vertex; Bærentzen & Aanæs 2005), which is exact for a closed or an open
surface. Ions farther than ``max_distance_nm`` are counted apart.

The radial proxigram is the composition against the distance from the
specimen's axis: the least-squares line through the mean x, y of slabs of
equal ion count along z, the two end slabs left out (a tilted specimen has a
tilted axis), or a line
parallel to z through ``center_nm``. A coating seen as a shell rises at the
periphery.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .._jit import njit, prange
from ..errors import AnalysisError
from ..rangetable import RangeTable
from ..run import Run
from .isosurface import Isosurface
from .voxels import counted_ions, ion_kinds

__all__ = ["Proxigram", "proxigram", "radial_proxigram", "signed_distances",
           "MeshLocator", "MAX_BINS", "write_proxigram_csv"]

_CHUNK = 1 << 20
#: Most bins a proxigram may have.
MAX_BINS = 100_000


# -- distances to a triangle mesh ---------------------------------------------------

@njit(cache=True, nogil=True, inline="always")
def _closest(px, py, pz, tris, t):
    """Squared distance from p to triangle ``tris[t]`` (3 x 3), the vector from its closest
    point to p, and that point's feature: 0 face, 1 + k edge k (corner k to k+1), 4 + k
    corner k (Ericson 2005)."""
    ax, ay, az = tris[t, 0, 0], tris[t, 0, 1], tris[t, 0, 2]
    bx, by, bz = tris[t, 1, 0], tris[t, 1, 1], tris[t, 1, 2]
    cx, cy, cz = tris[t, 2, 0], tris[t, 2, 1], tris[t, 2, 2]
    abx, aby, abz = bx - ax, by - ay, bz - az
    acx, acy, acz = cx - ax, cy - ay, cz - az
    apx, apy, apz = px - ax, py - ay, pz - az
    d1 = abx * apx + aby * apy + abz * apz
    d2 = acx * apx + acy * apy + acz * apz
    if d1 <= 0.0 and d2 <= 0.0:
        qx, qy, qz, feat = ax, ay, az, 4
    else:
        bpx, bpy, bpz = px - bx, py - by, pz - bz
        d3 = abx * bpx + aby * bpy + abz * bpz
        d4 = acx * bpx + acy * bpy + acz * bpz
        cpx, cpy, cpz = px - cx, py - cy, pz - cz
        d5 = abx * cpx + aby * cpy + abz * cpz
        d6 = acx * cpx + acy * cpy + acz * cpz
        vc = d1 * d4 - d3 * d2
        vb = d5 * d2 - d1 * d6
        va = d3 * d6 - d5 * d4
        if d3 >= 0.0 and d4 <= d3:
            qx, qy, qz, feat = bx, by, bz, 5
        elif vc <= 0.0 and d1 >= 0.0 and d3 <= 0.0:
            v = d1 / (d1 - d3)
            qx, qy, qz, feat = ax + v * abx, ay + v * aby, az + v * abz, 1
        elif d6 >= 0.0 and d5 <= d6:
            qx, qy, qz, feat = cx, cy, cz, 6
        elif vb <= 0.0 and d2 >= 0.0 and d6 <= 0.0:
            w = d2 / (d2 - d6)
            qx, qy, qz, feat = ax + w * acx, ay + w * acy, az + w * acz, 3
        elif va <= 0.0 and (d4 - d3) >= 0.0 and (d5 - d6) >= 0.0:
            w = (d4 - d3) / ((d4 - d3) + (d5 - d6))
            qx = bx + w * (cx - bx)
            qy = by + w * (cy - by)
            qz = bz + w * (cz - bz)
            feat = 2
        else:
            den = 1.0 / (va + vb + vc)
            v = vb * den
            w = vc * den
            qx = ax + abx * v + acx * w
            qy = ay + aby * v + acy * w
            qz = az + abz * v + acz * w
            feat = 0
    dx, dy, dz = px - qx, py - qy, pz - qz
    return dx * dx + dy * dy + dz * dz, dx, dy, dz, feat


@njit(parallel=True, cache=True, nogil=True)
def _distance_kernel(x, y, z, skip, origin, inv_h, tris, pseudo, faces, face_adj, vert_start,
                     vert_faces, cell_start, cell_tris, near_cell, near_dist, max_cells, out):
    """Signed distance (voxel units) of each point to the mesh; NaN beyond ``max_cells``
    and where ``skip`` is negative.

    Start from the triangles of the surface cell nearest to the point's cell,
    then walk the mesh: while the closest point lies on an edge (a vertex), try
    the triangle across that edge (the triangles around that vertex), and move
    when one is closer.
    ``pseudo[t, 0]`` is triangle t's normal, ``pseudo[t, 1 + k]`` the
    pseudonormal of its edge k, ``pseudo[t, 4 + k]`` that of its corner k.
    """
    cx, cy, cz = near_cell.shape
    for n in prange(x.shape[0]):
        if skip[n] < 0:
            out[n] = np.nan
            continue
        px = (np.float64(x[n]) - origin[0]) * inv_h
        py = (np.float64(y[n]) - origin[1]) * inv_h
        pz = (np.float64(z[n]) - origin[2]) * inv_h
        i = min(max(int(math.floor(px)), 0), cx - 1)
        j = min(max(int(math.floor(py)), 0), cy - 1)
        k = min(max(int(math.floor(pz)), 0), cz - 1)
        if near_dist[i, j, k] - 1.7320508075688772 > max_cells:
            out[n] = np.nan
            continue
        cid = near_cell[i, j, k]
        best = np.inf
        bt = -1
        bf = 0
        bdx = bdy = bdz = 0.0
        for q in range(cell_start[cid], cell_start[cid + 1]):
            t = cell_tris[q]
            d2, dx, dy, dz, feat = _closest(px, py, pz, tris, t)
            if d2 < best:
                best, bt, bf = d2, t, feat
                bdx, bdy, bdz = dx, dy, dz
        for _step in range(64):
            if bf == 0:
                break
            moved = False
            if bf <= 3:
                t = face_adj[bt, bf - 1]
                if t >= 0:
                    d2, dx, dy, dz, feat = _closest(px, py, pz, tris, t)
                    if d2 < best * (1.0 - 1e-12):
                        best, bt, bf = d2, t, feat
                        bdx, bdy, bdz = dx, dy, dz
                        moved = True
            else:
                v = faces[bt, bf - 4]
                for q in range(vert_start[v], vert_start[v + 1]):
                    t = vert_faces[q]
                    if t == bt:
                        continue
                    # the distance to the triangle's plane is a lower bound
                    hp = ((px - tris[t, 0, 0]) * pseudo[t, 0, 0] + (py - tris[t, 0, 1])
                          * pseudo[t, 0, 1] + (pz - tris[t, 0, 2]) * pseudo[t, 0, 2])
                    if hp * hp >= best:
                        continue
                    d2, dx, dy, dz, feat = _closest(px, py, pz, tris, t)
                    if d2 < best * (1.0 - 1e-12):
                        best, bt, bf = d2, t, feat
                        bdx, bdy, bdz = dx, dy, dz
                        moved = True
            if not moved:
                break
        nrm = pseudo[bt, bf]
        side = bdx * nrm[0] + bdy * nrm[1] + bdz * nrm[2]
        d = math.sqrt(best)
        out[n] = -d if side < 0.0 else d


@njit(cache=True, nogil=True)
def _bin_counts(d, kind, lo, inv_bin, n_bins, n_kinds, counts):
    """Add each finite distance's ion to ``counts[bin * n_kinds + kind]``; the number binned."""
    binned = 0
    for n in range(d.shape[0]):
        if kind[n] < 0 or not math.isfinite(d[n]):
            continue
        b = min(max(int(math.floor((d[n] - lo) * inv_bin)), 0), n_bins - 1)
        counts[b * n_kinds + kind[n]] += 1
        binned += 1
    return binned


class MeshLocator:
    """The triangles of an isosurface arranged for distance queries.

    Parameters
    ----------
    surface : Isosurface
    max_distance_nm : float
        Points farther than this from every triangle get NaN (the bound is
        used to skip them early).
    """

    def __init__(self, surface: Isosurface, max_distance_nm: float):
        from scipy import ndimage

        if len(surface.faces) == 0:
            raise AnalysisError(f"no isosurface at {surface.threshold:g} {surface.unit} of "
                                f"{'+'.join(surface.species) or 'all atoms'}: no distance "
                                "to measure from")
        grid = surface.grid
        h = grid.voxel_nm
        self.origin = np.asarray(grid.origin_nm, np.float64)
        self.inv_h = 1.0 / h
        self.h = h
        self.max_cells = float(max_distance_nm) / h
        v = (surface.vertices - self.origin) * self.inv_h          # voxel index coordinates
        f = surface.faces
        tris = np.ascontiguousarray(v[f])                           # (m, 3, 3)
        e1, e2 = tris[:, 1] - tris[:, 0], tris[:, 2] - tris[:, 0]
        fn = np.cross(e1, e2)
        fn /= np.maximum(np.linalg.norm(fn, axis=1), 1e-300)[:, None]
        # edge pseudonormals: the sum of the normals of the faces sharing the edge
        edges = np.sort(np.stack([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]], axis=1), axis=2)
        key = (edges[..., 0].astype(np.int64) * (len(v) + 1) + edges[..., 1]).ravel()
        _u, inv = np.unique(key, return_inverse=True)
        en = np.zeros((len(_u), 3))
        np.add.at(en, inv, np.repeat(fn, 3, axis=0))
        # the triangle across each edge (-1 on the rim of an open surface)
        slot = np.argsort(inv, kind="stable")
        first = np.full(len(_u), -1, np.int64)
        second = np.full(len(_u), -1, np.int64)
        e_sorted = inv[slot]
        is_first = np.r_[True, e_sorted[1:] != e_sorted[:-1]]
        first[e_sorted[is_first]] = slot[is_first] // 3
        second[e_sorted[~is_first]] = slot[~is_first] // 3
        me = np.repeat(np.arange(len(f)), 3)
        other = np.where(first[inv] == me, second[inv], first[inv])
        face_adj = other.reshape(-1, 3)
        # the triangles around each vertex
        vf_order = np.argsort(f.ravel(), kind="stable")
        vert_start = np.searchsorted(f.ravel()[vf_order], np.arange(len(v) + 1))
        # vertex pseudonormals: the face normals weighted by the face's angle there
        vn = np.zeros((len(v), 3))
        for c in range(3):
            u1 = tris[:, (c + 1) % 3] - tris[:, c]
            u2 = tris[:, (c + 2) % 3] - tris[:, c]
            cosang = np.einsum("ij,ij->i", u1, u2) / np.maximum(
                np.linalg.norm(u1, axis=1) * np.linalg.norm(u2, axis=1), 1e-300)
            np.add.at(vn, f[:, c], fn * np.arccos(np.clip(cosang, -1, 1))[:, None])
        pseudo = np.empty((len(f), 7, 3))
        pseudo[:, 0] = fn
        pseudo[:, 1:4] = en[inv.reshape(-1, 3)]
        pseudo[:, 4:7] = vn[f]
        # triangles by marching-cubes cell (cube between voxel centres)
        cshape = tuple(max(s - 1, 1) for s in grid.shape)
        cent = np.floor(tris.mean(axis=1)).astype(np.int64)
        for ax in range(3):
            np.clip(cent[:, ax], 0, cshape[ax] - 1, out=cent[:, ax])
        lin = np.ravel_multi_index(cent.T, cshape)
        order = np.argsort(lin, kind="stable")
        cells, starts = np.unique(lin[order], return_index=True)
        cell_id = np.full(cshape, -1, np.int32)
        cell_id.ravel()[cells] = np.arange(len(cells), dtype=np.int32)
        has = cell_id >= 0
        dist, idx = ndimage.distance_transform_edt(~has, return_indices=True)
        near = cell_id[idx[0], idx[1], idx[2]]
        del idx
        self.tris = tris
        self.pseudo = pseudo
        self.faces = np.ascontiguousarray(f, np.int64)
        self.face_adj = np.ascontiguousarray(face_adj, np.int64)
        self.vert_start = vert_start.astype(np.int64)
        self.vert_faces = (vf_order // 3).astype(np.int64)
        self.cell_start = np.append(starts, len(order)).astype(np.int64)
        self.cell_tris = order.astype(np.int64)
        self.near_cell = near.astype(np.int32)
        self.near_dist = dist.astype(np.float32)

    def signed_distances(self, x, y, z, skip=None) -> np.ndarray:
        """Signed distance of each point to the mesh (nm); NaN beyond the bound, and where
        ``skip`` (an integer array, e.g. the ion kinds) is negative."""
        x, y, z = (np.ascontiguousarray(a) for a in (x, y, z))
        if skip is None:
            skip = np.zeros(len(x), np.int64)
        out = np.empty(len(x), np.float64)
        _distance_kernel(x, y, z, np.ascontiguousarray(skip, np.int64), self.origin, self.inv_h,
                         self.tris, self.pseudo, self.faces, self.face_adj, self.vert_start,
                         self.vert_faces, self.cell_start, self.cell_tris, self.near_cell,
                         self.near_dist, self.max_cells, out)
        out *= self.h
        out[np.abs(out) > self.max_cells * self.h] = np.nan
        return out


def signed_distances(surface: Isosurface, x_nm, y_nm, z_nm,
                     max_distance_nm: float = 10.0) -> np.ndarray:
    """Signed distance (nm) of points to an isosurface: negative on its high side.

    Parameters
    ----------
    surface : Isosurface
    x_nm, y_nm, z_nm : ndarray of float, shape (n,)
    max_distance_nm : float
        Points farther from the mesh get NaN.

    Returns
    -------
    ndarray of float64, shape (n,)
    """
    return MeshLocator(surface, max_distance_nm).signed_distances(x_nm, y_nm, z_nm)


# -- the proxigram ----------------------------------------------------------------

@dataclass(frozen=True)
class Proxigram:
    """Composition against distance (from an isosurface, or from the specimen axis).

    Attributes
    ----------
    kind : str
        ``"isosurface"`` (signed distance, negative on the high side) or
        ``"radial"`` (distance from the axis).
    bin_nm : float
    lo, hi, distance : ndarray of float64, shape (n_bins,)
        Bin edges and centres (nm).
    atoms, ions : ndarray of int64, shape (n_bins,)
        Counted atoms and ions per bin.
    elements : tuple of str
    percent, error : dict of str to ndarray of float64
        At.% and its 1-sigma binomial error per bin (NaN where no atoms).
    ions_counted : int
        Ranged, not excluded ions.
    ions_beyond : int
        Counted ions farther than ``max_distance_nm`` (not in any bin).
    max_distance_nm : float or None
    surface : dict
        What the distance is measured from: the isosurface's summary or the axis.
    selection : dict
    """

    kind: str
    bin_nm: float
    lo: np.ndarray
    hi: np.ndarray
    distance: np.ndarray
    atoms: np.ndarray
    ions: np.ndarray
    elements: tuple
    percent: dict
    error: dict
    ions_counted: int
    ions_beyond: int
    max_distance_nm: float | None
    surface: dict
    excluded: tuple = ()
    selection: dict = field(default_factory=dict)
    warnings: tuple = ()

    @property
    def n_bins(self) -> int:
        return len(self.distance)

    def rows(self) -> list[dict]:
        """One dict per bin (``El_at%``, ``El_err``; NaN for bins without atoms)."""
        out = []
        for i in range(self.n_bins):
            row = {"lo_nm": self.lo[i], "hi_nm": self.hi[i], "distance_nm": self.distance[i],
                   "atoms": int(self.atoms[i]), "ions": int(self.ions[i])}
            for el in self.elements:
                row[f"{el}_at%"] = self.percent[el][i]
                row[f"{el}_err"] = self.error[el][i]
            out.append(row)
        return out

    def to_dict(self) -> dict:
        def num(v):
            return float(v) if math.isfinite(v) else None

        bins = []
        for i in range(self.n_bins):
            bins.append({
                "distance_nm": float(self.distance[i]), "lo_nm": float(self.lo[i]),
                "hi_nm": float(self.hi[i]),
                "at_pct": {el: num(self.percent[el][i]) for el in self.elements},
                "at_pct_err": {el: num(self.error[el][i]) for el in self.elements},
                "ions": int(self.ions[i]), "atoms": int(self.atoms[i])})
        d = {"kind": self.kind, "bin_nm": self.bin_nm, "n_bins": self.n_bins,
             "max_distance_nm": self.max_distance_nm, "elements": list(self.elements),
             "excluded": list(self.excluded), "ions_counted": self.ions_counted,
             "ions_binned": int(self.ions.sum()), "ions_beyond": self.ions_beyond,
             "sign": ("negative above the threshold (inside), positive below"
                      if self.kind == "isosurface" else "distance from the axis"),
             "error": "binomial, sqrt(C(1-C)/N), N atoms in the bin",
             "surface": self.surface, "bins": bins, "selection": dict(self.selection),
             "warnings": list(self.warnings)}
        if (self.atoms == 0).any():
            d["null_reason"] = "bins with no atoms have no composition (null)"
        return d


def _edges(bin_nm: float, lo: float, hi: float) -> np.ndarray:
    """Bin edges ``k * bin_nm`` covering [lo, hi] (an edge at 0)."""
    if not (hi - lo) / bin_nm <= MAX_BINS:      # also inf and NaN, before floor and ceil
        raise AnalysisError(f"{(hi - lo) / bin_nm:,.0f} bins of {bin_nm:g} nm is above the "
                            f"limit of {MAX_BINS:,}: give wider bins or a shorter distance")
    k0 = math.floor(lo / bin_nm)
    k1 = max(math.ceil(hi / bin_nm), k0 + 1)
    if k1 - k0 > MAX_BINS:
        raise AnalysisError(f"{k1 - k0:,} bins of {bin_nm:g} nm is above the limit of "
                            f"{MAX_BINS:,}: give wider bins or a shorter distance")
    return bin_nm * np.arange(k0, k1 + 1, dtype=np.float64)


def _result(kind, counts, edges, matrix, all_els, elements, exclude, n_counted, beyond,
            bin_nm, max_distance, surface, selection, warnings) -> Proxigram:
    ions = counts.sum(axis=1)
    nz = np.flatnonzero(ions)
    if len(nz) == 0:
        raise AnalysisError(f"no counted ion within {max_distance:g} nm of the surface"
                            if max_distance is not None else "no counted ions to bin")
    a, b = int(nz[0]), int(nz[-1]) + 1
    counts = counts[a:b]
    lo, hi = edges[a:b], edges[a + 1:b + 1]
    atoms_el = counts @ matrix
    keep_el = np.array([el not in exclude for el in all_els], bool)
    atoms = atoms_el[:, keep_el].sum(axis=1) if len(all_els) else np.zeros(len(lo), np.int64)
    percent, error = {}, {}
    with np.errstate(invalid="ignore", divide="ignore"):
        for el in elements:
            c = atoms_el[:, all_els.index(el)] / np.where(atoms > 0, atoms, np.nan)
            percent[el] = 100.0 * c
            error[el] = 100.0 * np.sqrt(c * (1.0 - c) / atoms)
    return Proxigram(kind=kind, bin_nm=float(bin_nm), lo=lo, hi=hi, distance=0.5 * (lo + hi),
                     atoms=atoms.astype(np.int64), ions=counts.sum(axis=1).astype(np.int64),
                     elements=tuple(elements), percent=percent, error=error,
                     ions_counted=int(n_counted), ions_beyond=int(beyond),
                     max_distance_nm=None if max_distance is None else float(max_distance),
                     surface=surface, excluded=tuple(exclude), selection=dict(selection or {}),
                     warnings=tuple(warnings))


def _check_bins(bin_nm, max_distance_nm):
    if not (bin_nm > 0 and math.isfinite(bin_nm)):
        raise AnalysisError(f"the bin width must be a positive number of nm, not {bin_nm}")
    if max_distance_nm is not None and not (max_distance_nm > 0
                                            and math.isfinite(max_distance_nm)):
        raise AnalysisError(f"the largest distance must be a positive number of nm, not "
                            f"{max_distance_nm}")


def proxigram(run: Run, ranges: RangeTable, surface: Isosurface, bin_nm: float = 0.5,
              max_distance_nm: float = 10.0, elements=None, exclude=(),
              selection: dict | None = None, chunk_ions: int = _CHUNK) -> Proxigram:
    """Composition against each ion's signed distance to ``surface``.

    Parameters
    ----------
    run : Run
        Needs ``x y z`` (nm) and ``mass`` (Da); the ions the surface was made
        from, or others in the same frame.
    ranges : RangeTable
    surface : Isosurface
    bin_nm : float
        Bin width (nm); 0 is a bin edge.
    max_distance_nm : float
        Ions farther from the surface are not binned (they are counted in
        ``ions_beyond``).
    elements : iterable of str, optional
        Elements reported (default: all ranged, less the excluded).
    exclude : iterable of str
        Elements whose ions are dropped whole.
    selection : dict, optional
    chunk_ions : int

    Returns
    -------
    Proxigram

    Raises
    ------
    AnalysisError
        A surface without triangles, no counted ion within reach, bad bins.

    References
    ----------
    .. [1] O. C. Hellman, J. A. Vandenbroucke, J. Rüsing, D. Isheim, D. N.
       Seidman, "Analysis of three-dimensional atom-probe data by the
       proximity histogram", Microscopy and Microanalysis 6 (2000) 437-444.
    .. [2] J. A. Bærentzen, H. Aanæs, "Signed distance computation using the
       angle weighted pseudonormal", IEEE Transactions on Visualization and
       Computer Graphics 11 (2005) 243-253.
    .. [3] C. Ericson, Real-Time Collision Detection, Morgan Kaufmann (2005),
       section 5.1.5.

    Examples
    --------
    A flat interface at z = 0: 50 at.% Cr below it, none above, ions on a
    0.5 nm lattice. The surface at 30 at.% lies between the last plane of
    ions with Cr and the first without; ions below it have negative distances.

    >>> import numpy as np
    >>> import liprobe
    >>> from liprobe import Range, RangeTable, parse_ion
    >>> from liprobe.spatial import isosurface, proxigram, voxelise
    >>> table = RangeTable.from_ranges([Range(51.5, 52.5, parse_ion("Cr+")),
    ...                                 Range(57.5, 58.5, parse_ion("Ni+"))])
    >>> g = np.arange(-6, 6, 0.5) + 0.25
    >>> x, y, z = (a.ravel() for a in np.meshgrid(g, g, g, indexing="ij"))
    >>> cr = (z < 0) & (np.indices((24, 24, 24)).sum(axis=0).ravel() % 2 == 0)
    >>> run = liprobe.Run.from_arrays(x=x, y=y, z=z, mass=np.where(cr, 52.0, 58.0))
    >>> surf = isosurface(voxelise(run, table, "Cr", voxel_nm=1.0), 30.0)
    >>> prox = proxigram(run, table, surf, bin_nm=1.0, max_distance_nm=3.0)
    >>> prox.distance
    array([-2.5, -1.5, -0.5,  0.5,  1.5,  2.5])
    >>> prox.percent["Cr"].round(1)
    array([50., 50., 50.,  0.,  0.,  0.])
    """
    _check_bins(bin_nm, max_distance_nm)
    for c in ("x", "y", "z", "mass"):
        run.source(c)
    all_els, elements, win_ion, matrix = counted_ions(ranges, exclude, elements)
    locator = MeshLocator(surface, max_distance_nm)
    edges = _edges(bin_nm, -max_distance_nm, max_distance_nm)
    n_bins = len(edges) - 1
    n_kinds = len(ranges.ions)
    counts = np.zeros(n_bins * max(n_kinds, 1), np.int64)
    n_counted = beyond = 0
    gens = [run.chunks(c, chunk_ions) for c in ("x", "y", "z", "mass")]
    for (_s, x), (_s2, y), (_s3, z), (_s4, mass) in zip(*gens):
        kind = ion_kinds(mass, ranges, win_ion)
        counted = int(np.count_nonzero(kind >= 0))
        if not counted:
            continue
        n_counted += counted
        d = locator.signed_distances(x, y, z, skip=kind)      # NaN where not counted
        beyond += counted - _bin_counts(d, kind, edges[0], 1.0 / bin_nm, n_bins, n_kinds,
                                        counts)
    if n_counted == 0:
        raise AnalysisError("no ranged (non-excluded) ions in the selection: nothing to "
                            "bin", run.path)
    counts = counts.reshape(n_bins, max(n_kinds, 1))[:, :n_kinds]
    sdict = {k: v for k, v in surface.to_dict().items()
             if k in ("kind", "species", "threshold", "unit", "area_nm2", "volume_nm3",
                      "n_components", "dropped_components", "voxel_nm", "smooth_nm",
                      "delocalisation", "plateaus", "threshold_relative")}
    return _result("isosurface", counts, edges, matrix, all_els, elements, exclude, n_counted,
                   beyond, bin_nm, max_distance_nm, sdict, selection,
                   list(ranges.warnings) + list(surface.warnings))


def specimen_axis(x, y, z, slabs: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """The least-squares line through the mean (x, y) of ``slabs`` equal-count z slabs.

    The two end slabs are left out of the fit when there are five or more (a
    tilted specimen's ends are cut obliquely, which pulls their mean inwards).

    Returns
    -------
    point : ndarray, shape (3,)
        On the axis, at the median z (nm).
    direction : ndarray, shape (3,)
        Unit vector along the axis, with a positive z component.
    """
    x, y, z = (np.asarray(a, np.float64) for a in (x, y, z))
    order = np.argsort(z, kind="stable")
    parts = np.array_split(order, max(min(slabs, len(z) // 50), 1))
    if len(parts) >= 5:          # the end slabs are cut obliquely when the axis is tilted
        parts = parts[1:-1]
    zc = np.array([z[p].mean() for p in parts])
    xc = np.array([x[p].mean() for p in parts])
    yc = np.array([y[p].mean() for p in parts])
    z0 = float(np.median(z))
    if len(parts) < 2 or np.ptp(zc) == 0:
        return np.array([xc.mean(), yc.mean(), z0]), np.array([0.0, 0.0, 1.0])
    bx, ax = np.polyfit(zc - z0, xc, 1)
    by, ay = np.polyfit(zc - z0, yc, 1)
    u = np.array([bx, by, 1.0])
    return np.array([ax, ay, z0]), u / np.linalg.norm(u)


def radial_proxigram(run: Run, ranges: RangeTable, bin_nm: float = 0.5, center_nm=None,
                     max_distance_nm: float | None = None, elements=None, exclude=(),
                     slabs: int = 10, fit_ions: int = 1_000_000, selection: dict | None = None,
                     chunk_ions: int = _CHUNK) -> Proxigram:
    """Composition against the distance from the specimen's axis (nm).

    Parameters
    ----------
    run : Run
        Needs ``x y z`` (nm) and ``mass`` (Da).
    ranges : RangeTable
    bin_nm : float
        Bin width (nm), from the axis outwards.
    center_nm : (float, float), optional
        An axis parallel to z through (x, y); by default the line fitted
        through the mean x, y of ``slabs`` slabs of equal ion count along z
        (on at most ``fit_ions`` ions, every k-th).
    max_distance_nm : float, optional
        Ions farther from the axis are not binned.
    elements, exclude, selection, chunk_ions
        As :func:`proxigram`.

    Returns
    -------
    Proxigram
        ``kind="radial"``; ``surface`` holds the axis (a point and a direction).

    Examples
    --------
    A cylinder of radius 8 nm whose outer 2 nm hold Cr (the shell of a
    coating), ions on a 0.5 nm lattice:

    >>> import numpy as np
    >>> import liprobe
    >>> from liprobe import Range, RangeTable, parse_ion
    >>> from liprobe.spatial import radial_proxigram
    >>> table = RangeTable.from_ranges([Range(51.5, 52.5, parse_ion("Cr+")),
    ...                                 Range(57.5, 58.5, parse_ion("Ni+"))])
    >>> g = np.arange(-8, 8, 0.5) + 0.25
    >>> x, y, z = (a.ravel() for a in np.meshgrid(g, g, g, indexing="ij"))
    >>> r = np.hypot(x, y)
    >>> run = liprobe.Run.from_arrays(x=x[r < 8], y=y[r < 8], z=z[r < 8],
    ...                               mass=np.where(r[r < 8] > 6, 52.0, 58.0))
    >>> prox = radial_proxigram(run, table, bin_nm=2.0, center_nm=(0, 0))
    >>> prox.distance, prox.percent["Cr"]
    (array([1., 3., 5., 7.]), array([  0.,   0.,   0., 100.]))
    """
    _check_bins(bin_nm, max_distance_nm)
    for c in ("x", "y", "z", "mass"):
        run.source(c)
    all_els, elements, win_ion, matrix = counted_ions(ranges, exclude, elements)
    n = run.n_ions
    if n == 0:
        raise AnalysisError("no ions in the selection: nothing to bin", run.path)
    if center_nm is not None:
        cx, cy = (float(c) for c in center_nm)
        point, u = np.array([cx, cy, 0.0]), np.array([0.0, 0.0, 1.0])
        how = "parallel to z through center_nm"
    else:
        step = max(n // fit_ions, 1)
        xs, ys, zs = (np.concatenate([c[::step] for _s, c in run.chunks(k, chunk_ions)])
                      for k in ("x", "y", "z"))
        point, u = specimen_axis(xs, ys, zs, slabs)
        del xs, ys, zs
        how = f"least-squares line through the mean x, y of {slabs} z slabs"

    def radii(x, y, z):
        p = np.stack([np.asarray(a, np.float64) for a in (x, y, z)], axis=1) - point
        return np.linalg.norm(np.cross(p, u), axis=1)

    gens = [run.chunks(c, chunk_ions) for c in ("x", "y", "z", "mass")]
    r_max = 0.0
    n_counted = 0
    for (_s, x), (_s2, y), (_s3, z), (_s4, mass) in zip(*gens):
        ok = ion_kinds(mass, ranges, win_ion) >= 0
        if ok.any():
            n_counted += int(ok.sum())
            r_max = max(r_max, float(radii(x[ok], y[ok], z[ok]).max()))
    if n_counted == 0:
        raise AnalysisError("no ranged (non-excluded) ions in the selection: nothing to "
                            "bin", run.path)
    top = r_max if max_distance_nm is None else min(r_max, max_distance_nm)
    edges = _edges(bin_nm, 0.0, top)
    n_bins = len(edges) - 1
    n_kinds = len(ranges.ions)
    counts = np.zeros(n_bins * max(n_kinds, 1), np.int64)
    beyond = 0
    gens = [run.chunks(c, chunk_ions) for c in ("x", "y", "z", "mass")]
    for (_s, x), (_s2, y), (_s3, z), (_s4, mass) in zip(*gens):
        kind = ion_kinds(mass, ranges, win_ion)
        ok = kind >= 0
        r = radii(x[ok], y[ok], z[ok])
        inr = r <= top if max_distance_nm is not None else np.ones(len(r), bool)
        beyond += int((~inr).sum())
        b = np.clip(np.floor(r[inr] / bin_nm).astype(np.int64), 0, n_bins - 1)
        counts += np.bincount(b * n_kinds + kind[ok][inr], minlength=len(counts))
    counts = counts.reshape(n_bins, max(n_kinds, 1))[:, :n_kinds]
    axis = {"axis_point_nm": [float(v) for v in point],
            "axis_direction": [float(v) for v in u], "axis": how,
            "tilt_deg": float(math.degrees(math.acos(min(abs(u[2]), 1.0))))}
    return _result("radial", counts, edges, matrix, all_els, elements, exclude, n_counted,
                   beyond, bin_nm, max_distance_nm, axis, selection, list(ranges.warnings))


def write_proxigram_csv(prox: Proxigram, path, header: dict, empty_columns=()) -> None:
    """A proxigram as CSV, atomically: a ``# key: value`` line per item of ``header``
    (values as JSON), then a row per bin (:meth:`Proxigram.rows`; floats to 6
    significant digits, empty where not finite). ``empty_columns``: the header row
    when there is no bin."""
    import csv
    import json

    from ..io._files import atomic_write, to_jsonable

    rows = prox.rows()
    with atomic_write(path, "w", newline="", encoding="utf-8") as f:
        for k, v in header.items():
            f.write(f"# {k}: {json.dumps(to_jsonable(v))}\n")
        w = csv.writer(f)
        w.writerow(list(rows[0]) if rows else list(empty_columns))
        for row in rows:
            w.writerow(["" if isinstance(v, float) and not math.isfinite(v) else
                        (f"{v:.6g}" if isinstance(v, float) else v) for v in row.values()])
