"""A grain of another phase inside a run: found by an isosurface, measured, profiled.

An NMC811 specimen (LiNi0.8Co0.1Mn0.1O2) can hold a grain of a Li-Mn-O
spinel (LiMn2O4, Li1.1Mn1.9O4: no Ni, no Co). :func:`find_grain` finds such a
grain in a run's ions (the study gives it the whole segment, not its ROI, the
coating's element left out: a grain may cross the ROI's edge),
the way an APT analyst does with an isoconcentration surface, choosing the
threshold from the data rather than from a constant.

**The field.** The cation fraction ``f = Mn/(Ni+Co+Mn)`` (:data:`NUMERATOR`
over :data:`DENOMINATOR`) in cubic voxels of 1 nm with a Gaussian
delocalisation of 0.75 nm (:data:`SIGMA_VOXELS`;
:func:`liprobe.spatial.voxels.voxelise`, called once for the numerator's
atoms and once for the denominator's, on the same grid): 0.1 in NMC811, 1 in
the spinels. The delocalisation is kept below a voxel because the volume
enclosed by the isosurface of a blurred sphere of radius ``R`` falls short by
about ``3 s^2 / R^2`` (``s^2`` the kernel's variance with the voxel's
``h^2 / 12``): 5 % for a grain of 6 nm radius here, 9 % with a 1 nm kernel.
Only the transition metals: Li is
moved by the field and O is lost to neutral O2 in laser-pulsed oxides [3]_, so
their shares change along a run without any change of phase, while the
ratio of the transition metals is the phase's fingerprint. The coating's
element (the run's ``coating``) and the study's ``exclude`` are left out
with their ions whole: a Cr shell holds no Ni, Co or Mn, so its voxels are
outside the data for this field (no grain can be found there), and an
uncoated run's edge is simply the edge of the data. Voxels are inside the
data where the delocalised Ni+Co+Mn count is at least a tenth of the median
(the surface is only drawn there); the statistics below use the voxels at
least half as dense as the median (away from the edge).

**Is there a grain, and the threshold.**

1. The matrix's value ``f_m`` is the median of ``f`` over the voxels: the
   majority phase (a grain is the *minority* phase by definition).
2. Each voxel is compared with the matrix by its binomial error at the
   matrix's composition, ``sigma = sqrt(f_m (1 - f_m) sum w^2) / sum w``
   (Danoix et al. 2007 [2]_; ``w`` the delocalisation weights of its Ni+Co+Mn
   atoms). A voxel is of another phase when ``|f - f_m|`` is at least
   :data:`Z_SIGMA` sigma *and* at least :data:`MIN_CONTRAST` (a different
   cation sublattice, not a gradient or a segregation).
3. The largest 26-connected region of such voxels (on the richer or the
   poorer side, whichever is larger) is the grain's candidate; less than
   :data:`MIN_VOLUME_NM3` and there is no grain (the reason says the whole
   analysed volume is one phase, with its ``f``).
4. The grain's plateau ``f_g`` is the composition of the atoms (not
   delocalised) in the candidate's voxels more than ``2 sigma + 1 voxel``
   from its edge (fewer voxels when the grain is small), as the isosurface's
   plateaus are measured; with it, the Ni+Co+Mn atoms per voxel of the grain,
   ``n_g``, and of the matrix beyond the same distance, ``n_m``.
5. The threshold is midway between the two phases by volume, the value of an
   equal-volume mixture of them, ``(n_g f_g + n_m f_m) / (n_g + n_m)``:
   where a sharp interface, blurred symmetrically by the reconstruction and
   the delocalisation, lies. It is the plain midpoint ``(f_m + f_g) / 2``
   when both phases hold as many Ni+Co+Mn atoms per reconstructed nm^3;
   they seldom do (atoms per formula unit, atomic volumes, molecular ions,
   the reconstruction's local magnification), and the plain midpoint would
   then put the surface inside the sparser phase. The
   field is contoured on ``f`` when the grain is richer in Mn than the
   matrix, on ``1 - f`` (``(Ni+Co)/(Ni+Co+Mn)``) when poorer, so that the
   grain is always the side above the threshold.

Data too sparse for 1 nm voxels (median effective Ni+Co+Mn atoms per
voxel, ``(sum w)^2 / sum w^2``, below :data:`MIN_ATOMS_PER_VOXEL`) are
voxelised again at 2 nm, then 4 nm (the sigma 0.75 of the voxel); still too
sparse: no answer, with the reason.

**The grain.** The largest component of the isosurface
(:func:`liprobe.spatial.isosurface.isosurface`) enclosing the side above:

- its volume: for a closed surface, the volume it encloses (divergence
  theorem); for a grain cut by the edge of the analysed volume (the data's
  side, an ROI's wall, the start or the end of the run), the surface is open and the volume
  is that of its voxels above the threshold *inside the data* (where the
  delocalised Ni+Co+Mn density is at least half the median): the part of
  the grain that was analysed, not an extrapolation of the part that was
  not (``volume_method`` ``"mesh"`` or ``"voxels"``, ``closed``). It is a
  volume of the reconstruction: where the grain evaporates at another field
  than the matrix, local magnification at its interface changes it (a
  low-field grain's ions are focused towards its axis), as it does every
  isosurface's;
- its depth range: the z of the ions inside its surface (nm, z <= 0 into
  the specimen, the reconstruction's frame; within a few hundredths of a nm
  of the surface's own z range when it is closed);
- its composition from the ions inside the surface (negative signed
  distance; ions more than :data:`MAX_DISTANCE_NM` inside, which the
  distance does not reach, by their voxel), with the study's ratios and
  their counting errors (:func:`liprobe.composition.composition_from_counts`);
- its proxigram (Hellman et al. 2000 [1]_): every element's at.% against the
  ions' signed distance to the grain's surface, in bins of
  :data:`BIN_NM`, out to :data:`MAX_DISTANCE_NM` on each side (negative
  inside the grain), with binomial errors.

**Bounded work.** One pass over the ions per voxelisation (two or, for
sparse data, a few), and the distances only of the ions within
:data:`MAX_DISTANCE_NM` of the grain's bounding box. Grids above
:data:`MAX_VOXELS` voxels take a coarser voxel; runs above :data:`MAX_IONS`
ions are thinned to every k-th ion (evaporation order), which the result
records (``ion_step``).

References
----------
.. [1] O. C. Hellman, J. A. Vandenbroucke, J. Rüsing, D. Isheim, D. N. Seidman,
   "Analysis of three-dimensional atom-probe data by the proximity histogram",
   Microscopy and Microanalysis 6 (2000) 437-444.
.. [2] F. Danoix, G. Grancher, A. Bostel, D. Blavette, "Standard deviations of
   composition measurements in atom probe analyses", Ultramicroscopy 107 (2007)
   734-743.
.. [3] A. Devaraj et al., "Visualizing nanoscale 3D compositional fluctuation of
   lithium in advanced lithium-ion battery cathodes", Nature Communications 6
   (2015) 8014 (Li and O in laser-pulsed APT of layered oxides).
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field

import numpy as np

from ..errors import AnalysisError, LiprobeError

__all__ = ["Grain", "find_grain", "proxigram_from_artefact", "write_proxigram_csv",
           "proxigram_csv_name", "NUMERATOR", "DENOMINATOR", "Z_SIGMA", "MIN_CONTRAST",
           "MIN_VOLUME_NM3", "MIN_ATOMS_PER_VOXEL", "VOXEL_NM", "SIGMA_VOXELS", "BIN_NM",
           "MAX_DISTANCE_NM", "MAX_IONS", "MAX_VOXELS"]

#: Elements of the field's numerator and denominator: f = Mn/(Ni+Co+Mn).
NUMERATOR: tuple = ("Mn",)
DENOMINATOR: tuple = ("Ni", "Co", "Mn")
#: A voxel differs from the matrix by at least this many binomial sigma ...
Z_SIGMA = 5.0
#: ... and by at least this much of the cation fraction (0 to 1).
MIN_CONTRAST = 0.1
#: Smallest grain (nm^3): a sphere of about 4 nm across, what 1 nm voxels can still
#: tell from noise.
MIN_VOLUME_NM3 = 30.0
#: Median effective Ni+Co+Mn atoms per voxel below which the voxel is made coarser.
MIN_ATOMS_PER_VOXEL = 25.0
#: Voxel edges tried, in nm.
VOXEL_NM: tuple = (1.0, 2.0, 4.0)
#: The Gaussian delocalisation's sigma, in voxels.
SIGMA_VOXELS = 0.75
#: Proxigram bin width and reach on each side of the surface (nm).
BIN_NM = 0.5
MAX_DISTANCE_NM = 10.0
#: Runs above this many ions are thinned to every k-th ion.
MAX_IONS = 20_000_000
#: Largest grid (2**21 voxels); a finer voxel that needs more is skipped. The search
#: holds two grids and an isosurface at once, about 90 bytes per voxel (190 MB here),
#: so that a study row stays in bounded memory (issue 23): an analysed volume of up to
#: about 2.1 M nm^3 is searched with 1 nm voxels, a larger one (a 100 M-ion run of a
#: 49 nm needle 2 um deep: 4.8 M nm^3) with 2 nm voxels.
MAX_VOXELS = 1 << 21

_CHUNK = 1 << 21


def _field_name(numerator, denominator) -> str:
    return f"{'+'.join(numerator)}/({'+'.join(denominator)})"


@dataclass(frozen=True)
class Grain:
    """A grain of another phase in a run, or why there is none.

    Attributes
    ----------
    found : bool
    reason : str or None
        Why no grain (``found`` False), in one sentence.
    field : str
        The cation fraction contoured, e.g. ``"Mn/(Ni+Co+Mn)"``.
    matrix_fraction, grain_fraction : float or None
        The field's value in the matrix (median voxel) and in the grain (its
        core's atoms), 0 to 1.
    threshold_fraction : float or None
        The isosurface's level: the field of an equal-volume mixture of the
        matrix and the grain (see the module's description).
    grain_side : str or None
        ``"richer"`` or ``"poorer"``: the grain's field against the matrix's.
    voxel_nm, sigma_nm : float or None
        The grid used (nm).
    volume_nm3 : float or None
        Volume of the grain inside the analysed volume (nm^3).
    volume_method : str or None
        ``"mesh"`` (closed surface) or ``"voxels"`` (cut by the edge of the data).
    closed : bool or None
    area_nm2 : float or None
        Area of the grain's surface (nm^2; an open surface's rim adds none).
    depth_min_nm, depth_max_nm : float or None
        The z range of the ions inside the grain's surface (nm, z <= 0 into the
        specimen).
    centroid_nm : tuple of float or None
        Mean of the surface's vertices (nm).
    components : int
        Components of the isosurface kept (the grain is the largest).
    ions_inside : int
        Ions (ranged or not) inside the grain's surface.
    ion_counts : tuple of int
        Ions inside, per ion of the range table (``ranges.ions`` order).
    ratios : dict of str to Ratio
        The requested ratios of the ions inside (:class:`liprobe.composition.Ratio`).
    proxigram : Proxigram or None
        Across the grain's surface (:class:`liprobe.spatial.proxigram.Proxigram`).
    ion_step : int
        1, or k when only every k-th ion was used (runs above :data:`MAX_IONS`).
    notes : tuple of str
    """

    found: bool
    reason: str | None
    field: str
    matrix_fraction: float | None = None
    grain_fraction: float | None = None
    threshold_fraction: float | None = None
    grain_side: str | None = None
    voxel_nm: float | None = None
    sigma_nm: float | None = None
    volume_nm3: float | None = None
    volume_method: str | None = None
    closed: bool | None = None
    area_nm2: float | None = None
    depth_min_nm: float | None = None
    depth_max_nm: float | None = None
    centroid_nm: tuple | None = None
    components: int = 0
    ions_inside: int = 0
    ion_counts: tuple = ()
    ratios: dict = field(default_factory=dict)
    proxigram: object = field(default=None, repr=False)
    ion_step: int = 1
    notes: tuple = ()

    def to_dict(self) -> dict:
        """Plain JSON types (the proxigram as :meth:`artefact` holds it)."""
        d = {k: getattr(self, k) for k in (
            "found", "reason", "field", "matrix_fraction", "grain_fraction",
            "threshold_fraction", "grain_side", "voxel_nm", "sigma_nm", "volume_nm3",
            "volume_method", "closed", "area_nm2", "depth_min_nm", "depth_max_nm",
            "components", "ions_inside", "ion_step")}
        d["centroid_nm"] = None if self.centroid_nm is None else list(self.centroid_nm)
        d["ratios"] = {k: r.to_dict() for k, r in self.ratios.items()}
        d["notes"] = list(self.notes)
        d["proxigram"] = self.artefact()["proxigram"] if self.proxigram is not None else None
        return d

    def artefact(self) -> dict:
        """What the study keeps beside the table (the cache record): the surface's summary
        and the proxigram as counts per bin, from which :func:`proxigram_from_artefact`
        rebuilds it exactly."""
        p = self.proxigram
        prox = None
        if p is not None:
            prox = {"bin_nm": p.bin_nm, "max_distance_nm": p.max_distance_nm,
                    "elements": list(p.elements), "excluded": list(p.excluded),
                    "lo_nm": [float(v) for v in p.lo], "hi_nm": [float(v) for v in p.hi],
                    "ions": [int(v) for v in p.ions], "atoms": [int(v) for v in p.atoms],
                    "element_atoms": {el: [int(v) for v in p.surface["element_atoms"][el]]
                                      for el in p.elements},
                    "ions_counted": p.ions_counted, "ions_beyond": p.ions_beyond}
        surface = {k: getattr(self, k) for k in (
            "field", "grain_side", "matrix_fraction", "grain_fraction", "threshold_fraction",
            "voxel_nm", "sigma_nm", "volume_nm3", "volume_method", "closed", "area_nm2",
            "depth_min_nm", "depth_max_nm", "ions_inside", "ion_step")}
        surface["centroid_nm"] = None if self.centroid_nm is None else list(self.centroid_nm)
        return {"surface": surface, "proxigram": prox, "notes": list(self.notes)}


# --------------------------------------------------------------------------
# the field
# --------------------------------------------------------------------------

def _extent(run, chunk):
    lo, hi = np.full(3, np.inf), np.full(3, -np.inf)
    for a, c in enumerate(("x", "y", "z")):
        for _s, col in run.chunks(c, chunk):
            if len(col):
                lo[a] = min(lo[a], float(col.min()))
                hi[a] = max(hi[a], float(col.max()))
    return lo, hi


def _field_grid(run, ranges, numerator, denominator, voxel_nm, exclude, chunk):
    """A VoxelGrid whose ``solute`` is the numerator's atoms and whose ``atoms`` are the
    denominator's (so that its ``percent`` is 100 f); ``valid`` where the delocalised
    denominator count is at least a tenth of its median."""
    from ..spatial.voxels import voxelise

    kw = dict(voxel_nm=voxel_nm, sigma_nm=SIGMA_VOXELS * voxel_nm, delocalisation="gauss",
              exclude=exclude, min_density_fraction=0.0, max_voxels=MAX_VOXELS, chunk_ions=chunk,
              check_memory=False)     # bounded by MAX_VOXELS; a result must not depend on
    #                                   the machine's momentary free memory
    num = voxelise(run, ranges, species=numerator, **kw)
    den = voxelise(run, ranges, species=denominator, **kw)
    atoms = den.solute
    held = den.raw_solute > 0
    if not held.any():
        return None
    typical = float(np.median(atoms[held]))
    valid = (atoms > 0) & (atoms >= 0.1 * typical)
    return dataclasses.replace(
        den, species=tuple(numerator), solute=num.solute, solute_w2=num.solute_w2,
        raw_solute=num.raw_solute, atoms=den.solute, atoms_w2=den.solute_w2,
        raw_atoms=den.raw_solute, valid=valid, min_density_fraction=0.1)


def _complement(grid, species):
    """The same grid with the denominator's other atoms as the solute (1 - f)."""
    return dataclasses.replace(
        grid, species=tuple(species), solute=grid.atoms - grid.solute,
        solute_w2=np.clip(grid.atoms_w2 - grid.solute_w2, 0, None),
        raw_solute=grid.raw_atoms - grid.raw_solute)


# --------------------------------------------------------------------------
# the search
# --------------------------------------------------------------------------

def _no(reason, field_name, **kw) -> Grain:
    return Grain(found=False, reason=reason, field=field_name, **kw)


def _grain_region(grid, f, stat, f_m):
    """The largest 26-connected region of voxels of another phase: (mask, side, voxels) or
    (None, None, 0)."""
    from scipy import ndimage

    with np.errstate(invalid="ignore", divide="ignore"):
        neff = grid.atoms ** 2 / grid.atoms_w2
        p = np.clip(f_m, 0.5 / np.maximum(neff, 1.0), 1.0 - 0.5 / np.maximum(neff, 1.0))
        sigma = np.sqrt(p * (1.0 - p) * grid.atoms_w2) / grid.atoms
        z = (f - f_m) / sigma
    ok = stat & np.isfinite(z)
    best = (None, None, 0)
    for side, cand in (("richer", ok & (z >= Z_SIGMA) & (f - f_m >= MIN_CONTRAST)),
                       ("poorer", ok & (z <= -Z_SIGMA) & (f_m - f >= MIN_CONTRAST))):
        if not cand.any():
            continue
        lab, n = ndimage.label(cand, structure=np.ones((3, 3, 3), bool))
        sizes = np.bincount(lab.ravel(), minlength=n + 1)
        sizes[0] = 0
        k = int(np.argmax(sizes))
        if sizes[k] > best[2]:
            best = (lab == k, side, int(sizes[k]))
    return best


def _plateaus(grid, region, stat, offset_vox):
    """``(f_g, rho_g, rho_m)``: the composition (0 to 1) and the denominator's atoms per
    voxel of the region's voxels more than ``offset_vox`` voxels inside it (fewer when it
    is thin), and the atoms per voxel of the voxels of ``stat`` more than ``offset_vox``
    outside it (the matrix); atoms as binned, not delocalised. None when the region holds
    no atoms."""
    from scipy import ndimage

    d = ndimage.distance_transform_edt(region)
    for off in (offset_vox, 1.0, 0.0):
        sel = region & (d > off)
        den = float(grid.raw_atoms[sel].sum())
        if den > 0:
            break
    else:
        return None
    f_g, rho_g = float(grid.raw_solute[sel].sum()) / den, den / int(sel.sum())
    out = stat & (ndimage.distance_transform_edt(~region) > offset_vox)
    rho_m = float(grid.raw_atoms[out].mean()) if out.any() else rho_g
    return f_g, rho_g, rho_m


def _sub_surface(surface, k):
    """The isosurface restricted to component ``k``."""
    keep_face = surface.face_component == k
    faces = surface.faces[keep_face]
    used = np.zeros(len(surface.vertices), bool)
    used[faces.ravel()] = True
    remap = np.cumsum(used) - 1
    return dataclasses.replace(
        surface, vertices=surface.vertices[used], faces=remap[faces].astype(np.int64),
        normals=surface.normals[used], face_component=np.zeros(len(faces), np.int64),
        components=(surface.components[k],), dropped_components=0)


def _voxel_index(grid, x, y, z):
    idx = []
    for a, c in enumerate((x, y, z)):
        i = np.floor((np.asarray(c, np.float64) - grid.origin_nm[a]) / grid.voxel_nm + 0.5)
        idx.append(np.clip(i, 0, grid.shape[a] - 1).astype(np.int64))
    return tuple(idx)


def find_grain(run, ranges, exclude=(), ratios=(), numerator=NUMERATOR,
               denominator=DENOMINATOR, selection: dict | None = None,
               max_ions: int = MAX_IONS, chunk_ions: int = _CHUNK) -> Grain:
    """Find the largest grain of another phase in ``run`` and measure it.

    Parameters
    ----------
    run : Run
        Needs ``x y z`` (nm, reconstructed) and ``mass`` (Da): the analysed
        volume (the study passes a segment, its coating left out by ``exclude``).
    ranges : RangeTable
    exclude : iterable of str
        Elements whose ions are dropped whole (the coating, e.g. ``("Cr",)``).
    ratios : iterable of str
        Ratios of the grain's ions to report (``"Ni/(Ni+Co+Mn)"``).
    numerator, denominator : tuple of str
        The field's elements (the numerator's are among the denominator's).
    selection : dict, optional
        How the ions were selected, carried into the proxigram.
    max_ions : int
        Above this many ions, every k-th ion is used.
    chunk_ions : int

    Returns
    -------
    Grain
        ``found`` False with a ``reason`` when there is no grain; the
        quantities of the grain otherwise (see the module's description).

    Raises
    ------
    AnalysisError
        A field element that is excluded, a numerator element not in the
        denominator, a ratio that is not a ratio expression.
    ColumnError
        A missing column.

    Examples
    --------
    A sphere of 6 nm radius without Ni in a cylinder of Ni and Mn (80:20), ions
    at random, 30 per nm^3. The isosurface of the delocalised field lies a
    little inside a sharp sphere (see the module's description):

    >>> import numpy as np
    >>> import liprobe
    >>> from liprobe import Range, RangeTable, parse_ion
    >>> from liprobe.study.grain import find_grain
    >>> rng = np.random.default_rng(0)
    >>> n = 400_000
    >>> r, phi = 12 * np.sqrt(rng.random(n)), rng.uniform(0, 2 * np.pi, n)
    >>> x, y, z = r * np.cos(phi), r * np.sin(phi), rng.uniform(-30, 0, n)
    >>> grain = x ** 2 + y ** 2 + (z + 15) ** 2 < 6 ** 2
    >>> mn = np.where(grain, True, rng.random(n) < 0.2)            # Mn, else Ni
    >>> table = RangeTable.from_ranges([Range(54.5, 55.5, parse_ion("Mn+")),
    ...                                 Range(57.5, 58.5, parse_ion("Ni+"))])
    >>> run = liprobe.Run.from_arrays(x=x, y=y, z=z, mass=np.where(mn, 55.0, 58.0))
    >>> g = find_grain(run, table, ratios=["Ni/(Ni+Mn)"])
    >>> g.found, g.field, g.grain_side, g.closed
    (True, 'Mn/(Ni+Mn)', 'richer', True)
    >>> print(f"{g.matrix_fraction:.2f} {g.grain_fraction:.2f} {g.threshold_fraction:.2f}")
    0.20 1.00 0.61
    >>> print(f"{g.volume_nm3 / (4 / 3 * np.pi * 6 ** 3):.2f}")
    0.92
    >>> print(f"{g.depth_min_nm:.1f} {g.depth_max_nm:.1f}")
    -20.8 -9.3
    >>> print(f"{g.ratios['Ni/(Ni+Mn)'].value:.3f}")
    0.000
    """
    from ..chemistry import is_element
    from ..spatial.voxels import counted_ions

    numerator, denominator = tuple(numerator), tuple(denominator)
    exclude = tuple(dict.fromkeys(exclude))
    name = _field_name(numerator, denominator)
    for el in (*numerator, *denominator):
        if not is_element(el):
            raise AnalysisError(f"the grain's field {name}: '{el}' is not a chemical element")
        if el in exclude:
            raise AnalysisError(f"the grain's field {name} needs {el}, which is excluded")
    if not set(numerator) <= set(denominator) or not numerator:
        raise AnalysisError(f"the grain's field {name}: the numerator's elements must be "
                            "among the denominator's")
    for c in ("x", "y", "z", "mass"):
        run.source(c)                               # ColumnError naming the column
    all_els, _rep, _win, _m = counted_ions(ranges, exclude)
    num = tuple(el for el in numerator if el in all_els)
    den = tuple(el for el in denominator if el in all_els)
    if num and len(den) > len(num):
        name = _field_name(num, den)        # the field of the ranged elements
    if not num or not den:
        missing = [el for el in denominator if el not in all_els]
        return _no(f"no ranged ion carries {', '.join(missing)}: no {name} field to find a "
                   "grain in", name)
    if set(den) == set(num):
        return _no(f"the whole analysed volume is one phase: of {', '.join(denominator)}, "
                   f"only {'+'.join(num)} is ranged, so {name} is 1 everywhere", name)
    step = 1
    if run.n_ions > max_ions:
        step = math.ceil(run.n_ions / max_ions)
        run = run.select(slice(None, None, step))
    notes = [f"one ion in {step} used ({run.n_ions:,} ions)"] if step > 1 else []
    if run.n_ions == 0:
        return _no("no ions in the analysed volume", name)
    lo, hi = _extent(run, chunk_ions)
    grid = None
    why_sparse = None
    for h in VOXEL_NM:
        n_vox = math.prod(int((hi[a] - lo[a]) / h) + 9 for a in range(3))
        if n_vox > MAX_VOXELS:
            continue
        try:
            g = _field_grid(run, ranges, num, den, h, exclude, chunk_ions)
        except AnalysisError as e:                  # e.g. no counted ions
            return _no(str(e), name)
        if g is None:
            return _no(f"no {'+'.join(den)} atoms in the analysed volume", name)
        in_data = g.atoms >= 0.5 * float(np.median(g.atoms[g.raw_atoms > 0]))
        with np.errstate(invalid="ignore", divide="ignore"):
            neff = float(np.median(g.atoms[in_data] ** 2 / g.atoms_w2[in_data]))
        if neff >= MIN_ATOMS_PER_VOXEL:
            grid = g
            break
        why_sparse = (f"too few {'+'.join(den)} atoms per voxel even at {h:g} nm "
                      f"(median {neff:.1f} effective atoms, fewer than "
                      f"{MIN_ATOMS_PER_VOXEL:g}): the field is too noisy to find a grain")
    if grid is None:
        return _no(why_sparse or (f"the analysed volume ({hi[0] - lo[0]:.0f} x "
                                  f"{hi[1] - lo[1]:.0f} x {hi[2] - lo[2]:.0f} nm) needs more "
                                  f"than {MAX_VOXELS:,} voxels even at {VOXEL_NM[-1]:g} nm"),
                   name, ion_step=step)
    h = grid.voxel_nm
    base = dict(voxel_nm=h, sigma_nm=grid.sigma_nm, ion_step=step)
    with np.errstate(invalid="ignore", divide="ignore"):
        f = grid.solute / grid.atoms
    stat = grid.valid & (grid.atoms >= 0.5 * float(np.median(grid.atoms[grid.raw_atoms > 0])))
    stat &= np.isfinite(f)
    if not stat.any():
        return _no("no voxel of the analysed volume holds enough atoms to compare", name,
                   **base)
    f_m = float(np.median(f[stat]))
    region, side, n_region = _grain_region(grid, f, stat, f_m)
    base["matrix_fraction"] = f_m
    vol_region = n_region * h ** 3
    one_phase = (f"the whole analysed volume is one phase: {name} = {f_m:.3f} (median of "
                 f"{int(stat.sum()):,} voxels of {h:g} nm)")
    if region is None:
        return _no(f"{one_phase}; no voxel differs from it by {Z_SIGMA:g} sigma and "
                   f"{MIN_CONTRAST:g}", name, **base)
    if vol_region < MIN_VOLUME_NM3:
        return _no(f"{one_phase}; the largest region that differs from it by {Z_SIGMA:g} "
                   f"sigma and {MIN_CONTRAST:g} holds {vol_region:.0f} nm^3, less than a grain "
                   f"({MIN_VOLUME_NM3:g} nm^3)", name, **base)
    plateaus = _plateaus(grid, region, stat, 2.0 * grid.sigma_nm / h + 1.0)
    if plateaus is None or abs(plateaus[0] - f_m) < MIN_CONTRAST:
        f_g = float("nan") if plateaus is None else plateaus[0]
        return _no(f"{one_phase}; the region that differs from it has {name} = {f_g:.3f} "
                   f"at its core, within {MIN_CONTRAST:g} of the matrix", name, **base)
    f_g, rho_g, rho_m = plateaus
    # an equal-volume mixture of the two phases: a sharp interface, blurred symmetrically
    t = (rho_g * f_g + rho_m * f_m) / (rho_g + rho_m)
    base.update(grain_fraction=f_g, threshold_fraction=t, grain_side=side)
    if side == "richer":
        surf_grid, level = grid, 100.0 * t
    else:
        others = tuple(el for el in den if el not in num)
        surf_grid, level = _complement(grid, others), 100.0 * (1.0 - t)
    return _measure(run, ranges, exclude, ratios, surf_grid, level, region, name, base,
                    notes, selection, chunk_ions)


def _measure(run, ranges, exclude, ratios, grid, level, region, name, base, notes, selection,
             chunk_ions) -> Grain:
    """The isosurface at ``level`` (at.% of ``grid``'s solute), its grain component, the
    ions inside and the proxigram."""
    from scipy import ndimage

    from ..composition import composition_from_counts
    from ..spatial.isosurface import isosurface

    h = grid.voxel_nm
    surf = isosurface(grid, level, "concentration", min_volume_nm3=MIN_VOLUME_NM3)
    above = [k for k, c in enumerate(surf.components) if c.encloses == "above"]
    if not above:
        return _no(f"the isosurface of {name} at {base['threshold_fraction']:.3f} encloses no "
                   f"grain of {MIN_VOLUME_NM3:g} nm^3 or more", name, **base)
    # the component enclosing the region found (the largest, but check)
    high = grid.valid & (grid.percent >= level)
    lab, _n = ndimage.label(high, structure=np.ones((3, 3, 3), bool))
    grain_lab = np.bincount(lab[region & high], minlength=1)
    grain_lab[0] = 0
    target = int(np.argmax(grain_lab)) if grain_lab.sum() else 0
    k = above[0]
    if target:
        cz = np.array([c.centroid_nm for c in surf.components])
        ii = np.argwhere(lab == target)
        centre = np.asarray(grid.origin_nm) + h * ii.mean(axis=0)
        k = min(above, key=lambda j: float(np.linalg.norm(cz[j] - centre)))
    comp = surf.components[k]
    sub = _sub_surface(surf, k)
    grain_mask = (lab == target) if target else region
    notes = list(notes)
    if len(surf.components) > 1:
        notes.append(f"{len(surf.components)} surface components; the grain is the one "
                     f"enclosing the region found ({comp.volume_nm3:.0f} nm^3)")
    if not comp.closed:
        notes.append("the grain is cut by the edge of the analysed volume: its volume is that "
                     "of its voxels inside the data")
    counts, inside, z_in, prox = _ions_and_proxigram(run, ranges, exclude, sub, grid,
                                                     grain_mask, selection, chunk_ions)
    # the z of the ions inside it: the surface of a grain cut by the edge of the data
    # reaches into the voxels just beyond the last ions
    z_all = z_in if len(z_in) else sub.vertices[:, 2]
    c = composition_from_counts(counts, ranges, inside, exclude, tuple(ratios),
                                unranged="null")
    return Grain(found=True, reason=None, field=name, **base,
                 volume_nm3=float(comp.volume_nm3), volume_method=comp.volume_method,
                 closed=bool(comp.closed), area_nm2=float(comp.area_nm2),
                 depth_min_nm=float(z_all.min()), depth_max_nm=float(z_all.max()),
                 centroid_nm=tuple(float(v) for v in comp.centroid_nm),
                 components=len(surf.components), ions_inside=int(inside),
                 ion_counts=tuple(int(v) for v in counts), ratios=dict(c.ratios),
                 proxigram=prox, notes=tuple(notes))


def _ions_and_proxigram(run, ranges, exclude, surface, grid, grain_mask, selection, chunk):
    """Ions inside the grain per ion of ``ranges`` (and in all), and the proxigram: one
    pass, distances only for the ions near the grain's bounding box."""
    from ..ranging import assign
    from ..spatial.proxigram import MeshLocator, Proxigram
    from ..spatial.voxels import counted_ions

    all_els, elements, win_ion, matrix = counted_ions(ranges, exclude)
    n_kinds = len(ranges.ions)
    locator = MeshLocator(surface, MAX_DISTANCE_NM)
    reach = MAX_DISTANCE_NM + 2 * grid.voxel_nm
    box_lo = surface.vertices.min(axis=0) - reach
    box_hi = surface.vertices.max(axis=0) + reach
    n_bins = int(round(2 * MAX_DISTANCE_NM / BIN_NM))
    edges = -MAX_DISTANCE_NM + BIN_NM * np.arange(n_bins + 1)
    binned = np.zeros(n_bins * max(n_kinds, 1), np.int64)
    counts = np.zeros(n_kinds, np.int64)
    inside_total = n_counted = beyond = 0
    z_in = [np.inf, -np.inf]
    ion_of_window = np.append(ranges.ion_index, -1) if len(ranges) else np.array([-1])
    win_kind = np.append(win_ion, -1) if len(ranges) else np.array([-1])
    gens = [run.chunks(c, chunk) for c in ("x", "y", "z", "mass")]
    for (_s, x), (_s2, y), (_s3, z), (_s4, mass) in zip(*gens):
        near = np.ones(len(x), bool)
        for a, col in enumerate((x, y, z)):
            near &= (col >= box_lo[a]) & (col <= box_hi[a])
        labels = assign(mass, ranges)[0] if len(ranges) else np.full(len(mass), -1)
        kind = win_kind[labels]
        n_counted += int(np.count_nonzero(kind >= 0))
        if not near.any():
            beyond += int(np.count_nonzero(kind >= 0))
            continue
        xn, yn, zn = x[near], y[near], z[near]
        d = locator.signed_distances(xn, yn, zn)
        deep = ~np.isfinite(d)
        inside = d < 0
        if deep.any():
            i, j, k = _voxel_index(grid, xn[deep], yn[deep], zn[deep])
            inside[np.flatnonzero(deep)[grain_mask[i, j, k]]] = True
        inside_total += int(inside.sum())
        if inside.any():
            z_in = [min(z_in[0], float(zn[inside].min())), max(z_in[1], float(zn[inside].max()))]
        ion = ion_of_window[labels[near]]
        counts += np.bincount(ion[inside & (ion >= 0)], minlength=n_kinds)[:n_kinds]
        kn = kind[near]
        ok = (kn >= 0) & np.isfinite(d)
        b = np.clip(np.floor((d[ok] + MAX_DISTANCE_NM) / BIN_NM).astype(np.int64), 0,
                    n_bins - 1)
        binned += np.bincount(b * n_kinds + kn[ok], minlength=len(binned))
        beyond += int(np.count_nonzero(kind >= 0)) - int(ok.sum())
    binned = binned.reshape(n_bins, max(n_kinds, 1))[:, :n_kinds]
    prox = _proxigram(Proxigram, binned, edges, matrix, all_els, elements, exclude,
                      n_counted, beyond, selection, ranges.warnings)
    return counts, inside_total, np.array(z_in)[np.isfinite(z_in)], prox


def _proxigram(cls, binned, edges, matrix, all_els, elements, exclude, n_counted, beyond,
               selection, warnings):
    """A Proxigram from ion counts per bin (empty end bins trimmed); ``surface`` carries
    the atoms of each element per bin (``element_atoms``) for the artefact."""
    ions = binned.sum(axis=1)
    nz = np.flatnonzero(ions)
    if len(nz) == 0:
        return None
    a, b = int(nz[0]), int(nz[-1]) + 1
    binned = binned[a:b]
    atoms_el = binned @ matrix if len(all_els) else np.zeros((b - a, 0), np.int64)
    keep = np.array([el not in exclude for el in all_els], bool)
    atoms = atoms_el[:, keep].sum(axis=1) if len(all_els) else np.zeros(b - a, np.int64)
    per_el = {el: atoms_el[:, all_els.index(el)].astype(np.int64) for el in elements}
    return _proxigram_from_counts(cls, edges[a:b], edges[a + 1:b + 1], ions[a:b], atoms,
                                  per_el, tuple(elements), tuple(exclude), n_counted, beyond,
                                  BIN_NM, MAX_DISTANCE_NM, selection, warnings)


def _proxigram_from_counts(cls, lo, hi, ions, atoms, per_el, elements, exclude, n_counted,
                           beyond, bin_nm, max_distance_nm, selection, warnings):
    lo, hi = np.asarray(lo, np.float64), np.asarray(hi, np.float64)
    atoms = np.asarray(atoms, np.int64)
    percent, error = {}, {}
    with np.errstate(invalid="ignore", divide="ignore"):
        for el in elements:
            c = np.asarray(per_el[el], np.float64) / np.where(atoms > 0, atoms, np.nan)
            percent[el] = 100.0 * c
            error[el] = 100.0 * np.sqrt(c * (1.0 - c) / atoms)
    surface = {"kind": "grain", "element_atoms": {el: np.asarray(per_el[el], np.int64)
                                                  for el in elements}}
    return cls(kind="isosurface", bin_nm=float(bin_nm), lo=lo, hi=hi, distance=0.5 * (lo + hi),
               atoms=atoms, ions=np.asarray(ions, np.int64), elements=tuple(elements),
               percent=percent, error=error, ions_counted=int(n_counted),
               ions_beyond=int(beyond), max_distance_nm=float(max_distance_nm),
               surface=surface, excluded=tuple(exclude), selection=dict(selection or {}),
               warnings=tuple(warnings or ()))


# --------------------------------------------------------------------------
# the proxigram beside the table
# --------------------------------------------------------------------------

def proxigram_from_artefact(artefact: dict):
    """The :class:`~liprobe.spatial.proxigram.Proxigram` kept by :meth:`Grain.artefact`.

    Raises
    ------
    LiprobeError
        An artefact without a proxigram, or one that is not of this form.
    """
    from ..spatial.proxigram import Proxigram

    if not isinstance(artefact, dict) or not isinstance(artefact.get("proxigram"), dict):
        raise LiprobeError("the grain's record holds no proxigram")
    try:
        p = artefact["proxigram"]
        elements = tuple(str(el) for el in p["elements"])
        if len({len(p["lo_nm"]), len(p["hi_nm"]), len(p["ions"]), len(p["atoms"])}
               | {len(p["element_atoms"][el]) for el in elements}) != 1:
            raise ValueError("columns of different lengths")
        prox = _proxigram_from_counts(
            Proxigram, p["lo_nm"], p["hi_nm"], p["ions"], p["atoms"],
            {el: p["element_atoms"][el] for el in elements}, elements,
            tuple(p.get("excluded", ())), p.get("ions_counted", 0), p.get("ions_beyond", 0),
            p["bin_nm"], p["max_distance_nm"], {}, ())
    except (KeyError, TypeError, ValueError) as e:
        raise LiprobeError(f"the grain's record is not a proxigram ({type(e).__name__}: "
                           f"{e})") from None
    surface = {k: v for k, v in (artefact.get("surface") or {}).items()
               if isinstance(k, str) and (v is None or isinstance(v, (str, int, float, list)))}
    t = surface.get("threshold_fraction")
    surface.update(kind="grain", element_atoms=prox.surface["element_atoms"],
                   species=[str(surface.get("field", "?"))], unit="(cation fraction)",
                   threshold=float(t) if isinstance(t, (int, float)) else float("nan"))
    return dataclasses.replace(prox, surface=surface)


def proxigram_csv_name(label: str) -> str:
    """``<label>.proxigram.csv``, the label made safe as a file name."""
    safe = "".join(ch if ch.isalnum() or ch in "-_.[]" else "_" for ch in label)
    return f"{safe}.proxigram.csv"


def write_proxigram_csv(prox, path, header: dict | None = None) -> str:
    """The proxigram as CSV, atomically: ``# key: value`` lines (the grain's surface,
    units), then one row per bin (``distance_nm`` negative inside the grain; ``El_at%``
    and its 1-sigma binomial ``El_err``; empty where a bin has no atoms)."""
    from ..spatial.proxigram import write_proxigram_csv as write_csv

    os.makedirs(os.path.dirname(os.path.abspath(os.fspath(path))), exist_ok=True)
    head = {"kind": "proxigram across a grain's isosurface",
            "sign": "distance_nm negative inside the grain, positive in the matrix",
            "bin_nm": prox.bin_nm, "max_distance_nm": prox.max_distance_nm,
            "error": "binomial, sqrt(C(1-C)/N), N atoms in the bin",
            "excluded": list(prox.excluded)}
    head.update(header or {})
    write_csv(prox, path, head, ("lo_nm", "hi_nm", "distance_nm", "atoms", "ions"))
    return os.fspath(path)
