"""Regions of interest and run segments.

A region of interest is written as a short spec (the ``--roi`` option):

==================================  =============================================
``cylinder:D``                      infinite cylinder along z, diameter D nm, on
                                    the data's axis (median x, y of the ions) or
                                    on ``center``
``cylinder:D:L``                    the same, L nm long, centred on the middle of
                                    the data's z range
``sphere:D@X,Y,Z``                  sphere of diameter D nm centred at (X, Y, Z) nm
``box:X0:X1:Y0:Y1:Z0:Z1``           axis-aligned box, nm
``core[:MARGIN]``                   the region at least MARGIN nm (default 3)
                                    inside a coating (needs ranges; see
                                    :mod:`liprobe.spatial.coating`)
==================================  =============================================

A bare size D is a diameter; ``d=D`` says so, and ``r=R`` gives a radius
instead (``cylinder:r=12.5`` is ``cylinder:25``, as APAV's ``RoiCylinder``
and AP Suite take a radius). Every description says which:
``"cylinder, diameter 25 nm"``.

A segment (``--segment START:STOP``) is a range of ion indices in evaporation
order, e.g. the part of a run taken at one laser energy. Segments are applied
before the ROI.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from .._jit import njit, prange
from ..errors import AnalysisError
from ..run import DEFAULT_CHUNK_IONS, Run

__all__ = ["cylinder_mask", "sphere_mask", "box_mask", "Roi", "parse_roi", "parse_segment",
           "select", "describe_text"]


@njit(parallel=True, cache=True, nogil=True)
def _cylinder_kernel(x, y, cx, cy, r2, out):
    for i in prange(x.shape[0]):
        dx = np.float64(x[i]) - cx
        dy = np.float64(y[i]) - cy
        out[i] = dx * dx + dy * dy <= r2


def cylinder_mask(x_nm, y_nm, diameter_nm, center_nm=(0.0, 0.0), out=None):
    """Ions inside an infinite cylinder along z.

    Parameters
    ----------
    x_nm, y_nm : ndarray of float, shape (n,)
        Reconstructed lateral positions in nm.
    diameter_nm : float
        Cylinder diameter in nm (the study uses 25 nm).
    center_nm : (float, float)
        Axis position in nm.
    out : ndarray of bool, shape (n,), optional

    Returns
    -------
    ndarray of bool, shape (n,)
        True where ``(x - cx)**2 + (y - cy)**2 <= (diameter / 2)**2``.
    """
    x = np.ascontiguousarray(x_nm)
    y = np.ascontiguousarray(y_nm)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError("x and y must be 1-D arrays of the same length")
    if out is None:
        out = np.empty(x.shape, dtype=np.bool_)
    r = 0.5 * float(diameter_nm)
    _cylinder_kernel(x, y, float(center_nm[0]), float(center_nm[1]), r * r, out)
    return out


def sphere_mask(x_nm, y_nm, z_nm, diameter_nm, center_nm):
    """Ions inside a sphere of ``diameter_nm`` centred at ``center_nm`` (x, y, z), nm."""
    cx, cy, cz = (float(c) for c in center_nm)
    r = 0.5 * float(diameter_nm)
    d2 = ((np.asarray(x_nm, np.float64) - cx) ** 2 + (np.asarray(y_nm, np.float64) - cy) ** 2
          + (np.asarray(z_nm, np.float64) - cz) ** 2)
    return d2 <= r * r


def box_mask(x_nm, y_nm, z_nm, bounds_nm):
    """Ions inside ``[x0, x1] x [y0, y1] x [z0, z1]`` (nm, bounds inclusive)."""
    x0, x1, y0, y1, z0, z1 = (float(b) for b in bounds_nm)
    x, y, z = (np.asarray(a) for a in (x_nm, y_nm, z_nm))
    return (x >= x0) & (x <= x1) & (y >= y0) & (y <= y1) & (z >= z0) & (z <= z1)


@dataclass(frozen=True)
class Roi:
    """A parsed region of interest; ``params`` in nm. See the module docstring."""

    kind: str
    params: tuple = ()
    center: tuple | None = None
    spec: str = ""
    extra: dict = field(default_factory=dict, compare=False)

    def describe(self) -> dict:
        d = {"roi": self.spec, "kind": self.kind}
        if self.kind == "cylinder":
            d["diameter_nm"] = self.params[0]
            d["length_nm"] = self.params[1] if len(self.params) > 1 else None
        elif self.kind == "sphere":
            d["diameter_nm"], d["center_nm"] = self.params[0], list(self.params[1:])
        elif self.kind == "box":
            d["bounds_nm"] = list(self.params)
        elif self.kind == "core":
            d["margin_nm"] = self.params[0]
        if self.center is not None:
            d["center_nm"] = list(self.center)
        d["description"] = describe_text(d)
        return d


def describe_text(d: dict) -> str:
    """A ROI description (:meth:`Roi.describe`, with what :func:`select` adds) in words:
    ``"cylinder, diameter 25 nm, axis at (0.1, -0.3) nm"``."""
    kind = d.get("kind")
    if kind == "cylinder":
        t = f"cylinder, diameter {d['diameter_nm']:g} nm"
        if d.get("length_nm") is not None:
            t += f", length {d['length_nm']:g} nm"
        if d.get("center_nm") is not None:
            cx, cy = d["center_nm"][:2]
            t += f", axis at ({cx:.2f}, {cy:.2f}) nm"
        return t
    if kind == "sphere":
        cx, cy, cz = d["center_nm"]
        return f"sphere, diameter {d['diameter_nm']:g} nm, centre ({cx:g}, {cy:g}, {cz:g}) nm"
    if kind == "box":
        x0, x1, y0, y1, z0, z1 = d["bounds_nm"]
        return f"box x {x0:g} to {x1:g}, y {y0:g} to {y1:g}, z {z0:g} to {z1:g} nm"
    if kind == "core":
        return f"core, {d['margin_nm']:g} nm inside the coating"
    return str(d.get("roi", kind))


_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"


def _diameter(text: str) -> float:
    """``25`` or ``d=25`` (a diameter) or ``r=12.5`` (a radius) -> the diameter in nm."""
    t = text.strip()
    key, eq, num = t.partition("=")
    if not eq:
        return float(t)
    key = key.strip().lower()
    if key == "d":
        return float(num)
    if key == "r":
        return 2.0 * float(num)
    raise ValueError(f"'{t}': write D, d=D (a diameter) or r=R (a radius)")


def parse_roi(spec: str, center=None) -> Roi:
    """Parse a ROI spec (``cylinder:25``, ``sphere:10@0,0,-20``, ``box:...``, ``core:3``).

    A cylinder's or sphere's size is a diameter: ``cylinder:25`` and
    ``cylinder:d=25`` are the same; ``cylinder:r=12.5`` gives the radius (as
    APAV's ``RoiCylinder`` and AP Suite do), likewise ``sphere:r=5@X,Y,Z``.

    Raises
    ------
    ValueError
        Saying what is wrong with the spec (a usage error on the command line).
    """
    s = spec.strip()
    kind, _, rest = s.partition(":")
    kind = kind.lower()
    try:
        if kind == "cylinder":
            parts = rest.split(":") if rest else []
            if not 1 <= len(parts) <= 2:
                raise ValueError
            vals = (_diameter(parts[0]),) + tuple(float(p) for p in parts[1:])
            if any(v <= 0 for v in vals):
                raise ValueError("diameter and length must be positive")
            c = None if center is None else (float(center[0]), float(center[1]))
            return Roi("cylinder", vals, c, s)
        if kind == "sphere":
            m = re.fullmatch(rf"((?:[dDrR]\s*=\s*)?{_NUM})@({_NUM}),({_NUM}),({_NUM})", rest)
            if not m:
                raise ValueError
            vals = (_diameter(m.group(1)),) + tuple(float(v) for v in m.groups()[1:])
            if vals[0] <= 0:
                raise ValueError("diameter must be positive")
            return Roi("sphere", vals, None, s)
        if kind == "box":
            vals = tuple(float(p) for p in rest.split(":"))
            if len(vals) != 6 or vals[0] >= vals[1] or vals[2] >= vals[3] or vals[4] >= vals[5]:
                raise ValueError("give X0:X1:Y0:Y1:Z0:Z1 with each lower bound below the upper")
            return Roi("box", vals, None, s)
        if kind == "core":
            margin = float(rest) if rest else 3.0
            if margin < 0:
                raise ValueError("margin must not be negative")
            return Roi("core", (margin,), None, s)
    except ValueError as e:
        detail = f": {e}" if str(e) and "could not convert" not in str(e) else ""
        raise ValueError(f"bad ROI '{spec}'{detail} (write cylinder:D[:L], sphere:D@X,Y,Z, "
                         "box:X0:X1:Y0:Y1:Z0:Z1 or core[:MARGIN], sizes in nm; D is a "
                         "diameter, or write d=D, or r=R for a radius)") from None
    raise ValueError(f"unknown ROI kind '{kind}' in '{spec}' (cylinder, sphere, box or core)")


def parse_segment(spec: str) -> slice:
    """Parse ``START:STOP`` (ion indices, either may be empty) into a slice."""
    m = re.fullmatch(r"\s*(\d*(?:\.\d*)?(?:[eE]\d+)?)\s*:\s*(\d*(?:\.\d*)?(?:[eE]\d+)?)\s*", spec)
    if not m:
        raise ValueError(f"bad segment '{spec}' (write START:STOP in ion indices, e.g. 0:400000)")
    a, b = (int(float(g)) if g else None for g in m.groups())
    if a is not None and b is not None and b <= a:
        raise ValueError(f"bad segment '{spec}': STOP must be greater than START")
    return slice(a, b)


def column_median(run: Run, name: str, chunk_ions: int = DEFAULT_CHUNK_IONS) -> float:
    """``np.median`` of a column, exactly, in bounded memory (:func:`median_of_chunks`)."""
    try:
        return median_of_chunks(lambda: (c for _s, c in run.chunks(name, chunk_ions)))
    except ValueError as e:
        raise AnalysisError(f"no median of {name}: {e}", run.path) from None


def _bin_of(c: np.ndarray, lo: float, width: float, nb: int) -> np.ndarray:
    return np.minimum(np.floor((c.astype(np.float64) - lo) / width).astype(np.int64), nb - 1)


def median_of_chunks(chunks, max_kept: int = 1 << 22) -> float:
    """``np.median`` of the values that ``chunks()`` yields (a new iterable of arrays at each
    call), exactly, in bounded memory.

    A histogram of 65,536 bins over the values' range finds the bin(s) holding the
    middle value(s); when those bins hold more than ``max_kept`` values (an outlier
    stretching the range), the search repeats among them alone; then their values
    are sorted. Each level is two passes over the chunks.

    Raises
    ------
    ValueError
        No values, or a value that is not finite.
    """
    nb = 1 << 16
    levels: list = []                    # (lo, width, first bin, last bin) of each narrowing

    def in_play(c):
        for lo_, w_, a_, b_ in levels:
            bb = _bin_of(c, lo_, w_, nb)
            c = c[(bb >= a_) & (bb <= b_)]
        return c

    n, dtype, below = 0, None, 0
    first = True
    while True:
        lo, hi = np.inf, -np.inf
        for c in chunks():
            if first and len(c) and not np.isfinite(c).all():
                raise ValueError("a value is not finite (NaN or infinite)")
            if first:
                n += len(c)
                dtype = c.dtype if len(c) else dtype
            c = in_play(c)
            if len(c):
                lo, hi = min(lo, float(c.min())), max(hi, float(c.max()))
        if first:
            if n == 0:
                raise ValueError("median of no values")
            ranks = [(n - 1) // 2, n // 2]                      # the middle value(s)
            first = False
        if not hi > lo:                                         # all in play are equal
            return float(np.mean(np.array([lo, lo], dtype=dtype)))
        width = (hi - lo) / nb
        counts = np.zeros(nb, np.int64)
        for c in chunks():
            c = in_play(c)
            if len(c):
                counts += np.bincount(_bin_of(c, lo, width, nb), minlength=nb)
        cum = below + np.cumsum(counts)
        found = [int(np.searchsorted(cum, r, "right")) for r in ranks]
        a_bin, b_bin = min(found), max(found)
        new_below = int(cum[a_bin - 1]) if a_bin > 0 else below
        kept = int(cum[b_bin]) - new_below
        levels.append((lo, width, a_bin, b_bin))
        if kept <= max_kept or (a_bin == 0 and b_bin == nb - 1):
            break
        below = new_below
    vals = [in_play(c) for c in chunks()]
    v = np.sort(np.concatenate(vals))
    mid = v[[r - new_below for r in ranks]]
    return float(np.mean(mid.astype(dtype)))


def _roi_mask(run: Run, roi: Roi, ranges, d: dict, chunk_ions: int):
    """The ROI's :class:`~liprobe.run.PackedMask` over ``run``, computed a chunk at a time
    (``d`` gains the centre and other facts of the description)."""
    from ..run import PackedMask

    chunk_ions = max(8, int(chunk_ions) + (-int(chunk_ions)) % 8)   # whole bytes of the mask

    if roi.kind == "core":
        from .coating import core_mask

        if ranges is None:
            raise AnalysisError(f"ROI {roi.spec} needs a range file to find the coating",
                                run.path)
        mask, core_info = core_mask(run, ranges, margin_nm=roi.params[0], packed=True,
                                    chunk_ions=chunk_ions)
        d.update(core_info)
        return mask
    zmid = None
    center = (0.0, 0.0)
    if roi.kind == "cylinder":
        center = roi.center or (column_median(run, "x", chunk_ions),
                                column_median(run, "y", chunk_ions))
        if len(roi.params) > 1:
            lo, hi = np.inf, -np.inf
            for _s, z in run.chunks("z", chunk_ions):
                if len(z):
                    lo, hi = min(lo, float(z.min())), max(hi, float(z.max()))
            zmid = 0.5 * (lo + hi)
            d["z_center_nm"] = zmid
        d["center_nm"] = list(center)

    def chunks():
        need = ("x", "y") if roi.kind == "cylinder" and zmid is None else ("x", "y", "z")
        gens = [run.chunks(c, chunk_ions) for c in need]
        for parts in zip(*gens):
            cols = [p[1] for p in parts]
            if roi.kind == "cylinder":
                m = cylinder_mask(cols[0], cols[1], roi.params[0], center)
                if zmid is not None:
                    m &= np.abs(cols[2] - zmid) <= 0.5 * roi.params[1]
            elif roi.kind == "sphere":
                m = sphere_mask(cols[0], cols[1], cols[2], roi.params[0], roi.params[1:])
            elif roi.kind == "box":
                m = box_mask(cols[0], cols[1], cols[2], roi.params)
            else:  # pragma: no cover - parse_roi admits no other kind
                raise AnalysisError(f"unknown ROI kind {roi.kind}")
            yield m

    return PackedMask.from_chunks(chunks(), run.n_ions)


def select(run: Run, roi: Roi | str | None = None, segment: slice | str | None = None,
           ranges=None, chunk_ions: int = DEFAULT_CHUNK_IONS) -> tuple[Run, dict]:
    """The ions of ``run`` in ``segment`` and inside ``roi``, with a description.

    Parameters
    ----------
    run : Run
    roi : Roi or str, optional
    segment : slice or str, optional
        Ion indices in evaporation order (``"0:400000"``).
    ranges : RangeTable, optional
        Needed by ``core`` (to find the coating).
    chunk_ions : int
        Ions read at a time: the ROI's mask is computed chunk by chunk and kept
        packed (1 bit per ion), and the selected run reads its ions from the
        file when asked (:class:`~liprobe.run.MaskedSource`), so that memory
        stays bounded whatever the run's size. A cylinder's default axis is the
        exact median x, y (found in bounded memory).

    Returns
    -------
    run : Run
        The selected ions, in evaporation order.
    info : dict
        ``segment`` ([start, stop]), the ROI's description, ``ions_selected``.

    Raises
    ------
    AnalysisError
        An empty segment or ROI (or one outside the data), or a ROI on data
        without reconstructed positions.

    Examples
    --------
    >>> import numpy as np
    >>> import liprobe
    >>> run = liprobe.Run.from_arrays(x=np.arange(6.0), y=np.zeros(6), z=-np.arange(6.0),
    ...                               mass=np.full(6, 7.0))
    >>> core, info = liprobe.select(run, "cylinder:3", "0:5")   # segment: the first 5 ions
    >>> core["x"]                      # within 1.5 nm of the axis, at the median x = 2
    array([1., 2., 3.])
    >>> info["segment"], info["center_nm"], info["ions_selected"]
    ([0, 5], [2.0, 0.0], 3)
    >>> part, _ = liprobe.select(run, "box:-1:10:-1:1:-3.5:0")   # z from -3.5 to 0 nm
    >>> part.n_ions
    4
    >>> liprobe.select(run, "sphere:1@50,0,0")                   # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    liprobe.errors.AnalysisError: ROI sphere:1@50,0,0 contains no ions (it lies outside ...)
    """
    info: dict = {}
    if isinstance(segment, str):
        segment = parse_segment(segment)
    if segment is not None:
        start, stop, _ = segment.indices(run.n_ions)
        if stop <= start:
            raise AnalysisError(f"segment {segment.start}:{segment.stop} holds no ions "
                                f"(the run has {run.n_ions})", run.path)
        run = run.select(slice(start, stop))
        info["segment"] = [start, stop]
    if isinstance(roi, str):
        roi = parse_roi(roi)
    if roi is not None:
        for c in ("x", "y", "z"):
            if c not in run:
                raise AnalysisError(f"ROI {roi.spec} needs reconstructed positions; this "
                                    f"{run.format or ''} data has no '{c}' column "
                                    "(reconstruct it first)", run.path)
        d = roi.describe()
        mask = _roi_mask(run, roi, ranges, d, chunk_ions)
        if mask.count() == 0:
            raise AnalysisError(f"ROI {roi.spec} contains no ions (it lies outside the data, "
                                "or is too small)", run.path)
        run = run.select(mask)
        d["description"] = describe_text(d)
        info.update(d)
    info["ions_selected"] = run.n_ions
    return run, info
