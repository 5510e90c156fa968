"""The study's figures, drawn from its table (and, for maps and spectra, its runs).

Each figure is a function ``figure_x(table, out_dir, runs=None, params=None,
materials=None) -> list of paths`` writing ``out_dir/<name>.png`` and
``.svg`` atomically (:func:`liprobe.plots.save_figure`). ``table`` is the
study's table (``runs.parquet``); ``runs`` a :class:`~liprobe.report.sources.RunFiles`
for the figures that show ions; ``params`` the study's
:class:`~liprobe.study.manifest.StudyParams`; ``materials`` phase name ->
formula (expected values). A figure that the study cannot support (no
uncoated run, no charge-state ratio computed...) raises
:class:`FigureSkipped` with the reason, which the report shows.

Numbers plotted are the table's; a figure recomputes only what the table
cannot hold (hit maps, atom maps, spectra, block histograms, a depth
profile), with the same functions and parameters as the study, so that a
mu in a legend is the mu of the table. The paper's figures follow Singh et al.,
arXiv:2309.07842 (2023), figure by figure; :func:`spectra`, :func:`compositions`,
:func:`maps` and :func:`profiles` serve any study. Which a study gets depends on what
its table holds (:meth:`FigureSpec.why_not`, :data:`FIGURES`): coated and uncoated runs
give the coating comparisons, a laser-energy series the field-proxy plots, several
coated particles the particle spread, a study without a coating comparison each run's
spectrum, maps and profile. Titles carry the paper's numbers only with
``numbering="paper"`` (:func:`numbered`). Every text is at least 8 pt at the report's
width (:func:`_min_font`) and legends sit outside the data (:func:`_legend`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..errors import LiprobeError
from .groups import StudyGroups, flag_set, number, plain_records
from .numbers import value_error

__all__ = ["FigureSkipped", "FigureSpec", "FIGURES", "figure_1", "figure_3", "figure_4",
           "spectra", "compositions", "maps", "profiles", "numbered",
           "figure_5", "figure_6", "figure_7", "supplementary_figure_3", "field_by_laser",
           "field_collapse",
           "voltage_histories",
           "yield_by_coating", "mrp_by_coating", "supplementary_table_1"]

#: Colours of the study's parts (matplotlib's tab10).
COATED, UNCOATED, OTHER, REFERENCE = "#1f77b4", "#d62728", "#9467bd", "#ff7f0e"
#: The laser energy at which the paper compares spectra and quotes O2+/O+ (pJ).
COMPARE_PJ = 5.0
#: Ions drawn per atom-map panel at most (seeded choice; counts are of the whole slab).
MAX_POINTS = 25_000


class FigureSkipped(Exception):
    """The study has nothing to draw this figure from; ``str(e)`` says why."""


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------

#: The width (px) the report shows a figure at most, and the smallest font (pt) a figure's
#: text has at that width: figures wider than the page are scaled down, their fonts with them.
PAGE_PX, MIN_FONT_PT, DPI = 1380, 8.0, 120


def _min_font(fig, min_pt: float = MIN_FONT_PT, page_px: int = PAGE_PX, dpi: int = DPI
              ) -> float:
    """Make every text of ``fig`` (titles, labels, tick labels, legends, annotations) read
    at least ``min_pt`` once the figure is shown ``page_px`` wide: texts below ``min_pt``
    are raised to it, and a figure wider than the page is narrowed (its axes, not its
    text) until it fits; where narrowing would halve it, its texts grow instead. The
    font size it needed."""
    from matplotlib.text import Text

    def raise_to(size):
        for ax in fig.axes:
            for axis, which in ((ax.xaxis, "x"), (ax.yaxis, "y")):
                sizes = [t.get_fontsize() for t in axis.get_ticklabels(which="both")]
                if sizes and min(sizes) < size:
                    ax.tick_params(axis=which, which="both", labelsize=size)
        for t in fig.findobj(Text):
            if t.get_text() and t.get_fontsize() < size:
                t.set_fontsize(size)

    need = min_pt
    fig.draw_without_rendering()
    raise_to(need)
    w0 = fig.get_size_inches()[0]
    for _ in range(12):
        fig.draw_without_rendering()
        # as saved: the tight box and savefig's 0.1 inch padding on each side
        width_px = (fig.get_tightbbox().width + 0.2) * dpi
        if width_px <= page_px:
            break
        w, h = fig.get_size_inches()
        narrower = w * page_px / width_px * 0.98
        if narrower >= 0.5 * w0:
            fig.set_size_inches(narrower, h)
        else:                               # text is most of the width: larger text instead
            need = max(need, round(min_pt * width_px / page_px * 1.02, 2))
            raise_to(need)
    return need


def numbered(paper_label: str | None, text: str, numbering: str = "paper") -> str:
    """A figure's title: ``"Figure 1. text"`` under the paper's numbering, else ``text``
    (capitalised)."""
    text = text[:1].upper() + text[1:]
    return f"{paper_label}. {text}" if numbering == "paper" and paper_label else text


def _save(fig, out_dir, stem) -> list:
    """PNG and SVG of ``fig``, every text at least :data:`MIN_FONT_PT` at the page's width
    (:func:`_min_font`); the SVG keeps its text as text (searchable, editable)."""
    import matplotlib

    from ..plots import save_figure

    os.makedirs(out_dir, exist_ok=True)
    _min_font(fig)
    with matplotlib.rc_context({"svg.fonttype": "none"}):
        return [save_figure(fig, os.path.join(out_dir, f"{stem}.{ext}"), dpi=DPI)
                for ext in ("png", "svg")]


def _label(row) -> str:
    from .sources import row_label

    return row_label(row)


def _pj(v) -> str:
    v = number(v)
    return "? pJ" if v is None else f"{v:g} pJ"


def _row_title(row) -> str:
    seg = row.get("segment_name")
    pj = _pj(row.get("laser_pj"))
    seg = f" ({seg})" if isinstance(seg, str) and seg and seg != pj else ""
    return f"{_label(row)}{seg}\n{pj}"


def _values(frame, col):
    """(values, errors) of a column as float arrays (NaN where missing)."""
    if col not in frame:
        n = len(frame)
        return np.full(n, np.nan), np.full(n, np.nan)
    v = np.array([number(x) if number(x) is not None else np.nan for x in frame[col]])
    e = np.array([number(x) if number(x) is not None else np.nan
                  for x in frame[f"{col}_err"]]) if f"{col}_err" in frame else np.full(len(v),
                                                                                        np.nan)
    return v, e


def _legend(ax, where: str = "below", **kw):
    """A legend outside the axes, so that it covers no data: ``below`` the x label (several
    columns), or to the ``right``; none when nothing is labelled (no warning)."""
    handles, labels = ax.get_legend_handles_labels()
    if "handles" in kw:
        handles = kw.pop("handles")
        labels = [h.get_label() for h in handles]
    if not handles:
        return None
    kw.setdefault("frameon", False)
    kw.setdefault("fontsize", 8)
    if where == "right":
        return ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.02, 1.0),
                         borderaxespad=0.0, **kw)
    kw.setdefault("ncols", 1)               # one column: no overlap with a neighbour's
    # below the tick labels and the x label: about four font heights under the axes
    return ax.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0),
                     borderaxespad=4.2, **kw)


def _need_runs(runs):
    if runs is None:
        raise FigureSkipped("the run files are not at hand (give the manifest, or keep the "
                            "study folder's cache)")


def _rows(frame) -> list:
    return [r for _, r in frame.iterrows()]


def _first_per_laser(frame, limit=4) -> list:
    """The first row of each laser energy (ascending), at most ``limit`` of them."""
    seen, out = set(), []
    rows = sorted(_rows(frame), key=lambda r: (number(r.get("laser_pj")) is None,
                                               number(r.get("laser_pj")) or 0.0))
    for r in rows:
        k = number(r.get("laser_pj"))
        if k in seen:
            continue
        seen.add(k)
        out.append(r)
    if len(out) > limit:
        idx = np.linspace(0, len(out) - 1, limit).round().astype(int)
        out = [out[i] for i in idx]
    return out


def _has_element(ion_name: str, element: str) -> bool:
    from ..chemistry import parse_ion

    try:
        return parse_ion(ion_name).count(element) > 0
    except ValueError:
        return False


def _draw_slice(ax, s, groups) -> None:
    """Scatter an AtomSlice with ions grouped by ``groups``: [(label, colour, test(name))].

    Ions matching no group are not drawn; each group is labelled with its count.
    """
    size = float(np.clip(2e4 / max(s.shown, 1), 0.3, 6.0))
    for label, color, test in groups:
        members = [k for k, n in enumerate(s.names) if test(n)]
        if not members:
            continue
        sel = np.isin(s.ion, members)
        count = sum(s.counts[k] for k in members)
        ax.scatter(s.u[sel], s.v[sel], s=size, c=color, marker=".", linewidths=0,
                   label=f"{label} ({count:,})", rasterized=True)
    h, v, _ = s.axes
    ax.set_aspect("equal")
    ax.set_xlabel(f"{h} (nm)", fontsize=8)
    ax.set_ylabel(f"{v} (nm)", fontsize=8)
    ax.tick_params(labelsize=7)


def _slice(run, table, plane, thickness=None, species=None):
    """An AtomSlice of ``run``: the whole depth seen along z for ``xy`` (the paper's top view)."""
    from ..plots.slices import slice_ions

    if plane == "xy" and thickness is None:
        z = run["z"]
        thickness = float(z.max() - z.min()) + 1.0
        at = 0.5 * float(z.max() + z.min())
        return slice_ions(run, table, "xy", at_nm=at, thickness_nm=thickness, species=species,
                          max_points=MAX_POINTS)
    return slice_ions(run, table, plane, thickness_nm=thickness or 5.0, species=species,
                      max_points=MAX_POINTS)


def _panel_message(ax, text) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=7,
            color="0.35", wrap=True)
    ax.set_xticks([])
    ax.set_yticks([])


def _expected(expr: str, material: str | None, materials: dict | None):
    from ..study.phases import builtin_phases, ratio_of_formula

    formulas = dict(builtin_phases())
    formulas.update(materials or {})
    f = formulas.get(material) if material else None
    if f is None:
        return None
    try:
        return ratio_of_formula(expr, f)
    except ValueError:
        return None


def _fda_species(params) -> str:
    sp = tuple(getattr(getattr(params, "fda", None), "species", ()) or ())
    for s in sp:
        if _has_element(s if s.endswith("+") else s + "+", "Li"):
            return s
    return "Li+"


# --------------------------------------------------------------------------
# Figure 1: detector maps and atom maps of the uncoated runs
# --------------------------------------------------------------------------

def figure_1(table, out_dir, runs=None, params=None, materials=None,
             numbering="paper") -> list:
    """Detector event maps of the uncoated runs across laser energies, XZ and XY atom maps below.

    One column per laser energy (the first uncoated row of each, at most
    four): the hit density on the detector, then an XZ slice (5 nm thick)
    and the XY view along z of Li and Ni ions, as in Figure 1 of Singh et
    al. 2023, where Li vanishes from the maps at low laser energy and Ni at
    high. Each map's title gives the hit density's heterogeneity and the Li
    fraction's rim over its core (``li_rim_core_ratio``) from the table.
    """
    from ..spatial.detector import detector_map

    g = StudyGroups(table)
    if not len(g.uncoated):
        raise FigureSkipped("no uncoated run of the main material finished")
    _need_runs(runs)
    cols = _first_per_laser(g.uncoated, limit=4)
    cfg = getattr(params, "detector", None)
    fig = _new(figsize=(3.0 * len(cols), 9.6))
    gs = fig.add_gridspec(3, len(cols), height_ratios=[1.0, 1.25, 1.0], hspace=0.6,
                          wspace=0.35)
    groups = [("Li", "#2ca02c", lambda n: _has_element(n, "Li")),
              ("Ni", "#7f7f7f", lambda n: _has_element(n, "Ni"))]
    for j, row in enumerate(cols):
        label = _label(row)
        run, table_r = runs.load(label)
        ax = fig.add_subplot(gs[0, j])
        try:
            m = detector_map(run, table_r, bins=getattr(cfg, "bins", 128),
                             sample_size=getattr(cfg, "sample", 100_000),
                             seed=getattr(cfg, "seed", 0))
            x0, x1, y0, y1 = m.extent_mm
            ax.imshow(np.asarray(m.counts, float), origin="lower", extent=(x0, x1, y0, y1),
                      cmap="viridis", interpolation="nearest")
            ax.set_aspect("equal")
            ax.tick_params(labelsize=7)
            ax.set_xlabel("det_x (mm)", fontsize=8)
            if j == 0:
                ax.set_ylabel("det_y (mm)", fontsize=8)
        except LiprobeError as e:
            _panel_message(ax, f"no detector map: {e}")
        het = number(row.get("detector_heterogeneity"))
        rim = number(row.get("li_rim_core_ratio"))
        het_text = "" if het is None else (
            "\nheterogeneity " + value_error(het, row.get("detector_heterogeneity_err"))
            + (" (< 0: none)" if het < 0 else ""))
        rim_text = "" if rim is None else (
            "\nLi rim/core " + value_error(rim, row.get("li_rim_core_ratio_err")))
        ax.set_title(_row_title(row) + het_text + rim_text, fontsize=8)
        for i, plane in ((1, "xz"), (2, "xy")):
            ax = fig.add_subplot(gs[i, j])
            try:
                s = _slice(run, table_r, plane, species=["Li", "Ni"])
                _draw_slice(ax, s, groups)
                _legend(ax, markerscale=4, ncols=2)
            except LiprobeError as e:
                _panel_message(ax, f"{plane}: {e}")
            ax.set_title(f"{plane.upper()}" + (" slice, 5 nm" if plane == "xz"
                                               else " view along z"), fontsize=8)
    fig.suptitle(numbered("Figure 1", f"uncoated {g.main}: detector event maps (top), XZ and "
                          "XY atom maps of Li and Ni ions", numbering), fontsize=10)
    return _save(fig, out_dir, "figure_1")


def _new(**kw):
    from ..plots import new_figure

    return new_figure(**kw)


# --------------------------------------------------------------------------
# Figure 3: a coated run per laser-energy segment, and its depth profile
# --------------------------------------------------------------------------

def _figure_3_rows(g: StudyGroups) -> list:
    c = g.coated
    if "segment" in c:
        seg = c[c["segment"].notna()]
        if len(seg):
            best = max(dict.fromkeys(seg["run"]), key=lambda r: int((seg["run"] == r).sum()))
            rows = _rows(seg[seg["run"] == best])
            if len(rows) >= 2:
                return rows[:4]
    particles = g.coated_particles
    if not particles:
        return []
    return _first_per_laser(g.rows_of_particle(c, particles[0]), limit=3)


def figure_3(table, out_dir, runs=None, params=None, materials=None,
             numbering="paper") -> list:
    """XY and XZ atom maps of a coated run per laser-energy segment, and its depth profile.

    The coated run with the most segments (else the first coated particle's
    runs at up to three laser energies): for each, the XY view along z (the
    coating's ions fill the periphery) and an XZ slice of Li among the other
    ions; then the composition against depth in the row's ROI (the study's
    cylinder of 25 nm) for the lowest laser energy, 1-sigma counting errors.
    """
    from ..spatial.profile import composition_profile

    g = StudyGroups(table)
    rows = _figure_3_rows(g)
    if not rows:
        raise FigureSkipped("no coated run of the main material finished")
    _need_runs(runs)
    rows = sorted(rows, key=lambda r: number(r.get("laser_pj")) or 0.0)
    coating = str(rows[0].get("coating") or "Cr")
    exclude = tuple(getattr(params, "exclude", ()) or (coating,))
    n = len(rows)
    fig = _new(figsize=(3.1 * n + 4.6, 6.4))
    gs = fig.add_gridspec(2, n + 1, width_ratios=[1.0] * n + [1.5], height_ratios=[1.0, 0.6],
                          hspace=0.3, wspace=0.35)
    groups = [(f"{coating}-bearing (coating)", "#ff7f0e", lambda nm: _has_element(nm, coating)),
              ("Li", "#2ca02c", lambda nm: _has_element(nm, "Li")),
              ("other ions", "#9fb4c7", lambda nm: not _has_element(nm, coating)
               and not _has_element(nm, "Li"))]
    profile_row, profile_sel = rows[0], None
    for j, row in enumerate(rows):
        label = _label(row)
        run, roi_run, table_r, info = runs.load_with_selection(label)
        if j == 0:
            profile_sel = (roi_run, table_r, info)
        for i, plane in enumerate(("xy", "xz")):
            ax = fig.add_subplot(gs[i, j])
            try:
                s = _slice(run, table_r, plane)
                _draw_slice(ax, s, groups)
                if i == 0 and j == 0:
                    ax.legend(fontsize=6, markerscale=4, loc="lower left",
                              bbox_to_anchor=(0.0, 1.18), frameon=False)
            except LiprobeError as e:
                _panel_message(ax, f"{plane}: {e}")
            if plane == "xz" and j == 0 and info.get("kind") == "cylinder":
                cx = info.get("center_nm", [0.0, 0.0])[0]
                r = 0.5 * float(info["diameter_nm"])
                for x in (cx - r, cx + r):
                    ax.axvline(x, color="k", ls="--", lw=0.9)
            ax.set_title((_row_title(row).replace("\n", ", ") + "\n" if i == 0 else "")
                         + ("XY view along z" if plane == "xy" else "XZ slice, 5 nm"),
                         fontsize=8)
    ax = fig.add_subplot(gs[:, n])
    roi_run, table_r, info = profile_sel
    try:
        z = roi_run["z"]
        depth = float(z.max() - z.min())
        bin_nm = 1.0 if depth >= 15 else max(round(depth / 15, 2), 0.05)
        p = composition_profile(roi_run, table_r, axis="z", bin_nm=bin_nm, exclude=exclude)
        xs = p.depth if p.depth is not None else p.position
        for el in p.elements:
            y = p.percent[el]
            ok = np.isfinite(y)
            ax.errorbar(xs[ok], y[ok], yerr=p.error[el][ok], marker="o", ms=2.5, lw=1.0,
                        capsize=1.5, label=el)
        ax.set_xlabel("depth (nm)")
        ax.set_ylabel("composition (at.%)")
        _legend(ax, "right")
        roi = info.get("roi") or "all ions"
        ax.set_title(f"composition profile, {_label(profile_row)} "
                     f"({_pj(profile_row.get('laser_pj'))})\nROI {roi} (dashed), {bin_nm:g} nm "
                     f"bins, {', '.join(exclude)} excluded, 1 sigma", fontsize=8)
    except LiprobeError as e:
        _panel_message(ax, f"no profile: {e}")
    fig.suptitle(numbered("Figure 3", f"{coating}-coated {g.main}: atom maps per laser energy "
                          "and the composition profile in the ROI", numbering), fontsize=10)
    return _save(fig, out_dir, "figure_3")


# --------------------------------------------------------------------------
# Figure 4: spectra and frequency distributions, coated against uncoated
# --------------------------------------------------------------------------

def _pair_at_same_laser(g: StudyGroups):
    def by_pj(frame):
        out = {}
        for r in _rows(frame):
            k = number(r.get("laser_pj"))
            if k is not None and k not in out:
                out[k] = r
        return out

    u, c = by_pj(g.uncoated), by_pj(g.coated)
    common = sorted(set(u) & set(c))
    if not common:
        return None
    pj = COMPARE_PJ if COMPARE_PJ in common else common[0]
    return pj, u[pj], c[pj]


def figure_4(table, out_dir, runs=None, params=None, materials=None,
             numbering="paper") -> list:
    """(a) normalised spectra, 4-35 Da, of an uncoated and a coated run at one laser energy;
    (b, c) their frequency distributions of Li with the binomial expectation, mu in the legend.

    The laser energy is 5 pJ when both kinds of run exist there (the paper's
    Figure 4a), else the lowest energy they share. Each spectrum is divided by
    its ions in 4-35 Da. The frequency distributions are those of the table:
    the ROI, block size, normalisation, shuffles and seed of the study.
    """
    from ..fda import frequency_distribution
    from ..plots.fda import draw_frequency_distribution
    from ..plots.spectrum import draw_spectrum
    from ..spectrum import mass_histogram

    g = StudyGroups(table)
    pair = _pair_at_same_laser(g)
    if pair is None:
        raise FigureSkipped("no laser energy has both an uncoated and a coated run of the main "
                            "material")
    _need_runs(runs)
    pj, ru, rc = pair
    fda_cfg = getattr(params, "fda", None)
    species = _fda_species(params)
    fig = _new(figsize=(11.0, 7.6))
    gs = fig.add_gridspec(2, 2, height_ratios=[1.1, 1.0], hspace=0.45, wspace=0.25)
    ax = fig.add_subplot(gs[0, :])
    for row, color, what in ((ru, UNCOATED, "uncoated"), (rc, COATED, "coated")):
        run, _ = runs.load(_label(row))
        h = mass_histogram(run.chunks("mass"), bin_da=0.02, mass_range=(4.0, 35.0))
        total = float(h.counts.sum())
        if total <= 0:
            raise FigureSkipped(f"{_label(row)} has no ions in 4-35 Da")
        draw_spectrum(ax, h, None, label=f"{what}: {_label(row)} ({int(total):,} ions)",
                      scale=total, color=color)
    ax.set_xlabel("mass-to-charge (Da)")
    ax.set_ylabel("fraction of ions in 4-35 Da per 0.02 Da")
    _legend(ax, "right")
    ax.set_title(f"(a) normalised mass spectra at {pj:g} pJ", fontsize=9)
    for k, (row, what) in enumerate(((ru, "uncoated"), (rc, "coated"))):
        ax = fig.add_subplot(gs[1, k])
        try:
            roi_run, table_r = runs.load(_label(row), roi=True)
            fd = frequency_distribution(
                roi_run, table_r, species, getattr(fda_cfg, "block", 100),
                exclude=tuple(getattr(params, "exclude", ()) or ()),
                normalization=getattr(fda_cfg, "normalization", "solute"),
                shuffles=getattr(fda_cfg, "shuffles", 20), seed=getattr(fda_cfg, "seed", 0))
            draw_frequency_distribution(ax, fd)
            inside = ax.get_legend()
            if inside is not None:              # below the axes: it covers no block
                title = inside.get_title().get_text()
                inside.remove()
                _legend(ax, title=title)
        except (LiprobeError, ValueError) as e:
            _panel_message(ax, f"no frequency distribution: {e}")
        ax.set_title(f"({'bc'[k]}) {what}: {_label(row)}, {species} in blocks of "
                     f"{getattr(fda_cfg, 'block', 100)} ions", fontsize=9)
    fig.suptitle(numbered("Figure 4", f"{g.main}, uncoated against coated at {pj:g} pJ",
                          numbering), fontsize=10)
    return _save(fig, out_dir, "figure_4")


# --------------------------------------------------------------------------
# Figures 5 and 6: ratios against the field proxy
# --------------------------------------------------------------------------

#: The ratios of Figures 5 and 6 (Singh et al. 2023).
FIELD_RATIOS = ("Li/(Li+Ni+Co+Mn)", "Ni/(Ni+Co+Mn)", "O/(Li+O+Ni+Co+Mn)")
FIELD_PROXY = "O2+/O+"


def _ratio_columns(table, params) -> list:
    cols = [c for c in FIELD_RATIOS if c in table]
    if cols:
        return cols
    from ..chemistry import Ion, parse_ratio

    out = []
    for t in tuple(getattr(params, "ratios", ()) or ()):
        try:
            if t in table and not any(isinstance(x, Ion) for x in parse_ratio(t).terms):
                out.append(t)
        except ValueError:
            continue
    return out[:3]


def _ratio_figure(table, out_dir, params, materials, stem, all_particles: bool,
                  numbering: str = "paper") -> list:
    g = StudyGroups(table)
    if FIELD_PROXY not in table:
        raise FigureSkipped(f"the study computes no {FIELD_PROXY} (add it to field_proxies)")
    ratios = _ratio_columns(table, params)
    if not ratios:
        raise FigureSkipped("the study computes none of the composition ratios "
                            + ", ".join(FIELD_RATIOS))
    rows_all, state = g.ratio_rows, g.ratio_state
    particles = g.particles(rows_all)
    if not particles:
        raise FigureSkipped("no run of the main material finished (or every one is "
                            "flagged)")
    shown = particles if all_particles else particles[:1]
    fig = _new(figsize=(4.2 * len(ratios), 4.2))
    markers = "osD^vP*Xh<>"
    for i, expr in enumerate(ratios):
        ax = fig.add_subplot(1, len(ratios), i + 1)
        for k, p in enumerate(shown):
            rows = g.rows_of_particle(rows_all, p)
            x, xe = _values(rows, FIELD_PROXY)
            y, ye = _values(rows, expr)
            ok = np.isfinite(x) & np.isfinite(y)
            if not ok.any():
                continue
            color = f"C{k % 10}"
            open_ = all_particles and k == 0
            if not all_particles:
                pj = np.array([number(v) or np.nan for v in rows["laser_pj"]]) \
                    if "laser_pj" in rows else np.full(len(rows), np.nan)
                sc = ax.scatter(x[ok], y[ok], c=pj[ok], cmap="viridis", s=28, zorder=3,
                                edgecolors="k", linewidths=0.4)
                ax.errorbar(x[ok], y[ok], xerr=np.nan_to_num(xe[ok]), yerr=np.nan_to_num(ye[ok]),
                            fmt="none", ecolor="0.4", lw=0.8, zorder=2)
                if i == len(ratios) - 1 and np.isfinite(pj[ok]).any():
                    fig.colorbar(sc, ax=ax, label="laser energy (pJ)")
            else:
                ax.errorbar(x[ok], y[ok], xerr=np.nan_to_num(xe[ok]), yerr=np.nan_to_num(ye[ok]),
                            fmt=markers[k % len(markers)], ms=6, color=color,
                            mfc="none" if open_ else color, lw=0.8, capsize=1.5,
                            label=f"{p} ({int(ok.sum())} rows)")
        exp = _expected(expr, g.main, materials)
        if exp is not None:
            ax.axhline(exp, ls="--", color="k", lw=1.0, label=f"{g.main}: {exp:.3g}")
        ax.set_xlabel(f"{FIELD_PROXY} (ions)")
        ax.set_ylabel(expr + " (atoms)")
        _legend(ax)
    what = f"particle {shown[0]}" if not all_particles else f"{len(shown)} particles"
    fig.suptitle(numbered(f"Figure {'6' if all_particles else '5'}",
                          f"{state} {g.main}, {what}: composition ratios against "
                          f"{FIELD_PROXY}, expected values dashed, 1-sigma counting errors",
                          numbering), fontsize=10)
    fig.subplots_adjust(wspace=0.35)
    return _save(fig, out_dir, stem)


def figure_5(table, out_dir, runs=None, params=None, materials=None,
             numbering="paper") -> list:
    """Li/(Li+Ni+Co+Mn), Ni/(Ni+Co+Mn) and O/(Li+O+Ni+Co+Mn) against O2+/O+ for one particle.

    The coated particle with the most rows (the uncoated one where no run is
    coated: :attr:`StudyGroups.ratio_rows`); points coloured by laser energy;
    the material's expected values (from its formula) dashed.
    """
    return _ratio_figure(table, out_dir, params, materials, "figure_5", all_particles=False,
                         numbering=numbering)


def figure_6(table, out_dir, runs=None, params=None, materials=None,
             numbering="paper") -> list:
    """Figure 5 for every particle of the same rows: the first particle's rows open, the
    others filled."""
    return _ratio_figure(table, out_dir, params, materials, "figure_6", all_particles=True,
                         numbering=numbering)


# --------------------------------------------------------------------------
# Figure 7: the Mn-rich particle and LiMn2O4
# --------------------------------------------------------------------------

def _li_mn(frame, expr):
    """Values of ``Mn/(Li+Mn)`` or ``Li/(Li+Mn)``: the table's column, else from at.%."""
    if expr in frame:
        return _values(frame, expr)
    li, _ = _values(frame, "at_pct_Li")
    mn, _ = _values(frame, "at_pct_Mn")
    li, mn = np.nan_to_num(li), np.nan_to_num(mn)
    with np.errstate(invalid="ignore", divide="ignore"):
        v = (mn if expr.startswith("Mn") else li) / (li + mn)
    return v, np.full(len(v), np.nan)


def _band(ax, frame, xcol, ycol, color, label):
    x, _ = _values(frame, xcol)
    y, ye = _values(frame, ycol)
    ok = np.isfinite(x) & np.isfinite(y)
    if not ok.any():
        return
    ye = np.nan_to_num(ye)
    xs = np.unique(x[ok])
    lo = np.array([np.min((y - ye)[ok & (x == v)]) for v in xs])
    hi = np.array([np.max((y + ye)[ok & (x == v)]) for v in xs])
    if len(xs) == 1:
        xs = np.array([xs[0] - 0.5, xs[0] + 0.5])
        lo, hi = np.repeat(lo, 2), np.repeat(hi, 2)
    ax.fill_between(xs, lo, hi, color=color, alpha=0.3, lw=0, label=label)


def figure_7(table, out_dir, runs=None, params=None, materials=None,
             numbering="paper") -> list:
    """(b) Mn++/Mn+ and O2+/O+ against laser energy: the runs of another phase (the Mn-rich
    particle) as points, the reference material (LiMn2O4) as a band (value ± 1σ);
    (c) Mn/(Li+Mn) and Li/(Li+Mn) against Mn++/Mn+, expected values (2/3 and 1/3 for
    LiMn2O4) dashed.
    """
    g = StudyGroups(table)
    if "Mn++/Mn+" not in table:
        raise FigureSkipped("the study computes no Mn++/Mn+ (add it to field_proxies)")
    if not len(g.other_phase) and not len(g.reference):
        raise FigureSkipped("no run of another phase and no reference material in the study")
    phase = None
    if len(g.other_phase) and "best_phase" in g.other_phase:
        bp = g.other_phase["best_phase"].dropna()
        phase = str(bp.mode().iloc[0]) if len(bp) else None
    ref = g.reference
    if phase is not None and len(ref):
        same = ref[ref["material"].astype("string") == phase]
        ref = same if len(same) else ref
    ref_name = str(ref["material"].iloc[0]) if len(ref) else None
    phase = phase or ref_name
    fig = _new(figsize=(14.0, 4.3))
    gs = fig.add_gridspec(1, 3, wspace=0.32)
    for i, ycol in enumerate(("Mn++/Mn+", FIELD_PROXY)):
        ax = fig.add_subplot(gs[0, i])
        if ycol not in table:
            _panel_message(ax, f"the study computes no {ycol}")
            continue
        if len(ref):
            _band(ax, ref, "laser_pj", ycol, REFERENCE, f"{ref_name} (reference, ± 1σ)")
        for k, p in enumerate(g.particles(g.other_phase)):
            rows = g.rows_of_particle(g.other_phase, p)
            x, _ = _values(rows, "laser_pj")
            y, ye = _values(rows, ycol)
            ok = np.isfinite(x) & np.isfinite(y)
            ax.errorbar(x[ok], y[ok], yerr=np.nan_to_num(ye[ok]), fmt="os^D"[k % 4],
                        color=OTHER if k == 0 else f"C{k + 4}", ms=6, capsize=2,
                        label=f"{p}: listed {rows['material'].iloc[0]}, flagged other_phase")
        ax.set_xlabel("laser pulse energy (pJ)")
        ax.set_ylabel(f"{ycol} (ions)")
        _legend(ax)
        ax.set_title(f"({'ab'[i]}) {ycol} against laser energy", fontsize=9)
    ax = fig.add_subplot(gs[0, 2])
    for frame, color, what, mk in ((g.other_phase, OTHER, "another phase", "o"),
                                   (ref, REFERENCE, ref_name or "reference", "s")):
        if not len(frame):
            continue
        x, xe = _values(frame, "Mn++/Mn+")
        for expr, filled in (("Mn/(Li+Mn)", True), ("Li/(Li+Mn)", False)):
            y, ye = _li_mn(frame, expr)
            ok = np.isfinite(x) & np.isfinite(y)
            ax.errorbar(x[ok], y[ok], xerr=np.nan_to_num(xe[ok]), yerr=np.nan_to_num(ye[ok]),
                        fmt=mk, color=color, mfc=color if filled else "none", ms=6, capsize=1.5,
                        lw=0.8, label=f"{expr}, {what}")
    for expr in ("Mn/(Li+Mn)", "Li/(Li+Mn)"):
        exp = _expected(expr, phase, materials)
        if exp is not None:
            ax.axhline(exp, ls="--", color="k", lw=1.0)
            ax.annotate(f"{phase}: {exp:.3g}", (1.02, exp), xycoords=("axes fraction", "data"),
                        ha="left", va="center", fontsize=8)     # outside: covers no point
    ax.set_xlabel("Mn++/Mn+ (ions)")
    ax.set_ylabel("atom fraction")
    ax.set_ylim(0, 1)
    _legend(ax, "right")
    ax.set_title("(c) Mn/(Li+Mn) and Li/(Li+Mn) against Mn++/Mn+", fontsize=9)
    fig.suptitle(numbered("Figure 7", f"runs of another phase ({phase}) and the reference "
                          "material", numbering), fontsize=10)
    return _save(fig, out_dir, "figure_7")


# --------------------------------------------------------------------------
# Supplementary Figure 3 and Table 1
# --------------------------------------------------------------------------

def _against_laser(ax, g: StudyGroups, col: str) -> None:
    """One column of the table against laser energy, a marker and colour per part of the
    study (coated, uncoated, another phase, reference), 1-sigma error bars."""
    parts = ((g.coated, COATED, "o", f"{g.main}, coated"),
             (g.uncoated, UNCOATED, "x", f"{g.main}, uncoated"),
             (g.other_phase, OTHER, "D", "another phase"),
             (g.reference, REFERENCE, "s", "reference material"))
    for frame, color, mk, what in parts:
        if not len(frame):
            continue
        x, _ = _values(frame, "laser_pj")
        y, ye = _values(frame, col)
        ok = np.isfinite(x) & np.isfinite(y)
        if ok.any():
            ax.errorbar(x[ok], y[ok], yerr=np.nan_to_num(ye[ok]), fmt=mk, color=color,
                        ms=5, capsize=1.5, lw=0.8, label=what)
    ax.set_xlabel("laser pulse energy (pJ)")


def supplementary_figure_3(table, out_dir, runs=None, params=None, materials=None,
                           numbering="paper") -> list:
    """Charge-state ratios (``M++/M+``) against laser energy, one panel per element."""
    g = StudyGroups(table)
    cols = g.csr_columns()
    if not cols:
        raise FigureSkipped("the study computes no charge-state ratio (add e.g. \"Ni++/Ni+\", "
                            "\"Mn++/Mn+\" to field_proxies)")
    if "laser_pj" not in table:
        raise FigureSkipped("the table has no laser_pj column")
    fig = _new(figsize=(4.2 * len(cols), 4.0))
    for i, col in enumerate(cols):
        ax = fig.add_subplot(1, len(cols), i + 1)
        _against_laser(ax, g, col)
        ax.set_ylabel(f"{col} (ions)")
        _legend(ax)
    fig.suptitle(numbered("Supplementary Figure 3", "charge-state ratios against laser "
                          "energy, 1-sigma counting errors", numbering), fontsize=10)
    fig.subplots_adjust(wspace=0.3)
    return _save(fig, out_dir, "supplementary_figure_3")


def field_by_laser(table, out_dir, runs=None, params=None, materials=None,
                   numbering="paper") -> list:
    """(a) O2+/O+ and (b) the coating's Kingham-equivalent field against laser energy.

    The field is read from the coating's own charge-state ratio (a metal:
    ``kingham_field_<el>_v_nm``, :mod:`liprobe.study.kingham`), next to the
    oxide's molecular-ion proxy; error bars are counting statistics only.
    """
    g = StudyGroups(table)
    kcols = [c for c in table.columns if c.startswith("kingham_field_") and c.endswith("_v_nm")]
    kcols = [c for c in kcols if any(v is not None for v in map(number, table[c]))]
    if not kcols and FIELD_PROXY not in table:
        raise FigureSkipped("the study computes neither O2+/O+ nor a Kingham field")
    if "laser_pj" not in table:
        raise FigureSkipped("the table has no laser_pj column")
    cols = ([FIELD_PROXY] if FIELD_PROXY in table else []) + kcols
    fig = _new(figsize=(4.6 * len(cols), 4.0))
    for i, col in enumerate(cols):
        ax = fig.add_subplot(1, len(cols), i + 1)
        _against_laser(ax, g, col)
        if col == FIELD_PROXY:
            ax.set_ylabel("O2+/O+ (ions)")
            ax.set_title(f"({chr(ord('a') + i)}) O2+/O+: higher at lower field", fontsize=9)
        else:
            el = col[len("kingham_field_"):-len("_v_nm")].capitalize()
            ax.set_ylabel(f"{el}: Kingham-equivalent field (V/nm)")
            ax.set_title(f"({chr(ord('a') + i)}) from the charge-state ratio of {el} in the "
                         "coating (metal assumption)", fontsize=9)
        if ax.get_legend_handles_labels()[0]:
            _legend(ax)
    fig.suptitle("Field against laser energy: the oxide's proxy and the coating's "
                 "Kingham-equivalent field, 1-sigma counting errors", fontsize=10)
    fig.subplots_adjust(wspace=0.3)
    return _save(fig, out_dir, "field_by_laser")


def _truth_segment(runs, row, cache):
    """The simulator's truth segment of a table row (matched by laser energy, then by its
    start ion), with the run's evaporation constants; None for a run without truth."""
    from .sources import read_truth, row_label

    truth = read_truth(runs, row_label(row), cache)
    if not isinstance(truth, dict) or not isinstance(truth.get("segments"), list):
        return None
    pj = number(row.get("laser_pj"))
    start = number(row.get("segment_start"))
    segs = [s for s in truth["segments"] if isinstance(s, dict)
            and isinstance(s.get("field"), dict)]
    if pj is not None:
        segs = [s for s in segs if number(s.get("laser_pj")) == pj] or segs
    if start is not None and len(segs) > 1:
        segs = sorted(segs, key=lambda s: abs((number(s.get("start_ion")) or 0) - start))
    if not segs:
        return None
    tin = truth.get("inputs")
    evap = tin.get("evaporation") if isinstance(tin, dict) else None
    return segs[0], evap if isinstance(evap, dict) else None


def field_collapse(table, out_dir, runs=None, params=None, materials=None,
                   numbering="paper") -> list:
    """Simulated runs: the measured proxies against the simulator's true local field.

    (a) O2+/O+ measured in the ROI against the mean field of the oxide's
    detected ions (``truth.json``), coated and uncoated, with the model's
    curve ``r(F)`` (:func:`liprobe.simulate.evaporation.o2_to_o_ratio`): one
    curve for both coatings and every laser energy if the field, not the
    laser energy, sets the proxy. (b) The coating's Kingham field measured
    by the study against the true mean field of the shell's Cr ions, with the
    field a noise-free analysis would read with the field map's spread (open).
    """
    from ..simulate.evaporation import EvaporationModel, o2_to_o_ratio

    g = StudyGroups(table)
    cache: dict = {}
    pts = []
    for frame, color, mk, what in ((g.coated, COATED, "o", "coated"),
                                   (g.uncoated, UNCOATED, "x", "uncoated")):
        for _, row in frame.iterrows():
            found = _truth_segment(runs, row, cache)
            if found is None:
                continue
            seg, evap = found
            f = seg["field"]
            pts.append((color, mk, what, number(f.get("oxide_mean_v_nm")),
                        number(row.get(FIELD_PROXY)), number(row.get(FIELD_PROXY + "_err")),
                        number(f.get("coating_mean_v_nm")),
                        number(row.get("kingham_field_cr_v_nm")),
                        number(row.get("kingham_field_cr_v_nm_err")),
                        number(f.get("coating_kingham_v_nm")), evap))
    if not pts:
        raise FigureSkipped("no run has a simulator's truth file beside it (simulated "
                            "series only)")
    fig = _new(figsize=(10.0, 4.2))
    ax = fig.add_subplot(1, 2, 1)
    seen = set()
    for color, mk, what, fo, r, re_, *_ in pts:
        if fo is None or r is None:
            continue
        ax.errorbar([fo], [r], yerr=[re_ or 0.0], fmt=mk, color=color, ms=5, capsize=1.5,
                    lw=0.8, label=None if what in seen else what)
        seen.add(what)
    evap = next((p[-1] for p in pts if p[-1]), None)
    fields = [p[3] for p in pts if p[3] is not None]
    if evap is not None and fields:
        try:
            model = EvaporationModel(**evap)
            xs = np.linspace(min(fields) - 0.5, max(fields) + 0.5, 200)
            ax.plot(xs, [o2_to_o_ratio(model, x) for x in xs], "k-", lw=0.8,
                    label="model r(F)")
        except (TypeError, ValueError):
            pass
    ax.set_xlabel("true mean field of the oxide's ions (V/nm)")
    ax.set_ylabel("O2+/O+ measured (ions)")
    ax.set_title("(a) O2+/O+ against the true field: one curve", fontsize=9)
    if ax.get_legend_handles_labels()[0]:
        _legend(ax)
    ax = fig.add_subplot(1, 2, 2)
    kp = [(p[6], p[7], p[8], p[9]) for p in pts if p[6] is not None and p[7] is not None]
    if kp:
        x = np.array([k[0] for k in kp])
        ax.errorbar(x, [k[1] for k in kp], yerr=[k[2] or 0.0 for k in kp], fmt="o",
                    color=COATED, ms=5, capsize=1.5, lw=0.8, label="study: Kingham field")
        pred = [(k[0], k[3]) for k in kp if k[3] is not None]
        if pred:
            ax.plot([q[0] for q in pred], [q[1] for q in pred], "o", mfc="none",
                    color="k", ms=7, lw=0.8, label="noise-free, with the map's spread")
        lo, hi = float(x.min()) - 0.3, float(x.max()) + 0.3
        ax.plot([lo, hi], [lo, hi], "k:", lw=0.8, label="equal")
        _legend(ax)
    else:
        _panel_message(ax, "no coated run with a Kingham field")
    ax.set_xlabel("true mean field of the shell's Cr ions (V/nm)")
    ax.set_ylabel("Kingham-equivalent field of Cr (V/nm)")
    ax.set_title("(b) the Kingham round trip", fontsize=9)
    fig.suptitle("Simulator check: proxies measured blind against the true local field "
                 "(truth.json), 1-sigma counting errors", fontsize=10)
    fig.subplots_adjust(wspace=0.3)
    return _save(fig, out_dir, "field_collapse")


def supplementary_table_1(table, params=None):
    """Li's FDA mu by laser energy (rows) and part of the study (columns), as a DataFrame.

    Mean over the rows of a cell; the part names follow the table's
    materials (e.g. ``NMC811, coated``, ``another phase (LiMn2O4)``,
    ``LiMn2O4``). None if the study computes no mu of a Li species.
    """
    import pandas as pd

    g = StudyGroups(table)
    col = f"fda_mu_{_fda_species(params)}"
    if col not in table:
        cands = [c for c in table.columns if str(c).startswith("fda_mu_Li")]
        if not cands:
            return None
        col = cands[0]
    parts = [(f"{g.main}, coated", g.coated), (f"{g.main}, uncoated", g.uncoated)]
    if len(g.other_phase):
        bp = g.other_phase["best_phase"].dropna() if "best_phase" in g.other_phase else []
        name = f"another phase ({bp.mode().iloc[0]})" if len(bp) else "another phase"
        parts.append((f"{g.main} particles of {name}", g.other_phase))
    for mat in dict.fromkeys(g.reference.get("material", [])):
        parts.append((str(mat), g.reference[g.reference["material"] == mat]))
    data = {}
    for name, frame in parts:
        if not len(frame):
            continue
        x, _ = _values(frame, "laser_pj")
        y, _ = _values(frame, col)
        for pj in np.unique(x[np.isfinite(x)]):
            sel = (x == pj) & np.isfinite(y)
            if sel.any():
                data.setdefault(name, {})[float(pj)] = float(np.mean(y[sel]))
    if not data:
        return None
    df = pd.DataFrame(data).sort_index(ascending=False)
    df.index.name = "laser_pj"
    df.attrs["column"] = col
    return df


# --------------------------------------------------------------------------
# the course of the runs, the yield, MRP and tails
# --------------------------------------------------------------------------

def voltage_histories(table, out_dir, runs=None, params=None, materials=None,
                      numbering="paper") -> list:
    """Standing voltage against ion index of every run, uncoated and coated side by side
    (a panel per coating state the study has; runs whose file holds no voltage left out).

    Runs flagged ``early_fracture`` end in a cross. One curve per run
    (segments of a run share it); the median voltage of consecutive bins
    (:func:`liprobe.history.binned_voltage`).
    """
    from ..history import binned_voltage

    _need_runs(runs)
    ok = table[table["status"].astype("string") == "ok"] if "status" in table else table
    if not len(ok):
        raise FigureSkipped("no row finished")
    per_run: dict = {}
    for _, r in ok.iterrows():
        e = per_run.setdefault(r["run"], {"row": r, "fractured": False})
        if "early_fracture" in flag_set(r.get("flags")):
            e["fractured"] = True
    curves: dict = {"none": [], "coated": []}
    for name, e in per_run.items():
        r = e["row"]
        label = _label(r)
        if label not in runs:
            continue
        run, _ = runs.whole_run(label)
        if "v_dc" not in run:
            continue
        v, edges = binned_voltage(np.asarray(run["v_dc"]), 200)
        if not np.nanmax(v, initial=0.0) > 0:
            continue                        # a file whose voltage column holds no voltage
        x = 0.5 * (edges[:-1] + edges[1:])
        kind = "none" if str(r.get("coating") or "none").lower() == "none" else "coated"
        curves[kind].append((name, r, e["fractured"], x, v))
    kinds = [k for k in ("none", "coated") if curves[k]]
    if not kinds:
        raise FigureSkipped("no run records its standing voltage (v_dc)")
    fig = _new(figsize=(6.0 * len(kinds), 4.2))
    for i, kind in enumerate(kinds):
        ax = fig.add_subplot(1, len(kinds), i + 1)
        for name, r, fractured, x, v in curves[kind]:
            line, = ax.plot(x, v, lw=1.0, label=f"{name} ({_pj(r.get('laser_pj'))})")
            if fractured:
                ax.plot(x[-1], v[-1], "x", color=line.get_color(), ms=9, mew=2)
        ax.set_xlabel("ion index")
        ax.set_ylabel("standing voltage (V)")
        ax.set_title(("uncoated" if kind == "none" else "coated")
                     + f" runs ({len(curves[kind])}); x: flagged early_fracture", fontsize=9)
        if len(curves[kind]) <= 12:
            _legend(ax, ncols=2)
    fig.suptitle("Voltage histories", fontsize=10)
    return _save(fig, out_dir, "voltage_histories")


def yield_by_coating(table, out_dir, runs=None, params=None, materials=None,
                     numbering="paper") -> list:
    """Runs complete and fractured per coating (:func:`liprobe.study.yield_table`)."""
    from ..study import yield_table

    ys = yield_table(plain_records(table))
    if not ys:
        raise FigureSkipped("no run")
    fig = _new(figsize=(5.0, 3.6))
    ax = fig.add_subplot(1, 1, 1)
    names = [y["coating"] for y in ys]
    comp = np.array([y["complete"] for y in ys])
    frac = np.array([y["fractured"] for y in ys])
    unk = np.array([y["unknown"] for y in ys])
    ax.bar(names, comp, color=COATED, label="complete")
    ax.bar(names, frac, bottom=comp, color=UNCOATED, label="fractured early")
    ax.bar(names, unk, bottom=comp + frac, color="0.7", label="unknown (analysis failed)")
    for i, y in enumerate(ys):
        yl = "n/a" if y["yield"] is None else f"{100 * y['yield']:.0f} %"
        ax.annotate(f"yield {yl}", (i, y["runs"]), ha="center", va="bottom", fontsize=8)
    ax.set_ylabel("runs")
    ax.set_xlabel("coating")
    ax.set_ylim(0, max(y["runs"] for y in ys) * 1.2 + 0.5)
    _legend(ax)
    ax.set_title("Yield: runs that ran to their end, per coating", fontsize=9)
    return _save(fig, out_dir, "yield_by_coating")


def mrp_by_coating(table, out_dir, runs=None, params=None, materials=None,
                   numbering="paper") -> list:
    """MRP at FWHM and at 10 % of the maximum, and the thermal tail, of the reference peaks,
    coated against uncoated (one point per row, the median as a bar)."""
    ions = [c[len("mrp_fwhm_"):] for c in table.columns if str(c).startswith("mrp_fwhm_")]
    if not ions:
        raise FigureSkipped("the study measures no reference peak (add reference_peaks)")
    ok = table[table["status"].astype("string") == "ok"] if "status" in table else table
    coated = ok["coating"].astype("string").fillna("none").str.lower() != "none"
    parts = (("uncoated", ok[~coated], UNCOATED), ("coated", ok[coated], COATED))
    metrics = (("mrp_fwhm", "MRP at FWHM (m/dm)"), ("mrp_fw10", "MRP at FW10%M (m/dm)"),
               ("tail_ns", "thermal tail (ns)"))
    fig = _new(figsize=(4.3 * len(metrics), 4.0))
    rng = np.random.default_rng(0)
    for i, (prefix, what) in enumerate(metrics):
        ax = fig.add_subplot(1, len(metrics), i + 1)
        for k, (_name, frame, color) in enumerate(parts):
            for j, ion in enumerate(ions):
                y, _ = _values(frame, f"{prefix}_{ion}")
                y = y[np.isfinite(y)]
                if not len(y):
                    continue
                x0 = j + (k - 0.5) * 0.35
                ax.scatter(x0 + rng.uniform(-0.06, 0.06, len(y)), y, s=12, color=color,
                           alpha=0.7)
                ax.hlines(np.median(y), x0 - 0.12, x0 + 0.12, color="k", lw=1.5)
        handles = [ax.scatter([], [], s=12, color=c, label=n) for n, _, c in parts]
        _legend(ax, handles=handles)
        ax.set_xticks(range(len(ions)))
        ax.set_xticklabels(ions)
        ax.set_ylabel(what)
        ax.set_xlabel("reference peak")
    fig.suptitle("Mass resolving power and thermal tails by coating (bars: medians)",
                 fontsize=10)
    fig.subplots_adjust(wspace=0.3)
    return _save(fig, out_dir, "mrp_by_coating")


# --------------------------------------------------------------------------
# any study: spectra, compositions, maps and profiles of its runs
# --------------------------------------------------------------------------

#: Runs shown at most by the per-run figures (spectra, maps, profiles).
MAX_RUNS = 4


def _one_row_per_run(table, limit=MAX_RUNS) -> list:
    """The first finished row of each run (segments of a run share its file), at most
    ``limit`` of them, in table order."""
    ok = table[table["status"].astype("string") == "ok"] if "status" in table else table
    seen, out = set(), []
    for _, r in ok.iterrows():
        key = r.get("run")
        if key in seen:
            continue
        seen.add(key)
        out.append(r)
    return out[:limit]


def _major_elements(row, k=3) -> list:
    """The ``k`` elements of a row with the highest ``at_pct_<El>``, largest first."""
    vals = [(number(v), c[len("at_pct_"):]) for c, v in row.items()
            if isinstance(c, str) and c.startswith("at_pct_") and not c.endswith("_err")]
    vals = sorted((v, el) for v, el in vals if v is not None and v > 0)
    return [el for _, el in reversed(vals)][:k]


def spectra(table, out_dir, runs=None, params=None, materials=None,
            numbering="paper") -> list:
    """The mass spectrum of each run (up to :data:`MAX_RUNS`), log scale, its ranges shaded
    in their colours and labelled; the mass axis ends past the highest range."""
    from ..plots.spectrum import draw_spectrum
    from ..spectrum import mass_histogram

    _need_runs(runs)
    rows = [r for r in _one_row_per_run(table) if _label(r) in runs]
    if not rows:
        raise FigureSkipped("no finished run has its files at hand")
    fig = _new(figsize=(10.0, 2.9 * len(rows)))
    for i, row in enumerate(rows):
        ax = fig.add_subplot(len(rows), 1, i + 1)
        run, rt = runs.whole_run(_label(row))
        top = max((r.hi for r in rt.ranges), default=100.0)
        hi = float(min(max(10.0 * np.ceil((top + 5.0) / 10.0), 20.0), 300.0))
        h = mass_histogram(run.chunks("mass"), bin_da=0.05, mass_range=(0.0, hi))
        draw_spectrum(ax, h, rt, color="k")
        lo, top_y = ax.get_ylim()
        ax.set_ylim(lo, top_y * 30.0)           # room for the peaks' labels
        ax.set_ylabel("ions per 0.05 Da")
        ax.set_title(f"{row.get('run')}: {int(h.counts.sum()):,} ions in 0-{hi:g} Da, "
                     f"{len(rt.ranges)} ranges", fontsize=9)
        if i == len(rows) - 1:
            ax.set_xlabel("mass-to-charge (Da)")
    fig.suptitle("Mass spectra, ranged windows shaded and labelled", fontsize=10)
    fig.subplots_adjust(hspace=0.55)
    return _save(fig, out_dir, "spectra")


def compositions(table, out_dir, runs=None, params=None, materials=None,
                 numbering="paper") -> list:
    """Each row's composition (``at_pct_<El>`` in its ROI, 1-sigma errors), one group of
    points per element, log scale (minor elements visible beside the major ones)."""
    ok = table[table["status"].astype("string") == "ok"] if "status" in table else table
    els = [c[len("at_pct_"):] for c in ok.columns
           if isinstance(c, str) and c.startswith("at_pct_") and not c.endswith("_err")]
    els = [el for el in els if np.isfinite(_values(ok, f"at_pct_{el}")[0]).any()]
    if not els or not len(ok):
        raise FigureSkipped("the table holds no composition (at_pct_ columns)")
    mean = {el: np.nanmean(_values(ok, f"at_pct_{el}")[0]) for el in els}
    els = sorted(els, key=lambda el: -mean[el])
    rows = _rows(ok)
    g = StudyGroups(table)
    parts = [(g.uncoated, UNCOATED, "uncoated"), (g.coated, COATED, "coated"),
             (g.other_phase, OTHER, "another phase"), (g.reference, REFERENCE,
                                                       "other material" if g.main else "rows")]
    part_of = {i: (color, what) for frame, color, what in parts for i in frame.index}
    fig = _new(figsize=(min(1.1 * len(els) + 3.0, 11.0), 4.2))
    ax = fig.add_subplot(1, 1, 1)
    n = len(rows)
    width = 0.8 / max(n, 1)
    labelled: set = set()
    for k, row in enumerate(rows):
        x, y, e = [], [], []
        for j, el in enumerate(els):
            v = number(row.get(f"at_pct_{el}"))
            if v is None or v <= 0:
                continue
            x.append(j - 0.4 + width * (k + 0.5))
            y.append(v)
            e.append(number(row.get(f"at_pct_{el}_err")) or 0.0)
        if n <= 10:
            ax.errorbar(x, y, yerr=e, fmt="os^Dv<>PXh"[k % 10], color=f"C{k % 10}", ms=5,
                        capsize=1.5, lw=0.8, label=_label(row))
        else:                               # many rows: coloured by part of the study
            color, what = part_of.get(row.name, ("0.3", "rows"))
            ax.plot(x, y, ".", color=color, ms=4,
                    label=None if what in labelled else f"{what}")
            labelled.add(what)
    ax.set_yscale("log")
    ax.set_xticks(range(len(els)))
    ax.set_xticklabels(els)
    ax.set_xlim(-0.6, len(els) - 0.4)
    ax.set_xlabel("element")
    ax.set_ylabel("composition in the ROI (at.%)")
    _legend(ax, "right")
    fig.suptitle(f"Composition of each row ({n}), 1-sigma counting errors", fontsize=10)
    return _save(fig, out_dir, "compositions")


def maps(table, out_dir, runs=None, params=None, materials=None, numbering="paper") -> list:
    """Per run (up to :data:`MAX_RUNS`): the detector hit map (where the file has detector
    coordinates), the XY view along z and an XZ slice (5 nm) of its three major elements."""
    from ..spatial.detector import detector_map

    _need_runs(runs)
    rows = [r for r in _one_row_per_run(table) if _label(r) in runs]
    if not rows:
        raise FigureSkipped("no finished run has its files at hand")
    cfg = getattr(params, "detector", None)
    loaded = [(r, *runs.whole_run(_label(r))) for r in rows]
    with_det = any("det_x" in run and "det_y" in run for _, run, _ in loaded)
    shown: list = []                        # one colour per element across the runs
    for row, _, rt in loaded:
        for el in _major_elements(row) or [str(e) for e in rt.elements[:3]]:
            if el not in shown:
                shown.append(el)
    nrow = 3 if with_det else 2
    fig = _new(figsize=(3.2 * len(rows), 3.4 * nrow))
    gs = fig.add_gridspec(nrow, len(rows), hspace=0.65, wspace=0.4)
    for j, (row, run, rt) in enumerate(loaded):
        i0 = 0
        if with_det:
            ax = fig.add_subplot(gs[0, j])
            i0 = 1
            if "det_x" in run and "det_y" in run:
                try:
                    m = detector_map(run, rt, bins=getattr(cfg, "bins", 128),
                                     sample_size=getattr(cfg, "sample", 100_000),
                                     seed=getattr(cfg, "seed", 0))
                    x0, x1, y0, y1 = m.extent_mm
                    ax.imshow(np.asarray(m.counts, float), origin="lower",
                              extent=(x0, x1, y0, y1), cmap="viridis", interpolation="nearest")
                    ax.set_aspect("equal")
                    ax.set_xlabel("det_x (mm)")
                    ax.set_ylabel("det_y (mm)")
                except LiprobeError as e:
                    _panel_message(ax, f"no detector map: {e}")
            else:
                _panel_message(ax, "no detector\ncoordinates\nin this file")
            ax.set_title(f"{row.get('run')}: detector hits", fontsize=9)
        els = _major_elements(row) or [str(e) for e in rt.elements[:3]]
        groups = [(el, f"C{shown.index(el) % 10}",
                   (lambda el_: lambda n: _has_element(n, el_))(el)) for el in els]
        for i, plane in ((i0, "xy"), (i0 + 1, "xz")):
            ax = fig.add_subplot(gs[i, j])
            try:
                _draw_slice(ax, _slice(run, rt, plane), groups)
                _legend(ax, markerscale=4, ncols=1)
            except LiprobeError as e:
                _panel_message(ax, f"{plane}: {e}")
            ax.set_title(f"{row.get('run')}: " + ("XY view along z" if plane == "xy"
                                                  else "XZ slice, 5 nm"), fontsize=9)
    fig.suptitle("Detector maps and atom maps of the major elements", fontsize=10)
    return _save(fig, out_dir, "maps")


def profiles(table, out_dir, runs=None, params=None, materials=None,
             numbering="paper") -> list:
    """Composition against depth in each run's ROI (up to :data:`MAX_RUNS` runs; the study's
    excluded elements left out), 1-sigma counting errors."""
    from ..spatial.profile import composition_profile

    _need_runs(runs)
    rows = [r for r in _one_row_per_run(table) if _label(r) in runs]
    if not rows:
        raise FigureSkipped("no finished run has its files at hand")
    exclude = tuple(getattr(params, "exclude", ()) or ())
    fig = _new(figsize=(4.4 * len(rows) + 1.5, 4.0))
    drawn = 0
    colours: dict = {}                      # one colour per element across the panels
    for j, row in enumerate(rows):
        ax = fig.add_subplot(1, len(rows), j + 1)
        run, rt = runs.whole_run(_label(row))
        spec = runs.spec(_label(row))
        try:
            if spec.roi:
                from ..spatial.roi import select

                run, _ = select(run, spec.roi, None, rt)
            z = run["z"]
            depth = float(z.max() - z.min())
            bin_nm = 1.0 if depth >= 15 else max(round(depth / 15, 2), 0.05)
            p = composition_profile(run, rt, axis="z", bin_nm=bin_nm, exclude=exclude)
        except LiprobeError as e:
            _panel_message(ax, f"no profile: {e}")
            continue
        xs = p.depth if p.depth is not None else p.position
        for el in p.elements:
            y, err = p.percent[el], p.error[el]
            ok = np.isfinite(y) & (y > 0)
            if ok.any():
                # on a log axis the lower bar stops at a tenth of the value
                low = np.minimum(np.nan_to_num(err[ok]), 0.9 * y[ok])
                k = colours.setdefault(el, len(colours))
                ax.errorbar(xs[ok], y[ok], yerr=[low, np.nan_to_num(err[ok])], marker="o",
                            ms=2, lw=0.8, capsize=1.0, color=f"C{k % 10}", label=el)
        ax.set_yscale("log")
        ax.set_xlabel("depth (nm)")
        if j == 0:
            ax.set_ylabel("composition (at.%)")
        ax.set_title(f"{row.get('run')}: ROI {spec.roi or 'all ions'}, {bin_nm:g} nm bins",
                     fontsize=9)
        drawn += 1
        if j == len(rows) - 1:
            _legend(ax, "right")
    if not drawn:
        raise FigureSkipped("no run gives a depth profile")
    fig.suptitle("Composition against depth" + (f" ({', '.join(exclude)} excluded)"
                                                if exclude else "")
                 + ", 1-sigma counting errors", fontsize=10)
    fig.subplots_adjust(wspace=0.3)
    return _save(fig, out_dir, "profiles")


# --------------------------------------------------------------------------
# which figures a study gets
# --------------------------------------------------------------------------

def _laser_series(g: StudyGroups) -> bool:
    x, _ = _values(g.ok, "laser_pj")
    return len(np.unique(x[np.isfinite(x)])) >= 2


def _coating_comparison(table, g, runs):
    if not len(g.coated) or not len(g.uncoated):
        return "no coated and uncoated runs of one material to compare"
    return None


def _coated_runs(table, g, runs):
    return None if len(g.coated) else "no coated run"


def _same_laser_pair(table, g, runs):
    why = _coating_comparison(table, g, runs)
    if why:
        return why
    return None if _pair_at_same_laser(g) else ("no laser energy has both a coated and an "
                                                "uncoated run")


def _field_proxy_plots(table, g, runs):
    if FIELD_PROXY not in table:
        return f"no {FIELD_PROXY} field proxy"
    if not len(g.ratio_rows):
        return "no finished run of the main material"
    x, _ = _values(g.ratio_rows, FIELD_PROXY)
    if np.isfinite(x).sum() < 2:
        return f"fewer than two runs with a measured {FIELD_PROXY}"
    return None


def _particle_spread(table, g, runs):
    why = _field_proxy_plots(table, g, runs)
    if why:
        return why
    return None if len(g.particles(g.ratio_rows)) >= 2 else \
        f"fewer than two {g.ratio_state} particles"


def _another_phase(table, g, runs):
    if "Mn++/Mn+" not in table:
        return "no Mn++/Mn+"
    return None if len(g.other_phase) or (len(g.reference) and g.main is not None) \
        else "no run of another phase and no reference material"


def _laser_csr(table, g, runs):
    if not _laser_series(g):
        return "no laser-energy series"
    return None if g.csr_columns() else "no charge-state ratio"


def _laser_field(table, g, runs):
    return None if _laser_series(g) else "no laser-energy series"


def _simulated(table, g, runs):
    from .sources import read_truth

    cache: dict = {}
    if runs is not None and any(read_truth(runs, _label(r), cache) for r in _rows(g.ok)):
        return None
    return "no simulated run: no truth file beside the data"


def _two_coating_states(table, g, runs):
    c = table["coating"].astype("string").fillna("none").str.lower() != "none" \
        if "coating" in table else None
    if c is None or c.all() or not c.any():
        return "one coating state (its yield is in the yield table)"
    return None


def _reference_peaks(table, g, runs):
    if not any(str(c).startswith("mrp_fwhm_") for c in table.columns):
        return "no reference peak measured"
    return _two_coating_states(table, g, runs)


def _any_study(table, g, runs):
    return None if len(g.ok) else "no finished row"


def _no_spectrum_comparison(table, g, runs):
    return "the coated and uncoated spectra are compared" if _same_laser_pair(
        table, g, runs) is None else _any_study(table, g, runs)


def _no_coating_maps(table, g, runs):
    return "the coated runs' maps and profiles are drawn" if len(g.coated) \
        else _any_study(table, g, runs)



# --------------------------------------------------------------------------
# the list the report draws
# --------------------------------------------------------------------------

@dataclass(frozen=True)
class FigureSpec:
    """A figure of the report: its file stem, descriptive title, what it shows, its
    function, when it applies, and its number in the paper (if it is one of the paper's).

    ``applies(table, groups, runs)`` gives None when the study holds what the figure shows,
    else a short reason it is left out (no coated run, no laser-energy series ...).
    """

    name: str
    title: str
    caption: str
    func: Callable
    applies: Callable | None = None
    paper: str | None = None

    def heading(self, numbering: str = "paper") -> str:
        """The paper's number under its numbering (``"Figure 1"``), else the title."""
        return self.paper if numbering == "paper" and self.paper else self.title

    def why_not(self, table, groups=None, runs=None) -> str | None:
        """None if the figure applies to the study, else why it is left out."""
        if self.applies is None:
            return None
        return self.applies(table, groups if groups is not None else StudyGroups(table), runs)


FIGURES: tuple = (
    FigureSpec("figure_1", "Uncoated runs across laser energies: detector and atom maps",
               "Uncoated runs across laser energies: detector event maps (hit density), with "
               "the XZ slice and the XY view of Li and Ni ions below.", figure_1,
               _coating_comparison, "Figure 1"),
    FigureSpec("figure_3", "A coated run per laser energy: atom maps and depth profile",
               "A coated run per laser-energy segment: XY view along z (the coating fills the "
               "periphery) and XZ slice; composition against depth in the ROI.", figure_3,
               _coated_runs, "Figure 3"),
    FigureSpec("figure_4", "Coated against uncoated: spectra and Li frequency distributions",
               "(a) Normalised mass spectra (4-35 Da) of an uncoated and a coated run at the "
               "same laser energy; (b, c) their frequency distributions of Li against the "
               "binomial, mu in the legend.", figure_4, _same_laser_pair, "Figure 4"),
    FigureSpec("figure_5", "Composition ratios against the field proxy, one particle",
               "Composition ratios against the field proxy O2+/O+ for one coated particle "
               "(an uncoated one where no run is coated); expected values dashed.", figure_5,
               _field_proxy_plots, "Figure 5"),
    FigureSpec("figure_6", "Composition ratios against the field proxy, every particle",
               "The same for every particle of those runs: the first particle open, the "
               "others filled.", figure_6, _particle_spread, "Figure 6"),
    FigureSpec("figure_7", "Runs of another phase and the reference material",
               "(a) Mn++/Mn+ and (b) O2+/O+ against laser energy for the runs of another "
               "phase (points) and the reference material (band); (c) Mn/(Li+Mn) and "
               "Li/(Li+Mn) against Mn++/Mn+, expected values dashed.", figure_7,
               _another_phase, "Figure 7"),
    FigureSpec("supplementary_figure_3", "Charge-state ratios against laser energy",
               "Charge-state ratios against laser energy.", supplementary_figure_3,
               _laser_csr, "Supplementary Figure 3"),
    FigureSpec("field_by_laser", "Field against laser energy",
               "(a) O2+/O+ and (b) the Kingham-equivalent field of the coating (from its "
               "charge-state ratio, metal assumption) against laser energy.", field_by_laser,
               _laser_field),
    FigureSpec("field_collapse", "Simulator check: proxies against the true field",
               "(a) O2+/O+ measured in each simulated run against the true mean local field "
               "of its oxide ions, with the evaporation model's curve; (b) the coating's "
               "Kingham field measured by the study against the true field of the shell's "
               "Cr ions (open: what a noise-free analysis reads with the field map's spread). "
               "Drawn only for simulated runs.", field_collapse, _simulated),
    FigureSpec("spectra", "Mass spectra",
               f"The mass spectrum of each run (up to {MAX_RUNS}), log scale, its ranged "
               "windows shaded and labelled.", spectra, _no_spectrum_comparison),
    FigureSpec("compositions", "Compositions",
               "The composition of each row in its ROI (at.%, log scale), 1-sigma counting "
               "errors.", compositions, _any_study),
    FigureSpec("maps", "Detector and atom maps",
               f"Per run (up to {MAX_RUNS}): the detector hit map, the XY view along z and an "
               "XZ slice of the three major elements.", maps, _no_coating_maps),
    FigureSpec("profiles", "Composition profiles",
               f"Composition against depth in each run's ROI (up to {MAX_RUNS} runs), 1-sigma "
               "counting errors.", profiles, _no_coating_maps),
    FigureSpec("voltage_histories", "Voltage histories",
               "Standing voltage along each run; runs flagged early_fracture end in a cross.",
               voltage_histories, _any_study),
    FigureSpec("yield_by_coating", "Yield by coating",
               "Runs that ran to their end, and runs that fractured early, per coating.",
               yield_by_coating, _two_coating_states),
    FigureSpec("mrp_by_coating", "Mass resolving power and tails by coating",
               "MRP at FWHM and FW10%M and the thermal tail of the reference peaks, coated "
               "against uncoated.", mrp_by_coating, _reference_peaks),
)
