"""Voxelised composition and count fields, with per-voxel counting errors.

The ranged ions are cut into their atoms (molecular ions decomposed with the
range table's matrix; ions holding an excluded element dropped whole, as in
:mod:`liprobe.composition`), and each atom is put into a grid of cubic voxels
of edge ``voxel_nm``. Voxel ``(i, j, k)`` is centred on
``origin_nm + voxel_nm * (i, j, k)``; the grid covers the ions plus
the kernel's reach on every side.

Delocalisation (the usual practice of AP Suite and 3Depict, Hellman et al.
2003; Torres et al. 2011):

- ``"gauss"``: each atom is binned into its voxel, then the grid is convolved
  with a normalised, separable Gaussian kernel of ``sigma_nm`` (default one
  voxel edge), truncated at 3 sigma. The kernel an atom receives is that
  Gaussian convolved with the voxel's box, of variance
  ``sigma^2 + voxel^2 / 12`` per axis. ``sigma_nm = 0`` leaves the atoms in
  their voxels.
- ``"cic"``: cloud in cell; each atom is shared between the 8 voxel centres
  around it with trilinear weights.

Fields (all per voxel; ``w`` is the weight an atom gives the voxel):

- counts: ``N = sum w`` of all counted atoms and ``S = sum w`` of the
  ``species`` atoms, with Poisson errors ``sqrt(sum w^2)``;
- composition ``C = S / N`` (at.%), with the binomial error of a weighted
  mean, ``sqrt(C (1 - C) sum w^2) / N`` (Danoix et al. 2007 for ``w = 1``);
- density ``N / voxel_nm^3`` (atoms/nm^3).

Voxels outside the data are masked: their composition is NaN, not 0, so that
a phase that crosses the edge of the data gains no surface there. A voxel is
outside when no counted atom reaches it through the kernel (farther than the
kernel's reach from every ion), and also, by default, when its delocalised
atom count is below a tenth of the median of the voxels that hold atoms
(``min_density_fraction``): just beyond the edge of the data, where the
kernel's tail catches only a few atoms at the edge, which would decide the
composition alone.

The grid is bounded: at most ``max_voxels`` voxels (an error says how many
would be needed), and the ions are read chunk by chunk.

Memory is the one stated limit of the bounded-memory rule (issue 23): a grid
grows with the volume analysed, not with the chunk. The grid holds 25 bytes per
voxel (six 4-byte fields and the mask), and an isosurface of it peaks at about
:data:`BYTES_PER_VOXEL` in all: 4.8 M voxels of 1 nm (a 100 M-ion needle,
49 x 49 x 2000 nm) peak at 344 MB for the whole ``liprobe isosurface`` process
(``bench/results/memory.md``). A grid that would need more memory than the
machine has available is refused before the ions are binned, with the figure;
give a larger voxel or an ROI.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .._jit import njit
from ..errors import AnalysisError
from ..rangetable import RangeTable
from ..run import Run

__all__ = ["VoxelGrid", "voxelise", "counted_ions", "DELOCALISATIONS", "MAX_VOXELS",
           "BYTES_PER_VOXEL"]

_CHUNK = 1 << 20
#: Largest grid :func:`voxelise` builds (2**25 voxels: about 1 GB of fields).
MAX_VOXELS = 1 << 25
#: Peak bytes per voxel of a grid and its isosurface (measured: bench/memory.py).
BYTES_PER_VOXEL = 64


def _available_memory() -> int | None:
    """Bytes of memory the system can give without swapping (``MemAvailable``), or None
    where it cannot be read."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None
DELOCALISATIONS = ("gauss", "cic")
#: The Gaussian kernel is cut at this many sigma.
TRUNCATE = 3.0


def counted_ions(ranges: RangeTable, exclude=(), elements=None):
    """What is counted of a range table: its elements and the atoms of each window.

    Parameters
    ----------
    ranges : RangeTable
    exclude : iterable of str
        Elements whose ions are dropped whole (every atom of a ``CrO+``).
    elements : iterable of str, optional
        Elements to report (default: all ranged, less the excluded).

    Returns
    -------
    all_elements : tuple of str
        Every element of the table (columns of ``atoms``).
    reported : tuple of str
    win_ion : ndarray of int64, shape (len(ranges),)
        Ion index of each window, -1 where the ion is excluded.
    matrix : ndarray of int64, shape (len(ranges.ions), len(all_elements))
        Atoms per ion (rows of excluded ions are zero).

    Raises
    ------
    AnalysisError
        An excluded or reported element that is not a chemical element or not
        ranged, or one both reported and excluded.
    """
    from ..chemistry import is_element

    exclude = tuple(exclude)
    for el in exclude:
        if not is_element(el):
            raise AnalysisError(f"cannot exclude '{el}': not a chemical element")
    all_els, matrix = ranges.decomposition()
    keep_ion = np.array([not any(ion.count(el) for el in exclude) for ion in ranges.ions],
                        bool)
    matrix = matrix * keep_ion[:, None] if len(ranges.ions) else matrix
    if elements is None:
        reported = tuple(el for el in all_els if el not in exclude)
    else:
        reported = tuple(elements)
        for el in reported:
            if el in exclude:
                raise AnalysisError(f"element {el} is both reported and excluded")
            check_ranged(el, all_els, ranges)
    win_ion = (np.where(keep_ion[ranges.ion_index], ranges.ion_index, -1) if len(ranges)
               else np.zeros(0, np.int64))
    return all_els, reported, win_ion, matrix


def check_ranged(element: str, all_elements, ranges: RangeTable) -> None:
    """AnalysisError unless ``element`` is carried by a ranged ion."""
    from ..chemistry import is_element
    from ..rangetable import unranged_reason

    if not is_element(element):
        raise AnalysisError(f"'{element}' is not a chemical element")
    if element not in all_elements:
        raise AnalysisError(unranged_reason(element, ranges), ranges.path)


def ion_kinds(mass, ranges: RangeTable, win_ion: np.ndarray) -> np.ndarray:
    """The counted ion (index into ``ranges.ions``) of each mass, -1 if not counted."""
    from ..ranging import assign

    if not len(ranges):
        return np.full(len(mass), -1, np.int64)
    labels, _ = assign(mass, ranges)
    return np.append(win_ion, -1)[labels]          # label -1 (unranged) picks the last, -1


@njit(cache=True, nogil=True)
def _bin_atoms(x, y, z, kind, solute_per_kind, atoms_per_kind, origin, inv_h, mode,
               solute, atoms, solute_w2, atoms_w2, raw_solute, raw_atoms):
    """Add the atoms of each counted ion to the grids (serial: scattered adds).

    mode 0: nearest voxel; mode 1: cloud in cell (trilinear weights, with the
    sums of squared weights). The raw (nearest-voxel) counts are always kept.
    """
    nx, ny, nz = raw_atoms.shape
    for n in range(x.shape[0]):
        k = kind[n]
        if k < 0:
            continue
        s = solute_per_kind[k]
        a = atoms_per_kind[k]
        fx = (np.float64(x[n]) - origin[0]) * inv_h
        fy = (np.float64(y[n]) - origin[1]) * inv_h
        fz = (np.float64(z[n]) - origin[2]) * inv_h
        i = min(max(int(math.floor(fx + 0.5)), 0), nx - 1)
        j = min(max(int(math.floor(fy + 0.5)), 0), ny - 1)
        m = min(max(int(math.floor(fz + 0.5)), 0), nz - 1)
        raw_solute[i, j, m] += s
        raw_atoms[i, j, m] += a
        if mode == 1:
            i0 = min(max(int(math.floor(fx)), 0), nx - 2)
            j0 = min(max(int(math.floor(fy)), 0), ny - 2)
            m0 = min(max(int(math.floor(fz)), 0), nz - 2)
            tx = min(max(fx - i0, 0.0), 1.0)
            ty = min(max(fy - j0, 0.0), 1.0)
            tz = min(max(fz - m0, 0.0), 1.0)
            for di in range(2):
                wx = tx if di else 1.0 - tx
                for dj in range(2):
                    wy = ty if dj else 1.0 - ty
                    for dm in range(2):
                        w = wx * wy * (tz if dm else 1.0 - tz)
                        w2 = w * w
                        solute[i0 + di, j0 + dj, m0 + dm] += s * w
                        atoms[i0 + di, j0 + dj, m0 + dm] += a * w
                        solute_w2[i0 + di, j0 + dj, m0 + dm] += s * w2
                        atoms_w2[i0 + di, j0 + dj, m0 + dm] += a * w2


def gaussian_kernel(sigma_vox: float) -> np.ndarray:
    """The normalised 1-D Gaussian of ``sigma_vox`` voxels, cut at 3 sigma (odd length)."""
    r = max(int(math.ceil(TRUNCATE * sigma_vox)), 1)
    t = np.arange(-r, r + 1, dtype=np.float64)
    k = np.exp(-0.5 * (t / sigma_vox) ** 2)
    return k / k.sum()


def _separable(a: np.ndarray, k: np.ndarray) -> np.ndarray:
    from scipy.ndimage import correlate1d

    out = a.astype(np.float32)
    for ax in range(3):
        out = correlate1d(out, k.astype(np.float32), axis=ax, mode="constant", cval=0.0)
    return out


@dataclass(frozen=True)
class VoxelGrid:
    """Delocalised atom counts on a grid of cubic voxels.

    Attributes
    ----------
    origin_nm : tuple of float
        Centre of voxel ``(0, 0, 0)`` (nm).
    voxel_nm : float
        Voxel edge (nm).
    shape : tuple of int
    species : tuple of str
        Elements whose atoms make the solute field (may be empty).
    delocalisation : str
        ``"gauss"`` or ``"cic"``.
    sigma_nm : float
        Gaussian sigma (nm; 0 for cloud in cell or no smoothing).
    reach_voxels : int
        How far (voxels, per axis) the kernel carries an atom.
    solute, atoms : ndarray of float32, shape ``shape``
        Delocalised atoms of ``species`` and of every counted element.
    solute_w2, atoms_w2 : ndarray of float32
        Sums of squared weights (their Poisson variances).
    raw_solute, raw_atoms : ndarray of int32
        Atoms of each voxel without delocalisation (nearest voxel).
    valid : ndarray of bool
        Voxels inside the data (see the module's description).
    min_density_fraction : float
        The share of the median delocalised count below which a voxel is
        outside the data.
    ions_counted : int
        Ranged, not excluded ions put into the grid.
    """

    origin_nm: tuple
    voxel_nm: float
    shape: tuple
    species: tuple
    delocalisation: str
    sigma_nm: float
    reach_voxels: int
    solute: np.ndarray = field(repr=False)
    atoms: np.ndarray = field(repr=False)
    solute_w2: np.ndarray = field(repr=False)
    atoms_w2: np.ndarray = field(repr=False)
    raw_solute: np.ndarray = field(repr=False)
    raw_atoms: np.ndarray = field(repr=False)
    valid: np.ndarray = field(repr=False)
    min_density_fraction: float = 0.0
    ions_counted: int = 0
    excluded: tuple = ()
    selection: dict = field(default_factory=dict)
    warnings: tuple = ()

    @property
    def n_voxels(self) -> int:
        return int(np.prod(self.shape))

    @property
    def percent(self) -> np.ndarray:
        """Composition of ``species`` (at.%), NaN outside the data."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.valid, 100.0 * self.solute / self.atoms, np.nan)

    @property
    def percent_error(self) -> np.ndarray:
        """1-sigma binomial error of :attr:`percent` (at.%), ``sqrt(C(1-C) sum w^2) / N``."""
        with np.errstate(invalid="ignore", divide="ignore"):
            c = np.where(self.valid, self.solute / self.atoms, np.nan)
            return 100.0 * np.sqrt(np.clip(c * (1.0 - c), 0.0, None) * self.atoms_w2) / \
                self.atoms

    @property
    def density(self) -> np.ndarray:
        """Atoms of every counted element per nm^3 (NaN outside the data)."""
        return np.where(self.valid, self.atoms / self.voxel_nm ** 3, np.nan)

    @property
    def density_error(self) -> np.ndarray:
        """Poisson error of :attr:`density`, ``sqrt(sum w^2) / voxel^3``."""
        return np.where(self.valid, np.sqrt(self.atoms_w2) / self.voxel_nm ** 3, np.nan)

    @property
    def solute_density(self) -> np.ndarray:
        """Atoms of ``species`` per nm^3 (NaN outside the data)."""
        return np.where(self.valid, self.solute / self.voxel_nm ** 3, np.nan)

    @property
    def solute_density_error(self) -> np.ndarray:
        return np.where(self.valid, np.sqrt(self.solute_w2) / self.voxel_nm ** 3, np.nan)

    def centres(self, axis: int) -> np.ndarray:
        """Voxel centres along ``axis`` (0 x, 1 y, 2 z), nm."""
        return self.origin_nm[axis] + self.voxel_nm * np.arange(self.shape[axis])

    def to_dict(self) -> dict:
        valid = self.valid
        return {
            "origin_nm": list(self.origin_nm), "voxel_nm": self.voxel_nm,
            "shape": list(self.shape), "voxels": self.n_voxels,
            "voxels_in_data": int(valid.sum()), "species": list(self.species),
            "delocalisation": self.delocalisation, "sigma_nm": self.sigma_nm,
            "reach_voxels": self.reach_voxels,
            "min_density_fraction": self.min_density_fraction,
            "ions_counted": self.ions_counted,
            "atoms": int(self.raw_atoms.sum()), "excluded": list(self.excluded),
            "selection": dict(self.selection), "warnings": list(self.warnings),
        }


def voxelise(run: Run, ranges: RangeTable, species=(), voxel_nm: float = 1.0,
             sigma_nm: float | None = None, delocalisation: str = "gauss", exclude=(),
             min_density_fraction: float = 0.1, max_voxels: int = MAX_VOXELS,
             selection: dict | None = None, chunk_ions: int = _CHUNK,
             check_memory: bool = True) -> VoxelGrid:
    """Delocalised atom counts of ``run`` on cubic voxels.

    Parameters
    ----------
    run : Run
        Needs ``x y z`` (nm) and ``mass`` (Da).
    ranges : RangeTable
    species : str or iterable of str
        Elements of the solute field (``"Cr"``, or ``("Ni", "Co")`` summed).
    voxel_nm : float
        Voxel edge in nm.
    sigma_nm : float, optional
        Gaussian sigma in nm (default one voxel edge; 0: no smoothing). Only
        with ``delocalisation="gauss"``.
    delocalisation : {"gauss", "cic"}
    exclude : iterable of str
        Elements whose ions are dropped whole.
    min_density_fraction : float
        Voxels whose delocalised atom count is below this share of the median
        of the voxels holding atoms are outside the data (0: only those no
        atom reaches).
    max_voxels : int
        Largest grid allowed.
    check_memory : bool
        Refuse a grid that needs more than the machine's available memory
        (:data:`BYTES_PER_VOXEL` per voxel; see the module text).
    selection : dict, optional
        How the ions were selected (ROI, segment), carried into the result.
    chunk_ions : int

    Returns
    -------
    VoxelGrid

    Raises
    ------
    ColumnError
        A missing column.
    AnalysisError
        No counted ions, a species that is not ranged, or a grid above
        ``max_voxels``.

    References
    ----------
    .. [1] O. C. Hellman, J. B. du Rivage, D. N. Seidman, "Efficient sampling for
       three-dimensional atom probe microscopy data", Ultramicroscopy 95 (2003)
       199-205 (delocalisation).
    .. [2] F. Danoix, G. Grancher, A. Bostel, D. Blavette, "Standard deviations of
       composition measurements in atom probe analyses", Ultramicroscopy 107
       (2007) 734-743.

    Examples
    --------
    Eight Cr+ ions on the corners of a 2 nm cube and eight Ni+ ions 0.5 nm
    further along each axis; voxels of 1 nm, cloud in cell. The atoms are
    conserved; the voxel centred on the corner (0, 0, 0) holds that Cr atom
    whole and 1/8 of a Ni atom; voxels beyond the data are NaN.

    >>> import numpy as np
    >>> import liprobe
    >>> from liprobe import Range, RangeTable, parse_ion
    >>> from liprobe.spatial.voxels import voxelise
    >>> table = RangeTable.from_ranges([Range(51.5, 52.5, parse_ion("Cr+")),
    ...                                 Range(57.5, 58.5, parse_ion("Ni+"))])
    >>> corners = np.array([[i, j, k] for i in (0, 2) for j in (0, 2) for k in (0, 2)], float)
    >>> xyz = np.vstack([corners, corners + 0.5])
    >>> run = liprobe.Run.from_arrays(x=xyz[:, 0], y=xyz[:, 1], z=xyz[:, 2],
    ...                               mass=np.repeat([52.0, 58.0], 8))
    >>> grid = voxelise(run, table, "Cr", voxel_nm=1.0, delocalisation="cic")
    >>> grid.shape, float(grid.atoms.sum()), float(grid.solute.sum())
    ((8, 8, 8), 16.0, 8.0)
    >>> float(grid.centres(0)[2]), float(grid.atoms[2, 2, 2])
    (0.0, 1.125)
    >>> print(f"{grid.percent[2, 2, 2]:.1f} +/- {grid.percent_error[2, 2, 2]:.1f} at.%")
    88.9 +/- 28.2 at.%
    >>> bool(np.isnan(grid.percent[0, 0, 0]))
    True
    """
    if not voxel_nm > 0 or not math.isfinite(voxel_nm):
        raise AnalysisError(f"the voxel edge must be a positive number of nm, not {voxel_nm}")
    if delocalisation not in DELOCALISATIONS:
        raise AnalysisError(f"unknown delocalisation '{delocalisation}' (give one of "
                            f"{', '.join(DELOCALISATIONS)})")
    if delocalisation == "cic" and sigma_nm:
        raise AnalysisError("cloud-in-cell delocalisation takes no Gaussian sigma")
    if sigma_nm is None:
        sigma_nm = voxel_nm if delocalisation == "gauss" else 0.0
    if not sigma_nm >= 0 or not math.isfinite(sigma_nm):
        raise AnalysisError(f"the smoothing sigma must be 0 or more nm, not {sigma_nm}")
    if not 0 <= min_density_fraction < 1:
        raise AnalysisError(f"the smallest density fraction must be in [0, 1), not "
                            f"{min_density_fraction}")
    if isinstance(species, str):
        species = (species,)
    species = tuple(species)
    for c in ("x", "y", "z", "mass"):
        run.source(c)              # ColumnError naming the column
    all_els, _rep, win_ion, matrix = counted_ions(ranges, exclude)
    for el in species:
        check_ranged(el, all_els, ranges)
        if el in exclude:
            raise AnalysisError(f"element {el} is both the species and excluded")
    keep_el = np.array([el not in exclude for el in all_els], bool)
    atoms_per_kind = (matrix[:, keep_el].sum(axis=1) if len(all_els)
                      else np.zeros(len(ranges.ions), np.int64)).astype(np.float64)
    sp = [all_els.index(el) for el in species]
    solute_per_kind = (matrix[:, sp].sum(axis=1) if sp
                       else np.zeros(len(ranges.ions), np.int64)).astype(np.float64)

    def chunks():
        gens = [run.chunks(c, chunk_ions) for c in ("x", "y", "z", "mass")]
        for (_s, x), (_s2, y), (_s3, z), (_s4, mass) in zip(*gens):
            yield x, y, z, ion_kinds(mass, ranges, win_ion)

    # the grid covers every ion (ranged or not: they share the reconstructed volume)
    lo = np.full(3, np.inf)
    hi = np.full(3, -np.inf)
    for a, c in enumerate(("x", "y", "z")):
        for _s, col in run.chunks(c, chunk_ions):
            if len(col):
                lo[a] = min(lo[a], float(col.min()))
                hi[a] = max(hi[a], float(col.max()))
    if not np.isfinite(lo).all():
        raise AnalysisError("no ions in the selection: nothing to voxelise", run.path)
    sigma_vox = sigma_nm / voxel_nm
    if delocalisation == "gauss":
        reach = (len(gaussian_kernel(sigma_vox)) // 2) if sigma_nm > 0 else 0
    else:
        reach = 1
    pad = reach + 1
    origin = lo - pad * voxel_nm
    shape = tuple(int(math.floor((hi[a] - lo[a]) / voxel_nm + 0.5)) + 1 + 2 * pad
                  for a in range(3))
    n_vox = math.prod(shape)
    if n_vox > max_voxels:
        raise AnalysisError(
            f"a grid of {shape[0]} x {shape[1]} x {shape[2]} = {n_vox:,} voxels of "
            f"{voxel_nm:g} nm (data {hi[0] - lo[0]:.0f} x {hi[1] - lo[1]:.0f} x "
            f"{hi[2] - lo[2]:.0f} nm) is above the limit of {max_voxels:,}: give a larger "
            "voxel or a smaller ROI", run.path)
    need, avail = n_vox * BYTES_PER_VOXEL, (_available_memory() if check_memory else None)
    if avail is not None and need > avail:
        raise AnalysisError(
            f"a grid of {shape[0]} x {shape[1]} x {shape[2]} = {n_vox:,} voxels of "
            f"{voxel_nm:g} nm needs about {need / 1e6:,.0f} MB ({BYTES_PER_VOXEL} bytes per "
            f"voxel), more than the {avail / 1e6:,.0f} MB this machine has available: give a "
            "larger voxel or a smaller ROI", run.path)
    raw_solute = np.zeros(shape, np.int32)
    raw_atoms = np.zeros(shape, np.int32)
    cic = delocalisation == "cic"
    grids = [np.zeros(shape if cic else (1, 1, 1), np.float64) for _ in range(4)]
    n_counted = 0
    for x, y, z, kind in chunks():
        n_counted += int(np.count_nonzero(kind >= 0))
        _bin_atoms(x, y, z, kind, solute_per_kind, atoms_per_kind, origin, 1.0 / voxel_nm,
                   1 if cic else 0, *grids, raw_solute, raw_atoms)
    if n_counted == 0:
        raise AnalysisError("no ranged (non-excluded) ions in the selection: nothing to "
                            "voxelise", run.path)
    if cic:
        solute, atoms, solute_w2, atoms_w2 = (g.astype(np.float32) for g in grids)
    elif sigma_nm > 0:
        k = gaussian_kernel(sigma_vox)
        solute, atoms = _separable(raw_solute, k), _separable(raw_atoms, k)
        solute_w2, atoms_w2 = _separable(raw_solute, k * k), _separable(raw_atoms, k * k)
    else:
        solute, atoms = raw_solute.astype(np.float32), raw_atoms.astype(np.float32)
        solute_w2, atoms_w2 = solute, atoms
    del grids
    valid = atoms > 0
    if min_density_fraction > 0:
        typical = float(np.median(atoms[raw_atoms > 0]))
        valid &= atoms >= min_density_fraction * typical
    return VoxelGrid(origin_nm=tuple(float(o) for o in origin), voxel_nm=float(voxel_nm),
                     shape=shape, species=species, delocalisation=delocalisation,
                     sigma_nm=float(sigma_nm), reach_voxels=reach, solute=solute, atoms=atoms,
                     solute_w2=solute_w2, atoms_w2=atoms_w2, raw_solute=raw_solute,
                     raw_atoms=raw_atoms, valid=valid,
                     min_density_fraction=float(min_density_fraction),
                     ions_counted=n_counted, excluded=tuple(exclude),
                     selection=dict(selection or {}), warnings=tuple(ranges.warnings))
