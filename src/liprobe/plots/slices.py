"""Atom maps: a slab of the reconstruction seen face on, each ion in its range colour.

Figure 3 of Singh et al. (arXiv:2309.07842, 2023): an XY slice across the
tip, where the Cr coating fills the periphery, and an XZ slice along it. The
slab is ``|n - at| <= thickness / 2`` along the plane's normal ``n`` (z for
``xy``, y for ``xz``, x for ``yz``), ``at`` by default the median of the ions
along ``n``. Ions are drawn in their range file's colour (``Range.color``),
else in a default palette; only ranged ions are drawn.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import AnalysisError
from ..rangetable import RangeTable
from ..run import DEFAULT_CHUNK_IONS, Run

__all__ = ["PLANES", "AtomSlice", "slice_ions", "ion_colors", "plot_slice"]

#: plane -> (horizontal axis, vertical axis, normal)
PLANES = {"xy": ("x", "y", "z"), "xz": ("x", "z", "y"), "yz": ("y", "z", "x")}

#: colours for ions the range file gives none (matplotlib's tab10)
DEFAULT_PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
                   "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")


def ion_colors(table: RangeTable) -> list[str]:
    """One ``#RRGGBB`` colour per ion of ``table``: its first window's colour, else the palette."""
    out = []
    k = 0
    for ion in table.ions:
        c = next((r.color for r in table.ranges if r.ion == ion and r.color), None)
        if c is None:
            c = DEFAULT_PALETTE[k % len(DEFAULT_PALETTE)]
            k += 1
        out.append(c)
    return out


@dataclass(frozen=True)
class AtomSlice:
    """The ions of one slab, ready to draw; positions in nm.

    ``u``, ``v`` are the in-plane coordinates of the ions shown, ``ion`` their
    index into ``names``/``colors``; ``counts`` are the ions of each species
    in the slab (before any thinning to ``max_points``).
    """

    plane: str
    at_nm: float
    thickness_nm: float
    u: np.ndarray
    v: np.ndarray
    ion: np.ndarray
    names: tuple
    colors: tuple
    counts: tuple
    ions_in_slab: int
    seed: int = 0

    @property
    def axes(self) -> tuple:
        return PLANES[self.plane]

    @property
    def shown(self) -> int:
        return len(self.u)

    def to_dict(self) -> dict:
        h, v, n = self.axes
        return {
            "plane": self.plane, "normal": n, "at_nm": self.at_nm,
            "thickness_nm": self.thickness_nm,
            "ions_in_slab": self.ions_in_slab, "ions_shown": self.shown,
            "species": {name: int(c) for name, c in zip(self.names, self.counts)},
            "colors": dict(zip(self.names, self.colors)),
        }


def slice_ions(run: Run, ranges: RangeTable, plane: str = "xy", at_nm: float | None = None,
               thickness_nm: float = 5.0, species=None, max_points: int = 500_000,
               seed: int = 0, chunk_ions: int = DEFAULT_CHUNK_IONS) -> AtomSlice:
    """The ranged ions of a slab, with their colours.

    Parameters
    ----------
    run : Run
        Needs ``x y z`` (nm) and ``mass``.
    ranges : RangeTable
    plane : {"xy", "xz", "yz"}
    at_nm : float, optional
        Position of the slab along the normal (default: median of the ions).
    thickness_nm : float
    species : iterable of str, optional
        Ions (``Li+``) or elements (``Cr``: every ion carrying it) to show;
        default every ranged ion.
    max_points : int
        At most this many ions are kept for drawing (seeded random choice);
        ``counts`` still give the whole slab.
    seed : int
    chunk_ions : int
        Ions read at a time (two passes: the slab's counts, then the ions
        drawn), so that memory stays bounded by a chunk and ``max_points``.

    Raises
    ------
    ColumnError
        A missing column.
    AnalysisError
        No ion of the chosen species in the slab (or a slab outside the data).
    """
    from ..ranging import assign
    from ..spatial.detector import species_windows

    if plane not in PLANES:
        raise ValueError(f"plane must be one of {', '.join(PLANES)}, not '{plane}'")
    if not thickness_nm > 0:
        raise ValueError("thickness must be positive")
    hname, vname, nname = PLANES[plane]
    for c in (hname, vname, nname, "mass"):
        run.source(c)
    if run.n_ions == 0:
        raise AnalysisError("no ions to slice", run.path)
    from ..spatial.roi import column_median

    at = column_median(run, nname, chunk_ions) if at_nm is None else float(at_nm)
    show_win = np.ones(len(ranges), bool)
    if species:
        show_win = np.zeros(len(ranges), bool)
        for sp in species:
            show_win |= species_windows(ranges, sp)

    def kept():
        """(start, indices in the chunk of the slab's shown ions, their ion kinds)."""
        for (start, nv), (_s, mass) in zip(run.chunks(nname, chunk_ions),
                                           run.chunks("mass", chunk_ions)):
            i = np.flatnonzero(np.abs(nv.astype(np.float64) - at) <= 0.5 * thickness_nm)
            labels, _ = assign(mass[i], ranges)
            ok = labels >= 0
            ok[ok] = show_win[labels[ok]]
            yield start, i, ok, labels

    # pass 1: the counts of the whole slab (bounded: one chunk at a time)
    counts = np.zeros(len(ranges.ions), np.int64)
    in_slab = 0
    lo, hi = np.inf, -np.inf
    for (_start, i, ok, labels), (_s, nv) in zip(kept(), run.chunks(nname, chunk_ions)):
        in_slab += len(i)
        if len(nv):
            lo, hi = min(lo, float(nv.min())), max(hi, float(nv.max()))
        counts += np.bincount(ranges.ion_index[labels[ok]], minlength=len(ranges.ions))
    if in_slab == 0:
        raise AnalysisError(f"the {plane} slab at {nname} = {at:g} nm, {thickness_nm:g} nm thick, "
                            f"holds no ions ({nname} of the data spans {lo:g} to {hi:g} nm)",
                            run.path)
    total = int(counts.sum())
    if total == 0:
        what = ", ".join(species) if species else "ranged ions"
        raise AnalysisError(f"no {what} in the {plane} slab at {nname} = {at:g} nm "
                            f"({thickness_nm:g} nm thick)", run.path)
    present = np.flatnonzero(counts)
    remap = np.full(len(ranges.ions), -1, np.int64)
    remap[present] = np.arange(len(present))
    colors = ion_colors(ranges)
    # pass 2: the ions drawn (a seeded choice among the slab's shown ions, in order)
    pick = (np.sort(np.random.default_rng(seed).choice(total, size=max_points, replace=False))
            if total > max_points else None)
    idx_parts, ion_parts = [], []
    rank = 0
    for start, i, ok, labels in kept():
        gi, ion = start + i[ok], ranges.ion_index[labels[ok]]
        if pick is not None:
            a, b = np.searchsorted(pick, [rank, rank + len(gi)])
            take = pick[a:b] - rank
            gi, ion = gi[take], ion[take]
        rank += int(ok.sum())
        idx_parts.append(gi)
        ion_parts.append(ion)
    idx, ion = np.concatenate(idx_parts), np.concatenate(ion_parts)
    return AtomSlice(
        plane=plane, at_nm=at, thickness_nm=float(thickness_nm),
        u=np.asarray(run.source(hname)[idx], np.float64),
        v=np.asarray(run.source(vname)[idx], np.float64),
        ion=remap[ion], names=tuple(ranges.ions[i].name for i in present),
        colors=tuple(colors[i] for i in present), counts=tuple(int(counts[i]) for i in present),
        ions_in_slab=int(total), seed=seed)


def plot_slice(s: AtomSlice, path, title: str | None = None, dpi: int = 200) -> str:
    """Draw an :class:`AtomSlice` (equal aspect, nm axes, legend) to PNG or SVG at ``path``."""
    from . import figure_format, new_figure, save_figure

    figure_format(path)               # a bad extension fails before any drawing
    hname, vname, nname = s.axes
    du = float(np.ptp(s.u)) or 1.0
    dv = float(np.ptp(s.v)) or 1.0
    width = 7.0
    height = min(max(width * dv / du, 2.5), 14.0)
    fig = new_figure(figsize=(width + 1.8, height))
    ax = fig.add_subplot(1, 1, 1)
    size = float(np.clip(3e4 / max(s.shown, 1), 0.3, 12.0))
    order = np.argsort([-c for c in s.counts], kind="stable")   # rare species drawn last, on top
    for k in order:
        sel = s.ion == k
        if not sel.any():
            continue
        ax.scatter(s.u[sel], s.v[sel], s=size, c=s.colors[k], marker=".", linewidths=0,
                   label=f"{s.names[k]} ({s.counts[k]:,})", rasterized=True)
    ax.set_aspect("equal")
    ax.set_xlabel(f"{hname} (nm)")
    ax.set_ylabel(f"{vname} (nm)")
    thin = "" if s.shown == s.ions_in_slab else f", {s.shown:,} of {s.ions_in_slab:,} ions shown"
    ax.set_title(title or f"{s.plane} slice at {nname} = {s.at_nm:.1f} nm, "
                          f"{s.thickness_nm:g} nm thick{thin}", fontsize=9)
    leg = ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8, markerscale=1.0,
                    frameon=False)
    for h in leg.legend_handles:
        h.set_sizes([40.0])
        h.set_alpha(1.0)
    return save_figure(fig, path, dpi=dpi)
