"""Interactive figures (plotly) of one run or of a few runs, and their HTML.

Each function returns a :class:`plotly.graph_objects.Figure` built from numbers
liprobe computes (no plotting JavaScript of liprobe's own); :func:`figure_html`
turns a figure into an HTML ``<div>`` that does not load plotly.js, and
:func:`plotly_script` gives the one ``<script>`` that embeds plotly.js, inline
(no CDN, no network), so that a page holding many figures carries the library
once.

Every trace's hover text names the run it shows (its label: the file's stem
unless one is given), so that a reader (or a browser test) hovering a point
sees which run it belongs to.

The data stay compact: a spectrum is its counts per bin alone (the bins are
uniform, so ``x0`` and ``dx`` give the mass axis; counts as 16- or 32-bit
integers), positions are float32, and plotly stores arrays in the page as
base64 typed arrays (about 18 bytes per ion of an atom map).
"""

from __future__ import annotations

import hashlib
import html
import os
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import AnalysisError
from ..rangetable import RangeTable
from ..run import Run

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from ..spectrum.histogram import MassHistogram

__all__ = ["run_label", "spectrum_figure", "overlay_figure", "scatter_figure",
           "composition_figure", "atom_map_figure", "detector_figure", "has_detector",
           "sample_indices",
           "figure_html", "plotly_script", "PLOTLY_CONFIG"]

#: The plotly.js config of every figure: no plotly logo,
#: the figure follows its container's width, PNG export at twice the resolution.
PLOTLY_CONFIG: dict = {"displaylogo": False, "responsive": True,
                       "toImageButtonOptions": {"format": "png", "scale": 2}}

#: Colour of a trace when the range file gives none.
_GREY = "#888888"


def run_label(run: Run | None, label: str | None = None) -> str:
    """The name a run goes by in figures: ``label`` if given, else its file's stem
    (``Si_first100000`` for ``.../Si_first100000.epos``), else ``"run"``."""
    if label:
        return str(label)
    path = run.path if run is not None else None
    if path:
        return os.path.splitext(os.path.basename(path))[0]
    return "run"


def _esc(text: str) -> str:
    """``text`` safe inside a plotly hover template (HTML-escaped, no ``%{`` fields)."""
    return html.escape(str(text)).replace("%{", "%&#123;")


# -- mass spectra -------------------------------------------------------------------------

def _mass_top(run: Run) -> float:
    """The largest mass of ``run`` in Da (read a chunk at a time), 0 for no ions."""
    top = 0.0
    for _s, m in run.chunks("mass"):
        if len(m):
            top = max(top, float(np.nanmax(m)))
    return top


def _histogram(item, bin_da: float, mass_range) -> MassHistogram:
    """The mass histogram of a Run (read in chunks), an array of masses (Da) or a
    :class:`~liprobe.spectrum.histogram.MassHistogram` (returned as it is)."""
    from ..spectrum.histogram import MassHistogram, mass_histogram

    if isinstance(item, MassHistogram):
        return item
    return mass_histogram(item, bin_da, mass_range)


def _default_range(items: Sequence, bin_da: float, mass_range) -> tuple[float, float]:
    """``mass_range`` if given, else 0 Da to just above the largest mass of the runs (at
    most 1000 Da), a whole number of bins."""
    if mass_range is not None:
        return float(mass_range[0]), float(mass_range[1])
    top = 0.0
    for it in items:
        if isinstance(it, Run):
            top = max(top, _mass_top(it))
        elif isinstance(it, np.ndarray) and it.size:
            top = max(top, float(np.nanmax(it)))
    top = min(max(top, 1.0), 1000.0)
    n = int(np.floor(top / bin_da)) + 1
    return 0.0, n * bin_da


def _counts_array(counts: np.ndarray) -> np.ndarray:
    """Counts per bin in the smallest unsigned integer type that holds them."""
    top = int(counts.max(initial=0))
    return counts.astype(np.uint16 if top < 1 << 16 else np.uint32 if top < 1 << 32
                         else np.float64)


def _range_traces(ranges: RangeTable, y_lo: float, y_hi: float, who: str) -> list:
    """One filled rectangle per range window, from ``y_lo`` to ``y_hi`` (the y axis' units),
    in the window's colour, named on hover by its ion and window (lo-hi Da)."""
    import plotly.graph_objects as go

    out = []
    seen: set[str] = set()
    for r in ranges.ranges:
        ion = r.ion.name
        text = f"{ion}: {r.lo:.3f}-{r.hi:.3f} Da ({html.escape(who)})"
        # a fill's hover label is the trace's text when that is one string
        out.append(go.Scatter(
            x=[r.lo, r.lo, r.hi, r.hi, r.lo], y=[y_lo, y_hi, y_hi, y_lo, y_lo],
            mode="lines", fill="toself", fillcolor=r.color or _GREY, opacity=0.25,
            line={"width": 0}, hoveron="fills", hoverinfo="text", text=text,
            name=f"{ion} window", legendgroup=f"range {ion}", showlegend=ion not in seen))
        seen.add(ion)
    return out


def spectrum_figure(runs_or_hists, ranges: RangeTable | None = None, *,
                    labels: Sequence[str] | None = None, bin_da: float = 0.01,
                    mass_range: tuple[float, float] | None = None,
                    title: str | None = None) -> go.Figure:
    """The mass spectrum of one run or several: counts per bin (log scale) against
    mass-to-charge (Da), with the range windows shaded.

    Parameters
    ----------
    runs_or_hists : Run, ndarray, MassHistogram, or a sequence of them
        A Run is read a chunk at a time (:func:`liprobe.spectrum.mass_histogram`), never
        whole; an array holds masses in Da; a histogram is drawn as it is.
    ranges : RangeTable, optional
        Each window is a filled rectangle in its colour; hovering it gives the ion and
        its window, ``"Si+: 27.856-28.595 Da (RUN)"``.
    labels : sequence of str, optional
        The runs' names (default: each file's stem); every hover text holds it.
    bin_da : float
        Bin width in Da (0.01 by default).
    mass_range : (float, float), optional
        Da; default 0 to just above the largest mass.
    title : str, optional

    Returns
    -------
    plotly.graph_objects.Figure
        One line trace per run (``meta`` = its label): ``y`` the counts of every bin
        (empty bins 0, which a log axis leaves out), the bin centres in Da given by
        ``x0`` (the first bin's centre) and ``dx`` (the bin width); then one filled trace
        per range window.
    """
    import plotly.graph_objects as go

    items = _as_list(runs_or_hists)
    labels = _labels(items, labels)
    lo_hi = _default_range(items, bin_da, mass_range) if not all(
        _is_hist(it) for it in items) else None
    fig = go.Figure()
    top = 1.0
    for it, name in zip(items, labels):
        h = _histogram(it, bin_da, lo_hi)
        top = max(top, float(h.counts.max(initial=0)))
        w = h.bin_width
        fig.add_trace(go.Scatter(
            x0=float(h.edges[0]) + 0.5 * w, dx=w, y=_counts_array(h.counts), mode="lines",
            line={"width": 1, "shape": "hvh"}, name=name, meta=name,
            hovertemplate=f"{_esc(name)}<br>%{{x:.3f}} Da<br>%{{y:,}} counts<extra></extra>"))
    if ranges is not None and len(ranges):
        who = ", ".join(labels) if len(labels) <= 3 else f"{len(labels)} runs"
        for t in _range_traces(ranges, 0.5, 2.0 * top, who):
            fig.add_trace(t)
    width = _hist_width(items, bin_da)
    fig.update_layout(
        title=title or f"Mass spectrum: {', '.join(labels)} ({width:g} Da bins)",
        xaxis_title="mass-to-charge (Da)", yaxis_title="counts per bin",
        yaxis_type="log", hovermode="closest", template="plotly_white",
        legend={"itemsizing": "constant"}, margin={"l": 60, "r": 20, "t": 50, "b": 50})
    return fig


def _is_hist(it) -> bool:
    from ..spectrum.histogram import MassHistogram

    return isinstance(it, MassHistogram)


def _hist_width(items: Sequence, bin_da: float) -> float:
    for it in items:
        if _is_hist(it):
            return float(it.bin_width)
    return float(bin_da)


def _as_list(x) -> list:
    """A single run, array or histogram as a one-item list; a sequence as a list."""
    if isinstance(x, (Run, np.ndarray)) or _is_hist(x):
        return [x]
    return list(x)


def _labels(items: Sequence, labels: Sequence[str] | None) -> list[str]:
    if labels is not None:
        if len(labels) != len(items):
            raise ValueError(f"{len(labels)} labels for {len(items)} runs")
        return [str(s) for s in labels]
    out = []
    for k, it in enumerate(items):
        out.append(run_label(it) if isinstance(it, Run) else f"run {k + 1}")
    return out


def overlay_figure(run_a, run_b, ranges: RangeTable | None = None, *,
                   labels: Sequence[str] | None = None, bin_da: float = 0.01,
                   mass_range: tuple[float, float] | None = None,
                   title: str | None = None) -> go.Figure:
    """Two runs' spectra overlaid, each normalised by its own total in the mass window:
    the fraction of the window's ions per bin (log scale) against mass-to-charge (Da).

    Parameters
    ----------
    run_a, run_b : Run, ndarray of masses (Da) or MassHistogram
        Histograms must share their bins; runs are binned over the same window.
    ranges : RangeTable, optional
        Windows shaded as in :func:`spectrum_figure`.
    labels : (str, str), optional
        Legend names (default: the files' stems); every hover text holds its run's.
    bin_da : float
        Bin width in Da.
    mass_range : (float, float), optional
        Da; default 0 to just above the larger largest mass.
    title : str, optional

    Returns
    -------
    plotly.graph_objects.Figure
        Two line traces (``meta`` = label): ``y`` (float32) each bin's counts over the
        total counts in the window, so that each trace's ``y`` sums to 1, the bin centres
        in Da given by ``x0`` and ``dx`` as in :func:`spectrum_figure`.

    Raises
    ------
    AnalysisError
        A run without ions in the window (nothing to normalise by).
    """
    import plotly.graph_objects as go

    items = [run_a, run_b]
    names = _labels(items, labels)
    lo_hi = _default_range(items, bin_da, mass_range) if not all(
        _is_hist(it) for it in items) else None
    hists = [_histogram(it, bin_da, lo_hi) for it in items]
    if len(hists[0].edges) != len(hists[1].edges) or not np.allclose(hists[0].edges,
                                                                      hists[1].edges):
        raise ValueError("the two histograms do not share their bins")
    fig = go.Figure()
    top, low = 0.0, 1.0
    for h, name, item in zip(hists, names, items):
        total = int(h.counts.sum())
        if total == 0:
            path = item.path if isinstance(item, Run) else None
            raise AnalysisError(f"{name}: no ions between {h.edges[0]:g} and {h.edges[-1]:g} "
                                "Da to normalise by", path)
        frac = (h.counts / total).astype(np.float32)
        top = max(top, float(frac.max()))
        low = min(low, float(frac[frac > 0].min()))
        w = h.bin_width
        fig.add_trace(go.Scatter(
            x0=float(h.edges[0]) + 0.5 * w, dx=w, y=frac, mode="lines",
            line={"width": 1, "shape": "hvh"}, name=name, meta=name,
            hovertemplate=f"{_esc(name)}<br>%{{x:.3f}} Da<br>%{{y:.3g}} of the ions"
                          "<extra></extra>"))
    if ranges is not None and len(ranges):
        for t in _range_traces(ranges, 0.5 * low, 2.0 * top, " vs ".join(names)):
            fig.add_trace(t)
    fig.update_layout(
        title=title or f"Normalised spectra: {names[0]} and {names[1]}",
        xaxis_title="mass-to-charge (Da)", yaxis_title="fraction of the window's ions per bin",
        yaxis_type="log", hovermode="closest", template="plotly_white",
        margin={"l": 60, "r": 20, "t": 50, "b": 50})
    return fig


# -- one number per run --------------------------------------------------------------------

def _rows_columns(rows, cols: Iterable[str]) -> dict[str, list]:
    """The columns ``cols`` of ``rows`` (a pandas DataFrame, a mapping of columns, or an
    iterable of mappings) as lists."""
    cols = list(cols)
    if hasattr(rows, "to_dict") and hasattr(rows, "columns"):       # a DataFrame
        return {c: list(rows[c]) for c in cols}
    if isinstance(rows, dict):
        return {c: list(rows[c]) for c in cols}
    rows = list(rows)
    return {c: [r[c] for r in rows] for c in cols}


def scatter_figure(rows, x: str, y: str, yerr: str | None = None, name_col: str = "name", *,
                   xerr: str | None = None, title: str | None = None,
                   x_title: str | None = None, y_title: str | None = None) -> go.Figure:
    """One point per run: column ``y`` against column ``x`` (e.g. a ratio against a field
    proxy), with 1-sigma error bars when ``yerr`` (``xerr``) names a column of errors.

    Parameters
    ----------
    rows : pandas.DataFrame, mapping of column lists, or iterable of mappings
    x, y : str
        Column names; the axis titles unless ``x_title``/``y_title`` say otherwise (give
        the units there).
    yerr, xerr : str, optional
        Columns of one-standard-deviation errors, in the units of ``y`` (``x``).
    name_col : str
        The column naming each run: every point's hover text starts with it.
    title, x_title, y_title : str, optional

    Returns
    -------
    plotly.graph_objects.Figure
        One marker trace; ``text`` holds the runs' names. Rows where ``x`` or ``y`` is
        missing (None, NaN) are left out.
    """
    import plotly.graph_objects as go

    cols = [x, y, name_col] + [c for c in (yerr, xerr) if c]
    data = _rows_columns(rows, cols)
    xv = np.array([np.nan if v is None else v for v in data[x]], dtype=np.float64)
    yv = np.array([np.nan if v is None else v for v in data[y]], dtype=np.float64)
    ok = np.isfinite(xv) & np.isfinite(yv)
    names = [str(n) for n, k in zip(data[name_col], ok) if k]
    kw: dict[str, Any] = {}
    for key, col in (("error_y", yerr), ("error_x", xerr)):
        if col:
            e = np.array([np.nan if v is None else v for v in data[col]], np.float64)[ok]
            kw[key] = {"type": "data", "array": np.where(np.isfinite(e), e, 0.0),
                       "visible": True, "thickness": 1}
    fig = go.Figure(go.Scatter(
        x=xv[ok], y=yv[ok], mode="markers", text=[_esc(n) for n in names],
        marker={"size": 8}, name=y, showlegend=False,
        hovertemplate=f"%{{text}}<br>{_esc(x)}: %{{x:.4g}}<br>{_esc(y)}: %{{y:.4g}}"
                      "<extra></extra>", **kw))
    fig.update_layout(title=title or f"{y} against {x}", xaxis_title=x_title or x,
                      yaxis_title=y_title or y, hovermode="closest", template="plotly_white",
                      margin={"l": 60, "r": 20, "t": 50, "b": 50})
    return fig


def composition_figure(comp, *, label: str = "run", title: str | None = None) -> go.Figure:
    """The atomic percent of each element (bars) with its one-sigma counting error (error
    bars) of a :class:`liprobe.composition.Composition`.

    Parameters
    ----------
    comp : Composition
    label : str
        The run's name, in every bar's hover text.
    title : str, optional

    Returns
    -------
    plotly.graph_objects.Figure
        One bar trace: ``x`` the elements, ``y`` at.%, ``error_y`` the errors (at.%),
        ``customdata`` the atom counts. Elements without a percentage are left out.
    """
    import plotly.graph_objects as go

    els = [el for el in comp.atom_counts if el in comp.atomic_percent
           and np.isfinite(comp.atomic_percent[el])]
    pct = np.array([comp.atomic_percent[el] for el in els], np.float64)
    err = np.array([comp.atomic_percent_error.get(el, np.nan) for el in els], np.float64)
    atoms = np.array([int(comp.atom_counts[el]) for el in els], np.int64)
    fig = go.Figure(go.Bar(
        x=els, y=pct, customdata=atoms, name=label, meta=label,
        error_y={"type": "data", "array": np.where(np.isfinite(err), err, 0.0),
                 "visible": True},
        hovertemplate=f"{_esc(label)}<br>%{{x}}: %{{y:.4g}} at.%<br>%{{customdata:,}} atoms"
                      "<extra></extra>"))
    fig.update_layout(title=title or f"Composition: {label}", xaxis_title="element",
                      yaxis_title="at.% (error bars: 1 sigma)", template="plotly_white",
                      margin={"l": 60, "r": 20, "t": 50, "b": 50})
    return fig


# -- the atom map --------------------------------------------------------------------------

def sample_indices(n_ions: int, max_ions: int, seed: int = 0) -> np.ndarray:
    """Indices (int64, increasing) of at most ``max_ions`` of ``n_ions`` ions: all of them
    when there are no more, else a seeded draw without replacement."""
    if max_ions < 1:
        raise ValueError(f"max_ions must be at least 1, got {max_ions}")
    if n_ions <= max_ions:
        return np.arange(n_ions, dtype=np.int64)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n_ions, size=max_ions, replace=False)).astype(np.int64)


def _circle(cx: float, cy: float, r: float, z: float, n: int = 72):
    t = np.linspace(0.0, 2 * np.pi, n + 1)
    return cx + r * np.cos(t), cy + r * np.sin(t), np.full(n + 1, z)


def _roi_lines(d: dict, zlim: tuple[float, float]) -> tuple[list, str] | None:
    """x, y, z (nm, with None between segments) of the outline of a ROI described by
    ``d`` (:func:`liprobe.spatial.roi.select`'s description), and its description; None
    for a ROI that has no simple outline (``core``)."""
    kind = d.get("kind")
    xs: list = []
    ys: list = []
    zs: list = []

    def seg(a, b, c):
        xs.extend(list(np.round(a, 3)) + [None])
        ys.extend(list(np.round(b, 3)) + [None])
        zs.extend(list(np.round(c, 3)) + [None])

    if kind == "cylinder":
        cx, cy = (float(v) for v in d["center_nm"][:2])
        r = 0.5 * float(d["diameter_nm"])
        if d.get("length_nm") is not None and d.get("z_center_nm") is not None:
            z0 = float(d["z_center_nm"]) - 0.5 * float(d["length_nm"])
            z1 = z0 + float(d["length_nm"])
        else:
            z0, z1 = zlim
        for z in (z0, z1):
            seg(*_circle(cx, cy, r, z))
        for a in np.arange(4) * np.pi / 2:
            seg([cx + r * np.cos(a)] * 2, [cy + r * np.sin(a)] * 2, [z0, z1])
    elif kind == "sphere":
        cx, cy, cz = (float(v) for v in d["center_nm"])
        r = 0.5 * float(d["diameter_nm"])
        t = np.linspace(0.0, 2 * np.pi, 73)
        c, s = r * np.cos(t), r * np.sin(t)
        seg(cx + c, cy + s, np.full_like(t, cz))
        seg(cx + c, np.full_like(t, cy), cz + s)
        seg(np.full_like(t, cx), cy + c, cz + s)
    elif kind == "box":
        x0, x1, y0, y1, z0, z1 = (float(v) for v in d["bounds_nm"])
        for z in (z0, z1):
            seg([x0, x1, x1, x0, x0], [y0, y0, y1, y1, y0], [z] * 5)
        for x, y in ((x0, y0), (x1, y0), (x1, y1), (x0, y1)):
            seg([x, x], [y, y], [z0, z1])
    else:
        return None
    from ..spatial.roi import describe_text

    return [xs, ys, zs], describe_text(d)


def _ion_colors(ranges: RangeTable) -> dict[str, str]:
    """Each ion's colour: that of its first window in the range file (grey if none)."""
    out: dict[str, str] = {}
    for r in ranges.ranges:
        out.setdefault(r.ion.name, r.color or _GREY)
    return out


def atom_map_figure(run: Run, ranges: RangeTable, max_ions: int = 100_000, seed: int = 0,
                    roi=None, *, label: str | None = None, marker_size: float = 1.5,
                    by: str = "ion", title: str | None = None) -> go.Figure:
    """A rotatable 3-D atom map (x, y, z in nm) of a seeded subsample of ``run``, one trace
    per species, with a region of interest drawn when given.

    Only the sampled ions are read (``run.select`` of their indices reads them from the
    file a chunk at a time); unranged ions are left out (their number is in
    ``fig.layout.meta``).

    Parameters
    ----------
    run : Run
        Needs ``x``, ``y``, ``z`` (nm) and ``mass`` (Da).
    ranges : RangeTable
    max_ions : int
        Most ions drawn (sampled with :func:`sample_indices`, ``seed``); about 1e5 keeps a
        page light and a browser fluent.
    seed : int
    roi : dict, Roi or str, optional
        The ROI to outline: a description from :func:`liprobe.spatial.roi.select` (it
        holds a cylinder's axis, ``center_nm``), or a spec / :class:`Roi`, which is then
        selected on ``run`` to find its axis (one more pass over x, y). A cylinder
        without a length spans the drawn ions' z range. A ``core`` ROI has no outline.
    label : str, optional
        The run's name (default: the file's stem): in every trace's hover text.
    marker_size : float
        Marker diameter in pixels.
    by : "ion" or "element"
        One trace per ion (``Si+``, ``Si++``) or per element of its first atom.
    title : str, optional

    Returns
    -------
    plotly.graph_objects.Figure
        One ``scatter3d`` trace per species (``name`` the species, ``meta`` the run's
        label; float32 x, y, z in nm), then the ROI's outline (a ``lines`` trace named
        ``ROI: ...``). ``fig.layout.meta`` holds ``ions_total``, ``ions_sampled``,
        ``ions_drawn``, ``unranged_left_out``, ``seed`` and ``roi``.
    """
    import plotly.graph_objects as go

    from ..ranging import assign

    if by not in ("ion", "element"):
        raise ValueError(f"by must be 'ion' or 'element', not {by!r}")
    for c in ("x", "y", "z", "mass"):
        run.source(c)                                   # ColumnError naming what it has
    name = run_label(run, label)
    idx = sample_indices(run.n_ions, max_ions, seed)
    sub = run.select(idx) if len(idx) < run.n_ions else run
    x = np.asarray(sub["x"], np.float32)
    y = np.asarray(sub["y"], np.float32)
    z = np.asarray(sub["z"], np.float32)
    labels, _ = assign(sub["mass"], ranges)
    ion_of = np.where(labels >= 0, ranges.ion_index[np.maximum(labels, 0)], -1) \
        if len(ranges) else np.full(len(labels), -1)
    ions = ranges.ions
    colors = _ion_colors(ranges)
    if by == "element":
        keys = [ion.atoms[0][0] if ion.atoms else ion.name for ion in ions]
    else:
        keys = [ion.name for ion in ions]
    species = list(dict.fromkeys(keys))
    key_of_ion = np.array([species.index(k) for k in keys], np.int64)
    sp = np.where(ion_of >= 0, key_of_ion[np.maximum(ion_of, 0)] if len(keys) else -1, -1)
    fig = go.Figure()
    who = _esc(name)
    drawn = 0
    for k, s in enumerate(species):
        pick = np.flatnonzero(sp == k)
        if len(pick) == 0:
            continue
        drawn += len(pick)
        color = colors.get(ions[keys.index(s)].name, _GREY)
        fig.add_trace(go.Scatter3d(
            x=x[pick], y=y[pick], z=z[pick], mode="markers", name=f"{s} ({len(pick):,})",
            meta=name, marker={"size": marker_size, "color": color, "opacity": 0.8},
            hovertemplate=f"{_esc(s)} ({who})<br>x %{{x:.2f}} nm<br>y %{{y:.2f}} nm"
                          "<br>z %{z:.2f} nm<extra></extra>"))
    roi_d = None
    if roi is not None:
        roi_d = roi if isinstance(roi, dict) else _select_roi(run, roi, ranges)
        zlim = (float(z.min()), float(z.max())) if len(z) else (0.0, 0.0)
        outline = _roi_lines(roi_d, zlim)
        if outline is not None:
            (lx, ly, lz), text = outline
            fig.add_trace(go.Scatter3d(
                x=lx, y=ly, z=lz, mode="lines", name=f"ROI: {text}", meta=name,
                line={"color": "black", "width": 4},
                hovertemplate=f"ROI: {_esc(text)} ({who})<extra></extra>"))
    meta = {"run": name, "ions_total": int(run.n_ions), "ions_sampled": int(len(idx)),
            "ions_drawn": int(drawn), "unranged_left_out": int(np.sum(sp < 0)),
            "seed": int(seed), "roi": None if roi_d is None else roi_d.get("description")}
    fig.update_layout(
        title=title or (f"Atom map: {name}, {drawn:,} of {run.n_ions:,} ions "
                        f"(unranged left out)"),
        meta=meta, template="plotly_white", legend={"itemsizing": "constant"},
        scene={"xaxis_title": "x (nm)", "yaxis_title": "y (nm)", "zaxis_title": "z (nm)",
               "aspectmode": "data"},
        margin={"l": 0, "r": 0, "t": 50, "b": 0})
    return fig


def _select_roi(run: Run, roi, ranges: RangeTable) -> dict:
    from ..spatial.roi import select

    return select(run, roi, None, ranges)[1]


# -- the detector map ----------------------------------------------------------------------

def has_detector(run: Run) -> bool:
    """Whether ``run`` holds detector hit positions (``det_x``, ``det_y``; a ``.pos`` does
    not)."""
    return "det_x" in run and "det_y" in run


def detector_figure(run: Run, *, bins: int = 100, label: str | None = None,
                    title: str | None = None) -> go.Figure:
    """The detector hit map of ``run``: hits per bin over det_x, det_y (mm), as a heatmap.

    The histogram is :func:`liprobe.spatial.detector.detector_map`'s (computed a chunk at a
    time): ``bins x bins`` square bins over the square holding every hit, centred on the
    detector's centre.

    Parameters
    ----------
    run : Run
        Needs ``det_x`` and ``det_y`` (mm).
    bins : int
        Bins across the map, each way.
    label : str, optional
        The run's name (default: the file's stem), in the hover text.
    title : str, optional

    Returns
    -------
    plotly.graph_objects.Figure
        One heatmap: ``x``, ``y`` the bin centres (mm), ``z[iy, ix]`` the hits per bin.

    Raises
    ------
    AnalysisError
        The run has no detector columns (a ``.pos`` file), saying so.
    """
    import plotly.graph_objects as go

    from ..spatial.detector import detector_map

    if not has_detector(run):
        have = ", ".join(run.columns) or "none"
        raise AnalysisError(f"no detector map: this {run.format or ''} data has no det_x, "
                            f"det_y columns (it has: {have})", run.path)
    name = run_label(run, label)
    dm = detector_map(run, bins=bins)
    x0, x1, y0, y1 = (float(v) for v in dm.extent_mm)
    w = (x1 - x0) / bins
    cx = x0 + w * (np.arange(bins) + 0.5)
    cy = y0 + (y1 - y0) / bins * (np.arange(bins) + 0.5)
    counts = dm.counts
    z = counts.astype(np.uint16) if counts.max(initial=0) < 65535 else counts.astype(np.int32)
    fig = go.Figure(go.Heatmap(
        x=cx, y=cy, z=z, colorscale="Viridis", colorbar={"title": "hits per bin"},
        meta=name, name=name,
        hovertemplate=f"{_esc(name)}<br>det_x %{{x:.2f}} mm<br>det_y %{{y:.2f}} mm"
                      "<br>%{z} hits<extra></extra>"))
    fig.update_layout(
        title=title or f"Detector hits: {name}, {dm.n_ions:,} ions ({w:.2f} mm bins)",
        xaxis_title="det_x (mm)", yaxis_title="det_y (mm)", template="plotly_white",
        yaxis={"scaleanchor": "x", "scaleratio": 1}, margin={"l": 60, "r": 20, "t": 50, "b": 50})
    return fig


# -- HTML ----------------------------------------------------------------------------------

def figure_html(fig: go.Figure, div_id: str | None = None) -> str:
    """The HTML ``<div>`` (with its inline ``Plotly.newPlot`` call) of ``fig``, without
    plotly.js: put :func:`plotly_script` once before the first figure.

    ``div_id`` is the div's id; by default one derived from the figure's content
    (``liprobe-fig-`` and 12 hex digits), so that the same figure gives the same HTML.
    """
    import plotly.io as pio

    if div_id is None:
        digest = hashlib.sha1(fig.to_json().encode("utf-8")).hexdigest()[:12]
        div_id = f"liprobe-fig-{digest}"
    return pio.to_html(fig, full_html=False, include_plotlyjs=False, div_id=div_id,
                       config=PLOTLY_CONFIG, validate=False)


def plotly_script() -> str:
    """The ``<script>`` tag that embeds plotly.js (the version the installed plotly
    package ships), inline: no ``src``, no CDN, no network."""
    from plotly.offline import get_plotlyjs

    js = get_plotlyjs()
    if "</script" in js.lower():          # would end the tag early; never seen in plotly.js
        raise RuntimeError("plotly.js holds '</script': it cannot be inlined")
    return f'<script type="text/javascript" charset="utf-8">{js}</script>'
