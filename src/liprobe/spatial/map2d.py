"""2D composition maps: one element's at.% over a plane, with the counts behind each pixel.

The counted atoms (ranged ions, molecular ions decomposed, ions holding an
``exclude`` element dropped whole, as in :mod:`liprobe.composition`) of a slab
``thickness_nm`` thick, centred at ``at_nm`` along the plane's normal (``xy``
across the tip, normal z; ``xz`` and ``yz`` along it), are binned into square
pixels of ``pixel_nm``. Per pixel: the atoms of the ``species`` and of every
counted element, the composition ``C = S / N`` and its binomial error
``sqrt(C (1 - C) / N)`` (Danoix et al. 2007). A pixel without atoms has no
composition (NaN in the arrays, null in the JSON), and one with fewer than
``min_atoms`` is drawn blank: its composition is there, with its error,
but too noisy to colour.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import AnalysisError
from ..rangetable import RangeTable
from ..run import Run
from .voxels import check_ranged, counted_ions, ion_kinds

__all__ = ["CompositionMap", "composition_map", "PLANES", "MAX_PIXELS"]

#: plane -> (horizontal axis, vertical axis, normal), as column names
PLANES = {"xy": ("x", "y", "z"), "xz": ("x", "z", "y"), "yz": ("y", "z", "x")}
#: Most pixels of a map.
MAX_PIXELS = 1 << 24
_CHUNK = 1 << 20


@dataclass(frozen=True)
class CompositionMap:
    """At.% of ``species`` over a plane, pixel by pixel.

    Attributes
    ----------
    plane : str
        ``"xy"``, ``"xz"`` or ``"yz"``.
    axes : tuple of str
        Horizontal and vertical axes (``u``, ``v``) and the normal.
    species : tuple of str
        Elements of the solute (summed).
    at_nm, thickness_nm, pixel_nm : float
        Slab centre along the normal, its thickness, the pixel edge.
    origin_nm : tuple of float
        Lower-left corner of pixel ``(0, 0)`` (u, v).
    solute, atoms : ndarray of int64, shape (n_u, n_v)
        Atoms of ``species`` and of every counted element per pixel.
    min_atoms : int
        Pixels with fewer atoms are left blank in the figure.
    ions_in_slab : int
        Counted ions in the slab.
    """

    plane: str
    axes: tuple
    species: tuple
    at_nm: float
    thickness_nm: float
    pixel_nm: float
    origin_nm: tuple
    solute: np.ndarray = field(repr=False)
    atoms: np.ndarray = field(repr=False)
    min_atoms: int = 10
    ions_in_slab: int = 0
    excluded: tuple = ()
    selection: dict = field(default_factory=dict)
    warnings: tuple = ()

    @property
    def shape(self) -> tuple:
        return tuple(self.atoms.shape)

    @property
    def percent(self) -> np.ndarray:
        """At.% of ``species`` per pixel (NaN without atoms)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.atoms > 0, 100.0 * self.solute / self.atoms, np.nan)

    @property
    def error(self) -> np.ndarray:
        """1-sigma binomial error of :attr:`percent`, ``100 sqrt(C (1 - C) / N)``."""
        with np.errstate(invalid="ignore", divide="ignore"):
            c = self.solute / self.atoms
            return np.where(self.atoms > 0, 100.0 * np.sqrt(c * (1.0 - c) / self.atoms),
                            np.nan)

    def centres(self, axis: int) -> np.ndarray:
        """Pixel centres along ``u`` (0) or ``v`` (1), nm."""
        return self.origin_nm[axis] + self.pixel_nm * (np.arange(self.shape[axis]) + 0.5)

    def rows(self) -> list[dict]:
        """One dict per pixel holding atoms (for a CSV)."""
        u, v = self.axes[0], self.axes[1]
        pc, er = self.percent, self.error
        cu, cv = self.centres(0), self.centres(1)
        out = []
        for i, j in zip(*np.nonzero(self.atoms)):
            out.append({f"{u}_nm": float(cu[i]), f"{v}_nm": float(cv[j]),
                        "atoms": int(self.atoms[i, j]), "solute": int(self.solute[i, j]),
                        "at_pct": float(pc[i, j]), "at_pct_err": float(er[i, j])})
        return out

    def to_dict(self) -> dict:
        atoms_total = int(self.atoms.sum())
        solute_total = int(self.solute.sum())
        filled = self.atoms > 0
        return {
            "plane": self.plane, "axes": list(self.axes[:2]), "normal": self.axes[2],
            "species": list(self.species), "at_nm": self.at_nm,
            "thickness_nm": self.thickness_nm, "pixel_nm": self.pixel_nm,
            "origin_nm": list(self.origin_nm), "shape": list(self.shape),
            "pixels_with_atoms": int(filled.sum()),
            "pixels_below_min_atoms": int((filled & (self.atoms < self.min_atoms)).sum()),
            "min_atoms": self.min_atoms, "ions_in_slab": self.ions_in_slab,
            "atoms": atoms_total, "solute_atoms": solute_total,
            "at_pct_slab": 100.0 * solute_total / atoms_total if atoms_total else None,
            "at_pct_range": ([float(np.nanmin(self.percent)), float(np.nanmax(self.percent))]
                             if filled.any() else None),
            "median_atoms_per_pixel": float(np.median(self.atoms[filled])) if filled.any()
            else None,
            "counts": {"atoms": self.atoms.tolist(), "solute": self.solute.tolist()},
            "error": "binomial, sqrt(C(1-C)/N), N atoms in the pixel",
            "excluded": list(self.excluded), "selection": dict(self.selection),
            "warnings": list(self.warnings)}


def composition_map(run: Run, ranges: RangeTable, species, plane: str = "xy",
                    at_nm: float | None = None, thickness_nm: float = 5.0,
                    pixel_nm: float = 1.0, exclude=(), min_atoms: int = 10,
                    max_pixels: int = MAX_PIXELS, selection: dict | None = None,
                    chunk_ions: int = _CHUNK) -> CompositionMap:
    """At.% of ``species`` over a slab of ``run``, in square pixels, with the counts.

    Parameters
    ----------
    run : Run
        Needs ``x y z`` (nm) and ``mass`` (Da).
    ranges : RangeTable
    species : str or iterable of str
        Element(s) of the map (summed).
    plane : {"xy", "xz", "yz"}
    at_nm : float, optional
        Slab centre along the normal (default: the median of the counted ions).
    thickness_nm : float
        Slab thickness (``inf``: every ion).
    pixel_nm : float
        Pixel edge.
    exclude : iterable of str
        Elements whose ions are dropped whole.
    min_atoms : int
        Pixels with fewer atoms are drawn blank.
    max_pixels : int
    selection : dict, optional
    chunk_ions : int

    Returns
    -------
    CompositionMap

    Raises
    ------
    AnalysisError
        A species not ranged, no counted ion in the slab, bad parameters, a map
        above ``max_pixels``.

    References
    ----------
    .. [1] F. Danoix, G. Grancher, A. Bostel, D. Blavette, "Standard deviations of
       composition measurements in atom probe analyses", Ultramicroscopy 107
       (2007) 734-743.

    Examples
    --------
    Four ions in a 2 x 2 nm square of the plane z = 0: one pixel of 2 nm holds
    them all, half Cr (one CrO+ counts a Cr and an O atom).

    >>> import numpy as np
    >>> import liprobe
    >>> from liprobe import Range, RangeTable, parse_ion
    >>> from liprobe.spatial.map2d import composition_map
    >>> table = RangeTable.from_ranges([Range(51.5, 52.5, parse_ion("Cr+")),
    ...                                 Range(57.5, 58.5, parse_ion("Ni+")),
    ...                                 Range(67.5, 68.5, parse_ion("CrO+"))])
    >>> run = liprobe.Run.from_arrays(x=np.array([0.5, 1.5, 0.5, 1.5]),
    ...                               y=np.array([0.5, 0.5, 1.5, 1.5]), z=np.zeros(4),
    ...                               mass=np.array([52.0, 58.0, 58.0, 68.0]))
    >>> m = composition_map(run, table, "Cr", pixel_nm=2.0, at_nm=0.0)
    >>> m.shape, int(m.atoms[0, 0]), int(m.solute[0, 0]), float(m.percent[0, 0])
    ((1, 1), 5, 2, 40.0)
    """
    if plane not in PLANES:
        raise AnalysisError(f"unknown plane '{plane}' (give one of {', '.join(PLANES)})")
    if not (pixel_nm > 0 and math.isfinite(pixel_nm)):
        raise AnalysisError(f"the pixel edge must be a positive number of nm, not {pixel_nm}")
    if not thickness_nm > 0:
        raise AnalysisError(f"the slab thickness must be a positive number of nm, not "
                            f"{thickness_nm}")
    if min_atoms < 0:
        raise AnalysisError(f"the fewest atoms of a coloured pixel must be 0 or more, not "
                            f"{min_atoms}")
    if isinstance(species, str):
        species = (species,)
    species = tuple(dict.fromkeys(species))      # an element named twice counts once
    if not species:
        raise AnalysisError("give the element(s) of the map")
    u, v, w = PLANES[plane]
    for c in ("x", "y", "z", "mass"):
        run.source(c)
    all_els, _rep, win_ion, matrix = counted_ions(ranges, exclude)
    for el in species:
        check_ranged(el, all_els, ranges)
        if el in exclude:
            raise AnalysisError(f"element {el} is both mapped and excluded")
    keep = np.array([el not in exclude for el in all_els], bool)
    atoms_per_kind = matrix[:, keep].sum(axis=1) if len(all_els) else np.zeros(0, np.int64)
    solute_per_kind = matrix[:, [all_els.index(el) for el in species]].sum(axis=1)

    def chunks():
        gens = [run.chunks(c, chunk_ions) for c in (u, v, w, "mass")]
        for (_s, a), (_s2, b), (_s3, n), (_s4, mass) in zip(*gens):
            k = ion_kinds(mass, ranges, win_ion)
            ok = k >= 0
            yield a[ok], b[ok], n[ok], k[ok]

    if at_nm is None:
        from .roi import median_of_chunks

        try:
            # exact, in bounded memory: the median of the ranged ions' normal coordinate
            at_nm = median_of_chunks(lambda: (n for _a, _b, n, _k in chunks()))
        except ValueError as e:
            raise AnalysisError("no ranged (non-excluded) ions in the selection"
                                if "no values" in str(e) else f"no median of {w}: {e}",
                                run.path) from None
    half = 0.5 * thickness_nm
    lo = np.array([np.inf, np.inf])
    hi = -lo
    n_slab = 0
    for a, b, n, _k in chunks():
        s = np.abs(n - at_nm) <= half
        if s.any():
            n_slab += int(s.sum())
            lo = np.minimum(lo, [float(a[s].min()), float(b[s].min())])
            hi = np.maximum(hi, [float(a[s].max()), float(b[s].max())])
    if n_slab == 0:
        raise AnalysisError(f"no counted ion in the {thickness_nm:g} nm slab at {w} = "
                            f"{at_nm:g} nm", run.path)
    with np.errstate(over="ignore"):      # before any rounding: inf for a tiny pixel
        span = (hi - lo) / pixel_nm
    if not float(np.prod(span + 2)) <= max_pixels:
        raise AnalysisError(f"a map of {span[0] + 1:,.0f} x {span[1] + 1:,.0f} pixels of "
                            f"{pixel_nm:g} nm is above the limit of {max_pixels:,}: give "
                            "larger pixels or a ROI", run.path)
    origin = pixel_nm * np.floor(lo / pixel_nm)
    shape = tuple(int(s) for s in np.floor((hi - origin) / pixel_nm).astype(np.int64) + 1)
    if shape[0] * shape[1] > max_pixels:
        raise AnalysisError(f"a map of {shape[0]} x {shape[1]} pixels of {pixel_nm:g} nm is "
                            f"above the limit of {max_pixels:,}: give larger pixels or a ROI",
                            run.path)
    atoms = np.zeros(shape[0] * shape[1], np.int64)
    solute = np.zeros_like(atoms)
    for a, b, n, k in chunks():
        s = np.abs(n - at_nm) <= half
        i = np.minimum(((a[s] - origin[0]) / pixel_nm).astype(np.int64), shape[0] - 1)
        j = np.minimum(((b[s] - origin[1]) / pixel_nm).astype(np.int64), shape[1] - 1)
        lin = i * shape[1] + j
        atoms += np.bincount(lin, weights=atoms_per_kind[k[s]],
                             minlength=len(atoms)).astype(np.int64)
        solute += np.bincount(lin, weights=solute_per_kind[k[s]],
                              minlength=len(atoms)).astype(np.int64)
    return CompositionMap(plane=plane, axes=(u, v, w), species=species, at_nm=float(at_nm),
                          thickness_nm=float(thickness_nm), pixel_nm=float(pixel_nm),
                          origin_nm=(float(origin[0]), float(origin[1])),
                          solute=solute.reshape(shape), atoms=atoms.reshape(shape),
                          min_atoms=int(min_atoms), ions_in_slab=n_slab, excluded=tuple(exclude),
                          selection=dict(selection or {}), warnings=tuple(ranges.warnings))
