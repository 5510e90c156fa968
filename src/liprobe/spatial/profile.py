"""One-dimensional composition profiles: along an axis (depth) or radially.

Composition per bin from the atoms of the ranged ions in it (molecular ions
decomposed with the range table's matrix; ions containing an excluded element
dropped whole, as in :mod:`liprobe.composition`), with the binomial error
``sqrt(C (1 - C) / N)`` of ``N`` atoms in the bin (Danoix et al.,
Ultramicroscopy 107 (2007) 734; ``shared/reference/composition.md`` sections 2
and 6). The denominator is all atoms of the bin; ``elements`` only chooses
which are reported.

Two binnings (composition.md section 6):

- fixed width: bins ``[lo, lo + bin_nm)`` along the coordinate from its
  smallest value; the last bin is closed and ends at the largest value, so
  it may be narrower (its edges say so). Error bars vary
  with the atoms per bin; an empty bin has no composition (None).
- fixed count: the counted ions (ranged, not excluded) sorted by the
  coordinate, in consecutive groups of ``ions_per_bin``; each group is placed
  at its mean coordinate, its edges are its extreme ions. The last,
  incomplete group is dropped. (The sort holds the coordinate and ion of
  every counted ion in memory, 16 bytes each; fixed width works in chunks.)

Along z (the CAMECA convention: z <= 0, decreasing as the run proceeds) each
bin also gets a depth, ``z_top - z`` with ``z_top`` the highest z of the
selected ions, so that depth grows from 0 at the top. The radial profile
uses the distance from an axis parallel to z (the median x, y of the ions
unless given); it shows the coating as a rise of Cr at the periphery.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import AnalysisError
from ..rangetable import RangeTable
from ..run import Run
from ..stats import check_bin_cells

__all__ = ["Profile", "composition_profile"]

_CHUNK = 1 << 20
AXES = ("x", "y", "z")


@dataclass(frozen=True)
class Profile:
    """A composition profile.

    Attributes
    ----------
    coordinate : str
        ``"x"``, ``"y"``, ``"z"`` or ``"r"`` (radial, nm from ``center_nm``).
    mode : str
        ``"fixed_width"`` or ``"fixed_count"``.
    bin_nm, ions_per_bin : float or None, int or None
        The binning (one of the two is set).
    lo, hi, position : ndarray of float64, shape (n_bins,)
        Bin edges and the position of each bin (centre, or mean of its ions).
    depth : ndarray or None
        ``z_top - position`` for a z profile.
    atoms : ndarray of int64, shape (n_bins,)
        Atoms (all elements, excluded ions left out) per bin.
    ions : ndarray of int64, shape (n_bins,)
        Counted ions per bin.
    elements : tuple of str
    percent, error : dict of str to ndarray of float64
        At.% and its 1-sigma binomial error per bin (NaN where no atoms).
    length_nm : float
        Span of the coordinate covered by the counted ions.
    selection : dict
        How the ions were selected (ROI, segment), as given.
    """

    coordinate: str
    mode: str
    bin_nm: float | None
    ions_per_bin: int | None
    lo: np.ndarray
    hi: np.ndarray
    position: np.ndarray
    depth: np.ndarray | None
    atoms: np.ndarray
    ions: np.ndarray
    elements: tuple
    percent: dict
    error: dict
    length_nm: float
    z_top_nm: float | None = None
    center_nm: tuple | None = None
    excluded: tuple = ()
    selection: dict = field(default_factory=dict)
    warnings: tuple = ()

    @property
    def n_bins(self) -> int:
        return len(self.position)

    def header(self) -> dict:
        """What the profile is of: binning, coordinate, ROI and its size (nm)."""
        sel = dict(self.selection)
        return {
            "coordinate": self.coordinate, "mode": self.mode,
            "bin_nm": self.bin_nm, "ions_per_bin": self.ions_per_bin,
            "n_bins": self.n_bins, "length_nm": self.length_nm,
            "roi": sel.get("roi"), "roi_diameter_nm": sel.get("diameter_nm"),
            "roi_length_nm": sel.get("length_nm"),
            "z_top_nm": self.z_top_nm,
            "center_nm": None if self.center_nm is None else list(self.center_nm),
            "elements": list(self.elements), "excluded": list(self.excluded),
            "error": "binomial, sqrt(C(1-C)/N), N atoms in the bin",
        }

    def rows(self) -> list[dict]:
        """One dict per bin (NaN percentages of empty bins kept as NaN)."""
        out = []
        for i in range(self.n_bins):
            row = {"lo_nm": self.lo[i], "hi_nm": self.hi[i], "position_nm": self.position[i]}
            if self.depth is not None:
                row["depth_nm"] = self.depth[i]
            row["atoms"] = int(self.atoms[i])
            row["ions"] = int(self.ions[i])
            for el in self.elements:
                row[f"{el}_at%"] = self.percent[el][i]
                row[f"{el}_err"] = self.error[el][i]
            out.append(row)
        return out

    def to_dict(self) -> dict:
        d = self.header()
        d["selection"] = dict(self.selection)
        bins = {"lo_nm": self.lo, "hi_nm": self.hi, "position_nm": self.position}
        if self.depth is not None:
            bins["depth_nm"] = self.depth
        bins["atoms"] = self.atoms
        bins["ions"] = self.ions
        d["bins"] = bins
        d["percent"] = {el: [None if not math.isfinite(v) else float(v) for v in a]
                        for el, a in self.percent.items()}
        d["error"] = {el: [None if not math.isfinite(v) else float(v) for v in a]
                      for el, a in self.error.items()}
        if (self.atoms == 0).any():
            d["null_reason"] = "bins with no atoms have no composition (null)"
        d["warnings"] = list(self.warnings)
        return d


def _coordinate(x, y, z, coord, center):
    if coord == "r":
        return np.hypot(np.asarray(x, np.float64) - center[0],
                        np.asarray(y, np.float64) - center[1])
    return np.asarray({"x": x, "y": y, "z": z}[coord], dtype=np.float64)


def composition_profile(run: Run, ranges: RangeTable, axis: str = "z", bin_nm: float | None = None,
                        ions_per_bin: int | None = None, elements=None, exclude=(),
                        radial: bool = False, center_nm=None, selection: dict | None = None,
                        chunk_ions: int = _CHUNK) -> Profile:
    """Composition against position along ``axis`` (or against radius).

    Parameters
    ----------
    run : Run
        Needs ``mass`` and the coordinate columns (``x y z`` in nm).
    ranges : RangeTable
    axis : {"x", "y", "z"}
        Coordinate of the profile (ignored when ``radial``).
    bin_nm : float, optional
        Fixed bin width in nm (default 1 nm when ``ions_per_bin`` is not given).
    ions_per_bin : int, optional
        Fixed count of counted ions per bin instead.
    elements : iterable of str, optional
        Elements reported (default: all ranged, less the excluded).
    exclude : iterable of str
        Elements whose ions are dropped whole.
    radial : bool
        Profile against the distance from an axis parallel to z.
    center_nm : (float, float), optional
        That axis (default: median x, y of the ions).
    selection : dict, optional
        Description of the selection (ROI, segment) to carry into the result.
    chunk_ions : int

    Returns
    -------
    Profile

    Raises
    ------
    ColumnError
        A missing column.
    AnalysisError
        No counted ions, or an element that is not ranged.

    References
    ----------
    .. [1] F. Danoix, G. Grancher, A. Bostel, D. Blavette, "Standard deviations of
       composition measurements in atom probe analyses", Part I and Part II,
       Ultramicroscopy 107 (2007) 734-738 and 739-743.

    Examples
    --------
    Four layers of 10 ions, 0.5 nm apart in z, holding 10, 5, 2 and 0 Li+
    (the rest O+); bins of 1 nm from the lowest z upwards. Errors are the
    binomial ``100 sqrt(C (1 - C) / N)`` of ``N`` atoms in the bin [1]_.

    >>> import numpy as np
    >>> import liprobe
    >>> from liprobe import Range, RangeTable, parse_ion
    >>> table = RangeTable.from_ranges([Range(6.9, 7.2, parse_ion("Li+")),
    ...                                 Range(15.9, 16.2, parse_ion("O+"))])
    >>> z = -np.repeat([0.25, 0.75, 1.25, 1.75], 10)
    >>> li = np.array([1] * 10 + [1] * 5 + [0] * 5 + [1] * 2 + [0] * 8 + [0] * 10, bool)
    >>> run = liprobe.Run.from_arrays(x=np.zeros(40), y=np.zeros(40), z=z,
    ...                               mass=np.where(li, 7.0, 16.0))
    >>> prof = liprobe.composition_profile(run, table, axis="z", bin_nm=1.0)
    >>> prof.lo, prof.hi             # the last bin ends at the highest z
    (array([-1.75, -0.75]), array([-0.75, -0.25]))
    >>> prof.atoms, prof.percent["Li"]   # 2 of 20 Li deep down, 15 of 20 near the top
    (array([20, 20]), array([10., 75.]))
    >>> print(f"{prof.error['Li'][1]:.2f} {100 * (0.75 * 0.25 / 20) ** 0.5:.2f}")
    9.68 9.68
    """
    from ..chemistry import is_element
    from ..ranging import assign

    if bin_nm is not None and ions_per_bin is not None:
        raise ValueError("give bin_nm or ions_per_bin, not both")
    if bin_nm is None and ions_per_bin is None:
        bin_nm = 1.0
    if bin_nm is not None and not bin_nm > 0:
        raise ValueError("bin_nm must be positive")
    if ions_per_bin is not None and ions_per_bin < 1:
        raise ValueError("ions_per_bin must be at least 1")
    coord = "r" if radial else axis
    if coord not in AXES + ("r",):
        raise ValueError(f"axis must be x, y or z, not '{axis}'")
    exclude = tuple(exclude)
    for el in exclude:
        if not is_element(el):
            raise AnalysisError(f"cannot exclude '{el}': not a chemical element")
    need = ("x", "y") if radial else (axis,)
    for c in ("mass",) + need + (("z",) if axis == "z" or radial else ()):
        run.source(c)               # ColumnError naming the column
    from .voxels import counted_ions

    all_els, elements, win_ion, matrix = counted_ions(ranges, exclude, elements)
    n_ion_kinds = len(ranges.ions)
    warnings = list(ranges.warnings)

    center = None
    if radial:
        from .roi import column_median

        center = (tuple(float(c) for c in center_nm) if center_nm is not None else
                  (column_median(run, "x", chunk_ions), column_median(run, "y", chunk_ions)))

    def coords_and_ions():
        gens = [run.chunks(c, chunk_ions) for c in ("mass",) + need]
        for parts in zip(*gens):
            mass = parts[0][1]
            cols = {c: p[1] for c, p in zip(need, parts[1:])}
            s = (_coordinate(cols["x"], cols["y"], None, "r", center) if radial
                 else np.asarray(cols[axis], np.float64))
            labels, _ = assign(mass, ranges)
            ion = np.where(labels >= 0, win_ion[np.maximum(labels, 0)], -1) if len(ranges) \
                else np.full(len(mass), -1)
            ok = ion >= 0
            yield s[ok], ion[ok]

    z_top = None
    if axis == "z" and not radial:
        z_top = max((float(c.max()) for _s, c in run.chunks("z", chunk_ions) if len(c)),
                    default=None)

    if ions_per_bin is None:
        lo_s = math.inf
        hi_s = -math.inf
        n_counted = 0
        for s, _ion in coords_and_ions():
            if len(s):
                lo_s, hi_s = min(lo_s, float(s.min())), max(hi_s, float(s.max()))
                n_counted += len(s)
        if n_counted == 0:
            raise AnalysisError("no ranged (non-excluded) ions in the selection: nothing to "
                                "profile", run.path)
        span = (hi_s - lo_s) / bin_nm - 1e-9
        check_bin_cells((span + 1) * n_ion_kinds, f"a profile of {hi_s - lo_s:g} nm in bins of "
                        f"{bin_nm:g} nm for each of {n_ion_kinds} ion types")
        n_bins = max(int(math.ceil(span)), 1)
        counts = np.zeros(n_bins * n_ion_kinds, np.int64)
        for s, ion in coords_and_ions():
            b = np.minimum(((s - lo_s) / bin_nm).astype(np.int64), n_bins - 1)
            counts += np.bincount(b * n_ion_kinds + ion, minlength=n_bins * n_ion_kinds)
        counts = counts.reshape(n_bins, n_ion_kinds)
        lo = lo_s + bin_nm * np.arange(n_bins)
        hi = lo + bin_nm
        hi[-1] = max(min(hi[-1], hi_s), lo[-1])      # the last bin ends at the last ion
        position = 0.5 * (lo + hi)
        mode = "fixed_width"
        length = hi_s - lo_s
    else:
        parts = list(coords_and_ions())
        s = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0)
        ion = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0, np.int64)
        n_bins = len(s) // int(ions_per_bin)
        if n_bins == 0:
            raise AnalysisError(f"{len(s)} ranged (non-excluded) ions in the selection: fewer "
                                f"than one bin of {ions_per_bin}", run.path)
        order = np.argsort(s, kind="stable")[: n_bins * ions_per_bin]
        s_sorted = s[order].reshape(n_bins, ions_per_bin)
        group = np.repeat(np.arange(n_bins), ions_per_bin)
        counts = np.bincount(group * n_ion_kinds + ion[order],
                             minlength=n_bins * n_ion_kinds).reshape(n_bins, n_ion_kinds)
        lo, hi = s_sorted[:, 0].copy(), s_sorted[:, -1].copy()
        position = s_sorted.mean(axis=1)
        mode = "fixed_count"
        length = float(s.max() - s.min())
        dropped = len(s) - n_bins * ions_per_bin
        if dropped:
            warnings.append(f"the last {dropped} ions (an incomplete bin) are left out")

    atoms_el = counts @ matrix                    # (n_bins, n_elements)
    keep_el = np.array([el not in exclude for el in all_els], bool)
    atoms = atoms_el[:, keep_el].sum(axis=1) if len(all_els) else np.zeros(n_bins, np.int64)
    percent, error = {}, {}
    with np.errstate(invalid="ignore", divide="ignore"):
        for el in elements:
            c = atoms_el[:, all_els.index(el)] / np.where(atoms > 0, atoms, np.nan)
            percent[el] = 100.0 * c
            error[el] = 100.0 * np.sqrt(c * (1.0 - c) / atoms)
    depth = (z_top - position) if z_top is not None else None
    return Profile(
        coordinate=coord, mode=mode, bin_nm=float(bin_nm) if bin_nm is not None else None,
        ions_per_bin=int(ions_per_bin) if ions_per_bin is not None else None,
        lo=np.asarray(lo, np.float64), hi=np.asarray(hi, np.float64),
        position=np.asarray(position, np.float64), depth=depth,
        atoms=atoms.astype(np.int64), ions=counts.sum(axis=1).astype(np.int64),
        elements=elements, percent=percent, error=error, length_nm=float(length),
        z_top_nm=z_top, center_nm=center, excluded=exclude,
        selection=dict(selection or {}), warnings=tuple(warnings))
