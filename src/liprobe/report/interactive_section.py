"""The report's interactive figures (plotly): what each study gets, drawn from its runs.

:func:`interactive_figures` chooses and draws, from the study's table and its run
files:

- the mass spectrum of every run (one trace per data file, log scale, the flagship
  run's range windows shaded and named on hover; a click on a legend entry hides or
  shows a run);
- a normalised overlay of two runs: an uncoated and a coated run at the same laser
  energy when the study has them, else its first two runs;
- each of the study's ratios against its first field proxy, one point per row,
  hover naming the row, with its counting errors;
- a rotatable 3-D atom map of the flagship run (a seeded sample of
  :data:`ATOM_MAP_IONS` ions, one trace per ion) with its ROI drawn, drawn once the
  page has loaded (WebGL, the slowest figure, does not hold up the rest);
- the flagship run's detector hit map (or the first run's whose file has detector
  coordinates).

The flagship run is the first coated run of the study's main material, else its
first analysed run. A figure that cannot be drawn is left out with its reason
(never an error of the report). Figures are built by :mod:`liprobe.report.interactive`;
plotly.js is embedded once in the page (:func:`~liprobe.report.interactive.plotly_script`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import LiprobeError
from .groups import StudyGroups, is_missing, number
from .sources import row_label

__all__ = ["InteractiveFigure", "interactive_figures", "ATOM_MAP_IONS", "MAX_SPECTRA"]

#: Ions in the report's 3-D atom map (a seeded sample of the flagship run).
ATOM_MAP_IONS = 100_000
#: Most runs in the spectra figure (one trace each).
MAX_SPECTRA = 40
#: Runs drawn when the page opens; the others are shown by a click on their legend entry.
SPECTRA_SHOWN = 4
#: Ratios drawn against the field proxy (one figure each).
MAX_RATIOS = 3


@dataclass(frozen=True)
class InteractiveFigure:
    """One plotly figure of the report: its key (the div's id is ``liprobe-KEY``), title,
    caption, HTML ``<div>`` and the plotly figure itself."""

    key: str
    title: str
    caption: str
    html: str
    figure: Any = field(default=None, repr=False, compare=False)


def run_name(label: str) -> str:
    """The run of a row label (``run`` of ``run[segment]``)."""
    return label.split("[", 1)[0]


def _whole_runs(frame, runs) -> list[str]:
    """Labels of the first row of each data file (a run, not its segments), in order."""
    seen, out = set(), []
    for _, r in frame.iterrows():
        label = row_label(r)
        if label not in runs:
            continue
        data = runs.spec(label).data
        if data and data not in seen:
            seen.add(data)
            out.append(label)
    return out


def _flagship(g: StudyGroups, runs) -> str | None:
    for frame in (g.coated, g.ok):
        labels = _whole_runs(frame, runs)
        if labels:
            return labels[0]
    return None


def _overlay_pair(g: StudyGroups, runs) -> tuple[str, str] | None:
    u: dict = {}
    c: dict = {}
    for frame, d in ((g.uncoated, u), (g.coated, c)):
        for _, r in frame.iterrows():                 # the first row of each laser energy
            if row_label(r) in runs:
                d.setdefault(number(r.get("laser_pj")), row_label(r))
    common = sorted(k for k in set(u) & set(c) if k is not None)
    if common:
        return u[common[0]], c[common[0]]
    labels = _whole_runs(g.ok, runs)
    return (labels[0], labels[1]) if len(labels) >= 2 else None


def _ratio_rows(frame, x: str, y: str) -> list[dict]:
    rows = []
    for _, r in frame.iterrows():
        xv, yv = number(r.get(x)), number(r.get(y))
        if xv is None or yv is None:
            continue
        e = r.get(f"{y}_err")
        rows.append({"name": row_label(r), x: xv, y: yv,
                     f"{y}_err": None if is_missing(e) else number(e)})
    return rows


def _after_load(html: str) -> str:
    """A figure's ``<div>`` whose plotly call waits for the page's load event: the 3-D map
    (drawn with WebGL, the slowest figure) then does not hold up the rest of the page."""
    if html.count("<script>") != 1 or html.count("</script>") != 1:
        return html
    return html.replace("<script>", '<script>window.addEventListener("load", function () {',
                        1).replace("</script>", "});</script>", 1)


def interactive_figures(table, runs, params) -> tuple[list[InteractiveFigure], dict]:
    """The report's plotly figures for this study, and ``{figure: reason}`` of those left
    out (see the module text)."""
    from . import interactive as ia

    g = StudyGroups(table)
    out: list[InteractiveFigure] = []
    left: dict = {}
    if runs is None:
        return out, {"all": "the study's run files are not known"}
    flag = _flagship(g, runs)

    def add(key, title, caption, build, after_load=False):
        try:
            fig = build()
        except (LiprobeError, OSError, ValueError) as e:
            left[key] = " ".join(str(e).split())
            return
        if fig is None:
            return
        html = ia.figure_html(fig, f"liprobe-{key}")
        if after_load:
            html = _after_load(html)
        out.append(InteractiveFigure(key, title, caption, html, fig))

    labels = _whole_runs(g.ok, runs)[:MAX_SPECTRA]

    def whole(lab):
        """The run of a row's file, every segment (None when it cannot be read)."""
        try:
            return runs.whole_run(lab)
        except (LiprobeError, OSError, ValueError) as e:
            left[f"run {lab}"] = " ".join(str(e).split())
            return None

    def spectra():
        pairs = [(lab, whole(lab)) for lab in labels]
        pairs = [(lab, w[0]) for lab, w in pairs if w is not None]
        if not pairs:
            raise LiprobeError("no run's file could be read")
        names = [run_name(lab) for lab, _ in pairs]
        ranges = whole(flag)[1] if flag and whole(flag) else None
        fig = ia.spectrum_figure([r for _, r in pairs], ranges, labels=names,
                                 title="Mass spectra (0.01 Da bins)")
        labels[:] = names
        # the first SPECTRA_SHOWN runs drawn, the others one legend click away: the page
        # opens fast whatever the number of runs
        shown = set(labels[:SPECTRA_SHOWN]) | {run_name(flag) if flag else ""}
        for t in fig.data:
            if t.name in labels and t.name not in shown:
                t.visible = "legendonly"
        return fig

    add("spectra", "Mass spectra", f"Every run of the study ({len(labels)}; the first "
        f"{min(SPECTRA_SHOWN, len(labels))} drawn, click a run in the legend to show or hide "
        f"it), log scale; the range windows of {flag} shaded (hover one for its ion); drag "
        "to zoom.", spectra)

    pair = _overlay_pair(g, runs)

    def overlay():
        if pair is None:
            raise LiprobeError("fewer than two analysed runs")
        (a, ranges), (b, _) = (runs.load(lab) for lab in pair)   # the rows' own ions
        return ia.overlay_figure(a, b, ranges, labels=list(pair),
                                 title=f"{pair[0]} and {pair[1]}, each normalised to its "
                                       "total")

    add("overlay", "Two runs overlaid",
        "" if pair is None else f"{pair[0]} and {pair[1]}, each divided by its ions in the "
        "window.", overlay)

    proxies = [p for p in getattr(params, "field_proxies", ()) or () if p in table.columns]
    ratios = [r for r in getattr(params, "ratios", ()) or () if r in table.columns]
    groups = [("uncoated", g.uncoated), ("coated", g.coated), ("another phase", g.other_phase),
              ("reference material", g.reference)]
    if proxies:
        x = proxies[0]
        for i, y in enumerate(ratios[:MAX_RATIOS]):
            def ratio(y=y):
                fig = None
                for name, frame in groups:            # one trace (colour) per part of the study
                    rows = _ratio_rows(frame, x, y)
                    if not rows:
                        continue
                    f = ia.scatter_figure(rows, x, y, yerr=f"{y}_err", name_col="name",
                                          x_title=x, y_title=y,
                                          title=f"{y} against the field proxy {x}")
                    for t in f.data:
                        t.name, t.showlegend = name, True
                    if fig is None:
                        fig = f
                    else:
                        fig.add_traces(list(f.data))
                if fig is None:
                    raise LiprobeError(f"no analysed row has both {y} and {x}")
                return fig

            add(f"ratio-{i + 1}", f"{y} against {x}",
                "One point per analysed row (hover for its name), one colour per part of the "
                "study; error bars one sigma.", ratio)
        for y in ratios[MAX_RATIOS:]:
            left[f"ratio {y}"] = f"only the first {MAX_RATIOS} ratios are drawn"
    elif ratios:
        left["ratios"] = "the study names no field proxy that its table holds"

    if flag is None:
        left["atom-map"] = left["detector"] = "no analysed run"
    else:
        def atoms():
            run, ranges = runs.load(flag)             # the row's ions (its segment)
            spec = runs.spec(flag)
            return ia.atom_map_figure(run, ranges, max_ions=ATOM_MAP_IONS, roi=spec.roi,
                                      label=flag, title=f"Atom map of {flag}")

        add("atom-map", f"Atom map of {flag}",
            f"A seeded sample of at most {ATOM_MAP_IONS:,} ions of {flag}, one colour per ion "
            "(click the legend to hide one), the ROI outlined; drag to turn, scroll to zoom.",
            atoms, after_load=True)

        # the detector map of the flagship run, or of the first run whose file has
        # detector coordinates (a .pos has none)
        def readable_with_detector(lab) -> bool:
            try:
                return ia.has_detector(runs.load(lab)[0])
            except (LiprobeError, OSError, ValueError):
                return False

        det = next((lab for lab in [flag] + _whole_runs(g.coated, runs) + labels
                    if readable_with_detector(lab)), None)

        def detector():
            if det is None:
                raise LiprobeError("no run's file has detector coordinates")
            return ia.detector_figure(runs.load(det)[0], label=det)

        add("detector", f"Detector hits of {det or flag}",
            "Hits per bin on the detector (mm).", detector)
    return out, left
