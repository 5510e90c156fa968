"""Isoconcentration and isodensity surfaces, by marching cubes.

The field of a :class:`~liprobe.spatial.voxels.VoxelGrid` (the composition of
its species in at.%, or a density in atoms/nm^3) is contoured at a threshold
with scikit-image's marching cubes (Lewiner et al. 2003), only where every
corner of a cube lies inside the data: a phase that crosses the edge of the
data ends there as an open surface, with no false surface along the edge.

The triangles are oriented so that their normals point from the side above
the threshold (the high-concentration side, "inside") to the side below.
The mesh is split into connected components (triangles sharing vertices).
Each component has

- its area: the sum of its triangles' areas (nm^2);
- its enclosed volume (nm^3): for a closed component, the divergence theorem
  over its triangles, ``sum v0 . (v1 x v2) / 6`` (positive when it encloses
  the high side, negative when it encloses a pocket below the threshold);
  for an open component (cut by the edge of the data), the volume of the
  voxels above the threshold in the region it bounds and inside the data
  (where the delocalised density is at least half the median);
- whether it is closed (every edge shared by two triangles).

Components whose volume is below ``min_volume_nm3`` (noise, single voxels)
are dropped, and their count is reported.

The two plateau compositions (or densities) that the threshold separates are
measured from the atoms of each voxel without delocalisation, in the voxels
more than ``2 sigma + one voxel`` (cloud in cell: two voxels) from the
thresholded region: inside it, and in a shell of ``plateau_nm`` outside it.
The threshold is also given relative to them,
``(threshold - outside) / (inside - outside)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import AnalysisError
from .voxels import VoxelGrid

__all__ = ["SurfaceComponent", "Isosurface", "isosurface", "mesh_components",
           "triangle_areas", "KINDS"]

#: field -> unit
KINDS = {"concentration": "at.%", "density": "atoms/nm^3"}


@dataclass(frozen=True)
class SurfaceComponent:
    """One connected piece of an isosurface.

    Attributes
    ----------
    area_nm2 : float
    volume_nm3 : float
        Enclosed volume (always >= 0; see ``encloses``).
    closed : bool
        Every edge is shared by two triangles.
    encloses : str
        ``"above"`` (the region above the threshold: a precipitate) or
        ``"below"`` (a pocket below the threshold inside a high region).
    volume_method : str
        ``"mesh"`` (divergence theorem) or ``"voxels"`` (open component).
    faces, vertices : int
    centroid_nm : tuple of float
        Mean of its vertices.
    """

    area_nm2: float
    volume_nm3: float
    closed: bool
    encloses: str
    volume_method: str
    faces: int
    vertices: int
    centroid_nm: tuple

    def to_dict(self) -> dict:
        return {"area_nm2": self.area_nm2, "volume_nm3": self.volume_nm3,
                "closed": self.closed, "encloses": self.encloses,
                "volume_method": self.volume_method, "faces": self.faces,
                "vertices": self.vertices, "centroid_nm": list(self.centroid_nm)}


@dataclass(frozen=True)
class Isosurface:
    """An isosurface: its mesh (nm), components, plateaus and how it was made.

    Attributes
    ----------
    vertices : ndarray of float64, shape (n, 3)
        Vertex positions (nm).
    faces : ndarray of int64, shape (m, 3)
        Triangles (vertex indices), normals towards the low side.
    normals : ndarray of float64, shape (n, 3)
        Unit vertex normals, towards the low side.
    face_component : ndarray of int64, shape (m,)
        Index into ``components`` of each triangle.
    components : tuple of SurfaceComponent
        The kept components, largest volume first.
    dropped_components : int
        Components below ``min_volume_nm3``, dropped.
    kind : str
        ``"concentration"`` or ``"density"``.
    species : tuple of str
    threshold : float
        In at.% (concentration) or atoms/nm^3 (density).
    plateaus : dict
        ``inside`` and ``outside``: value, error, atoms, voxels (or None with
        ``reason``).
    grid : VoxelGrid
        The field it was contoured from (not in :meth:`to_dict`).
    """

    vertices: np.ndarray = field(repr=False)
    faces: np.ndarray = field(repr=False)
    normals: np.ndarray = field(repr=False)
    face_component: np.ndarray = field(repr=False)
    components: tuple
    dropped_components: int
    min_volume_nm3: float
    kind: str
    species: tuple
    threshold: float
    plateaus: dict
    grid: VoxelGrid = field(repr=False, compare=False)
    warnings: tuple = ()

    @property
    def unit(self) -> str:
        return KINDS[self.kind]

    @property
    def area_nm2(self) -> float:
        """Area of the kept components (nm^2)."""
        return float(sum(c.area_nm2 for c in self.components))

    @property
    def volume_nm3(self) -> float:
        """Volume enclosed above the threshold by the kept components (nm^3)."""
        return float(sum(c.volume_nm3 if c.encloses == "above" else -c.volume_nm3
                         for c in self.components))

    @property
    def threshold_relative(self) -> tuple[float | None, str | None]:
        """``(threshold - outside) / (inside - outside)`` and, when None, why."""
        p_in, p_out = self.plateaus.get("inside"), self.plateaus.get("outside")
        if p_in is None or p_out is None:
            return None, "a plateau could not be measured (see plateaus)"
        den = p_in["value"] - p_out["value"]
        if den == 0:
            return None, "the two plateaus are equal"
        return (self.threshold - p_out["value"]) / den, None

    def to_dict(self) -> dict:
        rel, why = self.threshold_relative
        d = {
            "kind": self.kind, "species": list(self.species), "threshold": self.threshold,
            "unit": self.unit, "area_nm2": self.area_nm2, "volume_nm3": self.volume_nm3,
            "n_components": len(self.components),
            "components": [c.to_dict() for c in self.components],
            "dropped_components": self.dropped_components,
            "min_volume_nm3": self.min_volume_nm3,
            "plateaus": self.plateaus, "threshold_relative": rel,
            "vertices": int(len(self.vertices)), "faces": int(len(self.faces)),
            "voxel_nm": self.grid.voxel_nm, "smooth_nm": self.grid.sigma_nm,
            "delocalisation": self.grid.delocalisation, "grid": self.grid.to_dict(),
            "selection": dict(self.grid.selection),
            "warnings": list(self.grid.warnings) + list(self.warnings),
        }
        if rel is None:
            d["threshold_relative_reason"] = why
        return d

    def write_ply(self, path) -> str:
        """Write the mesh as a binary little-endian PLY (:func:`liprobe.io.ply.write_ply`)."""
        from ..io.ply import write_ply

        comments = [f"liprobe isosurface: {self.kind} of {'+'.join(self.species) or 'all'} "
                    f"at {self.threshold:g} {self.unit}", "units: nm"]
        return write_ply(path, self.vertices, self.faces, normals=self.normals,
                         comments=comments)


_FACE_CHUNK = 1 << 16           # triangles per step of the per-face sums (bounded temporaries)


def triangle_areas(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area of each triangle, ``|(v1 - v0) x (v2 - v0)| / 2``."""
    out = np.empty(len(faces))
    for s in range(0, len(faces), _FACE_CHUNK):
        f = faces[s:s + _FACE_CHUNK]
        v0, v1, v2 = (vertices[f[:, i]] for i in range(3))
        out[s:s + len(f)] = 0.5 * np.linalg.norm(np.cross(v1 - v0, v2 - v0), axis=1)
    return out


def _signed_volumes(vertices: np.ndarray, faces: np.ndarray, origins: np.ndarray,
                    face_origin: np.ndarray) -> np.ndarray:
    """Signed volume of the tetrahedron from each face to its point ``origins[face_origin]``
    (nm^3): ``a . (b x c) / 6`` with ``a, b, c`` the corners relative to it."""
    out = np.empty(len(faces))
    for s in range(0, len(faces), _FACE_CHUNK):
        f, o = faces[s:s + _FACE_CHUNK], origins[face_origin[s:s + _FACE_CHUNK]]
        a, b, c = (vertices[f[:, i]] - o for i in range(3))
        out[s:s + len(f)] = np.einsum("ij,ij->i", a, np.cross(b, c)) / 6.0
    return out


def mesh_components(n_vertices: int, faces: np.ndarray) -> tuple[int, np.ndarray]:
    """Connected components of a mesh (triangles sharing a vertex): count, label per vertex."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    if len(faces) == 0:
        return 0, np.zeros(n_vertices, np.int64)
    idx = np.int32 if n_vertices < 2 ** 31 else np.int64     # half the memory of int64
    a = np.concatenate([faces[:, 0], faces[:, 1], faces[:, 2]]).astype(idx)
    b = np.concatenate([faces[:, 1], faces[:, 2], faces[:, 0]]).astype(idx)
    g = coo_matrix((np.ones(len(a), np.int8), (a, b)), shape=(n_vertices, n_vertices))
    del a, b
    n, labels = connected_components(g, directed=False)
    return int(n), labels.astype(np.int64)


def cube_mask(valid: np.ndarray) -> np.ndarray:
    """The cubes of marching cubes whose 8 corners are all ``valid``; element ``(i, j, k)``
    is the cube from voxel ``(i, j, k)`` to ``(i + 1, j + 1, k + 1)``."""
    c = valid[:-1, :-1, :-1].copy()
    for di in (0, 1):
        for dj in (0, 1):
            for dk in (0, 1):
                c &= valid[di:valid.shape[0] - 1 + di, dj:valid.shape[1] - 1 + dj,
                           dk:valid.shape[2] - 1 + dk]
    return c


def _contour(values: np.ndarray, valid: np.ndarray, level: float):
    """Marching cubes on the cubes whose corners are all valid: vertices (voxel index
    coordinates), faces (normals towards the low side) and unit vertex normals."""
    from skimage.measure import marching_cubes

    cubes = cube_mask(valid)
    mask = np.zeros(valid.shape, bool)
    mask[1:, 1:, 1:] = cubes           # scikit-image reads a cube's mask at its upper corner
    filled = np.where(valid, values, 0.0).astype(np.float32) if values.dtype != np.float32 \
        else np.where(valid, values, np.float32(0.0))
    try:
        verts, faces, _n, _v = marching_cubes(filled, level=level, mask=mask,
                                              allow_degenerate=False)
    except RuntimeError:               # "No surface found at the given iso value"
        return np.zeros((0, 3)), np.zeros((0, 3), np.int64), np.zeros((0, 3))
    del filled, mask, _n, _v
    # whatever the mask's convention, keep only triangles inside all-valid cubes
    cell = np.floor(verts[faces].mean(axis=1)).astype(np.int64)
    for ax in range(3):
        np.clip(cell[:, ax], 0, cubes.shape[ax] - 1, out=cell[:, ax])
    faces = faces[cubes[cell[:, 0], cell[:, 1], cell[:, 2]]]
    used = np.zeros(len(verts), bool)
    used[faces.ravel()] = True
    remap = np.cumsum(used) - 1
    faces = remap[faces][:, [0, 2, 1]].astype(np.int64)      # normals towards the low side
    verts = verts[used].astype(np.float64)
    # vertex normals: the area-weighted normals of the triangles around each vertex
    fn = np.cross(verts[faces[:, 1]] - verts[faces[:, 0]], verts[faces[:, 2]] - verts[faces[:, 0]])
    vn = np.zeros_like(verts)
    for c in range(3):
        np.add.at(vn, faces[:, c], fn)
    vn /= np.maximum(np.linalg.norm(vn, axis=1), 1e-300)[:, None]
    return verts, faces, vn


def _edt(block: np.ndarray) -> np.ndarray:
    """Euclidean distance (voxels) from each True voxel to the nearest False one; infinite
    where the block holds no False voxel (scipy's transform has no such case)."""
    from scipy import ndimage

    if block.all():
        return np.full(block.shape, np.inf)
    return ndimage.distance_transform_edt(block)


def distance_shells(high: np.ndarray, offset: float, outer: float,
                    slab: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """The voxels of ``high`` farther than ``offset`` from its edge, and the voxels outside
    it whose distance to it is in ``(offset, outer]`` (voxel edges, Euclidean from centre
    to centre, as ``scipy.ndimage.distance_transform_edt``).

    Computed in slabs of ``slab`` planes along the grid's longest axis, each with a halo
    of ``ceil(max(offset, outer)) + 1`` planes on either side, so that the transform's
    memory is a slab's, not the grid's. The result is exact: a voxel's nearest voxel
    across the edge, when it lies within the halo's reach, lies within the slab and its
    halo; when it does not, both distances exceed both limits.
    """
    ax = int(np.argmax(high.shape))
    n = high.shape[ax]
    halo = int(math.ceil(max(offset, outer))) + 1
    inside = np.zeros(high.shape, bool)
    outside = np.zeros(high.shape, bool)

    def cut(a, lo, hi):
        key = [slice(None)] * 3
        key[ax] = slice(lo, hi)
        return a[tuple(key)]

    for a in range(0, n, slab):
        b = min(a + slab, n)
        lo, hi = max(a - halo, 0), min(b + halo, n)
        block = np.ascontiguousarray(cut(high, lo, hi))
        d_in = cut(_edt(block), a - lo, b - lo)
        d_out = cut(_edt(~block), a - lo, b - lo)
        core = cut(block, a - lo, b - lo)
        cut(inside, a, b)[...] = core & (d_in > offset)
        cut(outside, a, b)[...] = ~core & (d_out > offset) & (d_out <= outer)
    return inside, outside


def _boundary_edge_faces(faces: np.ndarray) -> np.ndarray:
    """Faces that hold an edge used by one triangle only (the rim of an open surface)."""
    n = int(faces.max()) + 1
    f = faces.astype(np.int64, copy=False)
    # edge (i, j) of face k as the key min * n + max, at 3k, 3k+1, 3k+2
    key = np.empty(3 * len(f), np.int64)
    for e, (i, j) in enumerate(((0, 1), (1, 2), (2, 0))):
        key[e::3] = np.minimum(f[:, i], f[:, j]) * n + np.maximum(f[:, i], f[:, j])
    order = np.argsort(key, kind="stable")
    sk = key[order]
    del key
    alone = np.ones(len(sk), bool)             # an edge no other face shares
    same = sk[1:] == sk[:-1]
    alone[1:] &= ~same
    alone[:-1] &= ~same
    once = np.zeros(len(sk), bool)
    once[order] = alone
    return once.reshape(-1, 3).any(axis=1)


def _plateau(raw_solute, raw_atoms, sel, kind, voxel_nm) -> dict | None:
    """Composition (at.%, binomial error) or density (atoms/nm^3 of ``raw_solute``, Poisson
    error) of the voxels ``sel``; None when they hold no atoms."""
    atoms = int(raw_atoms[sel].sum())
    n_vox = int(sel.sum())
    if atoms == 0:
        return None
    s = int(raw_solute[sel].sum())
    if kind == "concentration":
        c = s / atoms
        return {"value": 100.0 * c, "error": 100.0 * math.sqrt(c * (1 - c) / atoms),
                "atoms": atoms, "voxels": n_vox}
    vol = n_vox * voxel_nm ** 3
    return {"value": s / vol, "error": math.sqrt(s) / vol, "atoms": atoms, "voxels": n_vox}


def isosurface(grid: VoxelGrid, threshold: float, kind: str = "concentration",
               min_volume_nm3: float | None = None, plateau_nm: float = 5.0) -> Isosurface:
    """The surface where ``grid``'s field crosses ``threshold``.

    Parameters
    ----------
    grid : VoxelGrid
        From :func:`~liprobe.spatial.voxels.voxelise`.
    threshold : float
        At.% of the grid's species (``kind="concentration"``), or atoms/nm^3
        (``kind="density"``: of the species, or of every counted atom when
        the grid has no species).
    kind : {"concentration", "density"}
    min_volume_nm3 : float, optional
        Components enclosing less are dropped (default: 10 voxels).
    plateau_nm : float
        Width of the shell outside the surface whose atoms give the outside
        plateau (nm).

    Returns
    -------
    Isosurface

    Raises
    ------
    AnalysisError
        A concentration surface of a grid without species, a threshold out of
        range, or a field that holds no voxel on each side of the threshold.

    References
    ----------
    .. [1] T. Lewiner, H. Lopes, A. W. Vieira, G. Tavares, "Efficient
       implementation of Marching Cubes' cases with topological guarantees",
       Journal of Graphics Tools 8 (2003) 1-15.
    .. [2] O. C. Hellman, J. A. Vandenbroucke, J. Rüsing, D. Isheim, D. N.
       Seidman, "Analysis of three-dimensional atom-probe data by the
       proximity histogram", Microscopy and Microanalysis 6 (2000) 437-444.

    Examples
    --------
    A sphere of radius 6 nm at 50 at.% Cr in a matrix without Cr, ions on a
    0.5 nm lattice; voxels of 1 nm, Gaussian sigma of one voxel:

    >>> import numpy as np
    >>> import liprobe
    >>> from liprobe import Range, RangeTable, parse_ion
    >>> from liprobe.spatial import isosurface, voxelise
    >>> table = RangeTable.from_ranges([Range(51.5, 52.5, parse_ion("Cr+")),
    ...                                 Range(57.5, 58.5, parse_ion("Ni+"))])
    >>> g = np.arange(-12, 12, 0.5) + 0.25
    >>> x, y, z = (a.ravel() for a in np.meshgrid(g, g, g, indexing="ij"))
    >>> inside = x ** 2 + y ** 2 + z ** 2 < 36
    >>> cr = inside & (np.indices((48, 48, 48)).sum(axis=0).ravel() % 2 == 0)
    >>> run = liprobe.Run.from_arrays(x=x, y=y, z=z, mass=np.where(cr, 52.0, 58.0))
    >>> surf = isosurface(voxelise(run, table, "Cr", voxel_nm=1.0), 20.0)
    >>> len(surf.components), surf.components[0].closed
    (1, True)
    >>> area, volume = 4 * np.pi * 6 ** 2, 4 / 3 * np.pi * 6 ** 3
    >>> print(f"{surf.area_nm2 / area:.2f} {surf.volume_nm3 / volume:.2f}")
    1.02 1.03
    >>> print(f"{surf.plateaus['inside']['value']:.1f} {surf.plateaus['outside']['value']:.1f}")
    50.0 0.0
    """
    from scipy import ndimage

    if kind not in KINDS:
        raise AnalysisError(f"unknown surface kind '{kind}' (give concentration or density)")
    if not math.isfinite(threshold):
        raise AnalysisError(f"the threshold must be a number, not {threshold}")
    if kind == "concentration":
        if not grid.species:
            raise AnalysisError("an isoconcentration surface needs a species (an element)")
        if not 0 < threshold < 100:
            raise AnalysisError(f"the threshold {threshold:g} at.% is not between 0 and 100")
        values = grid.percent
        raw_solute = grid.raw_solute
    else:
        if not threshold > 0:
            raise AnalysisError(f"the density threshold {threshold:g} atoms/nm^3 is not "
                                "positive")
        values = grid.solute_density if grid.species else grid.density
        raw_solute = grid.raw_solute if grid.species else grid.raw_atoms
    h = grid.voxel_nm
    if min_volume_nm3 is None:
        min_volume_nm3 = 10.0 * h ** 3
    if not min_volume_nm3 >= 0:
        raise AnalysisError(f"the smallest volume must be 0 or more nm^3, not {min_volume_nm3}")
    valid = np.isfinite(values)
    name = f"{'+'.join(grid.species) or 'all atoms'}"
    if not valid.any():
        raise AnalysisError("no voxel holds data: nothing to contour")
    high = valid & (values >= threshold)
    n_high = int(high.sum())
    warnings = []
    empty = np.zeros((0, 3))
    if n_high == 0 or n_high == int(valid.sum()):
        side = "below" if n_high == 0 else "above"
        lo, hi = float(np.nanmin(values)), float(np.nanmax(values))
        warnings.append(f"the {kind} of {name} is {side} {threshold:g} {KINDS[kind]} "
                        f"everywhere (from {lo:.3g} to {hi:.3g}): no surface")
        verts, faces, normals = empty, np.zeros((0, 3), np.int64), empty
    else:
        verts, faces, normals = _contour(values, valid, float(threshold))
    idx_verts = verts                                      # voxel index coordinates
    verts = np.asarray(grid.origin_nm) + h * idx_verts

    n_comp, vlabel = mesh_components(len(verts), faces)
    flabel = vlabel[faces[:, 0]] if len(faces) else np.zeros(0, np.int64)
    areas = triangle_areas(verts, faces) if len(faces) else np.zeros(0)
    open_face = _boundary_edge_faces(faces) if len(faces) else np.zeros(0, bool)
    region, n_region = ndimage.label(high, structure=np.ones((3, 3, 3), bool))
    # an open component's volume: its region's voxels inside the data, taken as those at
    # least half as dense as the data's median (the edge of the data is where the
    # delocalised density falls to half)
    typical = float(np.median(grid.atoms[grid.raw_atoms > 0], overwrite_input=True))
    in_data = grid.atoms >= 0.5 * typical
    region_vox = np.bincount(region[in_data], minlength=n_region + 1)
    del in_data                                            # grid-sized temporaries go early

    # per component, without a loop over components (noise can make thousands of them)
    m = max(n_comp, 1)
    n_faces = np.bincount(flabel, minlength=m)
    n_verts = np.bincount(vlabel, minlength=m)
    area = np.bincount(flabel, weights=areas, minlength=m)
    closed = np.bincount(flabel, weights=open_face, minlength=m) == 0
    centroid = np.stack([np.bincount(vlabel, weights=verts[:, ax], minlength=m)
                         for ax in range(3)], axis=1) / np.maximum(n_verts, 1)[:, None]
    if len(faces):
        signed = np.bincount(flabel, weights=_signed_volumes(verts, faces, centroid, flabel),
                             minlength=m)
        # an open component bounds the region above the threshold that most of the grid
        # points beside its vertices belong to
        corners = np.concatenate([np.floor(idx_verts), np.ceil(idx_verts)]).astype(np.int64)
        for ax in range(3):
            np.clip(corners[:, ax], 0, grid.shape[ax] - 1, out=corners[:, ax])
        labs = region[corners[:, 0], corners[:, 1], corners[:, 2]].astype(np.int64)
        del corners
        comp = np.concatenate([vlabel, vlabel])
        ok = labs > 0
        pairs, counts = np.unique(comp[ok] * (n_region + 1) + labs[ok], return_counts=True)
        pc, pl = pairs // (n_region + 1), pairs % (n_region + 1)
        order = np.lexsort((counts, pc))                     # by component, then count
        pc, pl = pc[order], pl[order]
        last = np.r_[pc[1:] != pc[:-1], True] if len(pc) else np.zeros(0, bool)
        best_lab = np.zeros(m, np.int64)                     # 0: no region found
        best_lab[pc[last]] = pl[last]
        voxel_volume = region_vox[best_lab] * h ** 3 * (best_lab > 0)
        del labs, comp, ok, pairs, counts, pc, pl, order, last
    else:
        signed = voxel_volume = np.zeros(m)
    del region
    comps = []
    for c in range(n_comp):
        if closed[c]:
            encloses, volume, method = ("above" if signed[c] >= 0 else "below"), \
                abs(float(signed[c])), "mesh"
        else:
            encloses, volume, method = "above", float(voxel_volume[c]), "voxels"
        comps.append((volume, SurfaceComponent(
            area_nm2=float(area[c]), volume_nm3=volume, closed=bool(closed[c]),
            encloses=encloses, volume_method=method, faces=int(n_faces[c]),
            vertices=int(n_verts[c]), centroid_nm=tuple(float(v) for v in centroid[c])), c))
    kept = sorted([t for t in comps if t[0] >= min_volume_nm3], key=lambda t: -t[0])
    dropped = len(comps) - len(kept)
    new_id = np.full(max(n_comp, 1), -1, np.int64)
    for i, (_v, _c, old) in enumerate(kept):
        new_id[old] = i
    keep_face = new_id[flabel] >= 0 if len(faces) else np.zeros(0, bool)
    keep_vert = new_id[vlabel] >= 0 if len(verts) else np.zeros(0, bool)
    remap = np.cumsum(keep_vert) - 1
    faces = remap[faces[keep_face]] if len(faces) else faces
    face_component = new_id[flabel[keep_face]] if len(flabel) else flabel
    verts, normals = verts[keep_vert], normals[keep_vert]

    # plateaus from the voxels' own atoms, away from the thresholded region
    if grid.delocalisation == "gauss" and grid.sigma_nm > 0:
        offset = 2.0 * grid.sigma_nm / h + 1.0
    else:
        offset = 2.0
    plateaus: dict = {"offset_nm": offset * h, "shell_nm": plateau_nm}
    if n_high and n_high < int(valid.sum()):
        inside, outside = distance_shells(high, offset, offset + plateau_nm / h)
        outside &= valid
        for key, sel in (("inside", inside), ("outside", outside)):
            p = _plateau(raw_solute, grid.raw_atoms, sel, kind, h)
            plateaus[key] = p
            if p is None:
                plateaus[f"{key}_reason"] = (f"no voxel with atoms more than {offset * h:g} nm "
                                             f"{key} the surface")
    else:
        plateaus.update(inside=None, outside=None,
                        inside_reason="no surface", outside_reason="no surface")
    return Isosurface(vertices=verts, faces=faces.astype(np.int64), normals=normals,
                      face_component=face_component.astype(np.int64),
                      components=tuple(t[1] for t in kept), dropped_components=dropped,
                      min_volume_nm3=float(min_volume_nm3), kind=kind, species=grid.species,
                      threshold=float(threshold), plateaus=plateaus, grid=grid,
                      warnings=tuple(warnings))
