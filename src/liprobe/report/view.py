"""``liprobe view``: one self-contained interactive HTML page of a single run.

The page holds, in order: a title and what was read, the composition of the
region of interest (at.% with one-sigma errors, each rounded to two
significant digits of its error), the mass spectrum of the whole run with the
range windows shaded (and, with another run to compare, the two runs' spectra
each normalised to its ions, overlaid), the detector hit map (or a one-line note when the file
has no detector columns, as a ``.pos``), and a rotatable 3-D atom map of a
seeded subsample with the ROI outlined. The figures are plotly's
(:mod:`liprobe.report.interactive`); plotly.js is embedded once, inline, so the
page opens with no network.
"""

from __future__ import annotations

import html
import os
import time

from ..errors import AnalysisError
from .interactive import (
    atom_map_figure,
    composition_figure,
    detector_figure,
    figure_html,
    has_detector,
    overlay_figure,
    plotly_script,
    run_label,
    spectrum_figure,
)

__all__ = ["build_view", "format_value_error", "DEFAULT_MAX_IONS"]

#: Ions drawn in the page's atom map by default. plotly.js alone is 4.8 MB; each
#: drawn ion costs about 18 bytes (x, y, z as float32 in base64), so 50,000 ions keep a
#: page near 5.8 MB.
DEFAULT_MAX_IONS = 50_000


def format_value_error(value: float | None, error: float | None) -> str:
    """``value ± error`` as everywhere in the report
    (:func:`liprobe.report.numbers.value_error`): the error rounded to two significant
    digits and the value to the same decimal place, ``12.346 ± 0.012``."""
    from .numbers import value_error

    return value_error(value, error)


_CSS = """
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 1100px;
       padding: 0 1em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.6em; }
table { border-collapse: collapse; } td, th { padding: 0.2em 0.8em; text-align: right; }
th { border-bottom: 1px solid #888; } td:first-child, th:first-child { text-align: left; }
.note { color: #555; } .figure { height: 560px; } .small { height: 380px; }
.atoms { height: 720px; }
"""


def _composition_table(c) -> str:
    rows = []
    for el, n in c.atom_counts.items():
        pct = c.atomic_percent.get(el)
        err = c.atomic_percent_error.get(el)
        rows.append(f"<tr><td>{html.escape(el)}</td><td>{int(n):,}</td>"
                    f"<td>{html.escape(format_value_error(pct, err))}</td></tr>")
    return ("<table id=\"composition\"><thead><tr><th>element</th><th>atoms</th>"
            "<th>at.% (± 1 sigma)</th></tr></thead><tbody>" + "".join(rows)
            + "</tbody></table>")


def build_view(path, ranges_path, out_html, roi: str | None = "cylinder:25",
               max_ions: int = DEFAULT_MAX_IONS, label: str | None = None,
               seed: int = 0, compare=None, compare_label: str | None = None) -> dict:
    """Write ``out_html``: one self-contained interactive page of the run in ``path``.

    Parameters
    ----------
    path : str or path
        The run (``.pos``, ``.epos``, ``.apt``, ``.nxs``).
    ranges_path : str or path
        Its range file (``.rrng``, ``.rng``).
    out_html : str or path
        The page to write (must end in ``.html``); written atomically.
    roi : str or None
        The region of interest whose composition is tabled and which the atom map
        outlines (``cylinder:25``, ``sphere:D@X,Y,Z``, ``box:...``, ``core``); None or
        ``"none"``: the whole run.
    max_ions : int
        Most ions in the atom map (a seeded sample, ``seed``). The default keeps the
        page under 6 MB (:data:`DEFAULT_MAX_IONS`).
    label : str, optional
        The run's name in the page and every hover text (default: the file's stem).
    seed : int
    compare : str or path, optional
        Another run: its spectrum and this run's, each normalised to its own ions, are
        overlaid in one more figure (the same range windows shaded).
    compare_label : str, optional
        The other run's name (default: its file's stem).

    Returns
    -------
    dict
        ``html`` (the path), ``bytes`` (its size), ``label``, ``ions`` (the run's),
        ``ions_selected`` (in the ROI), ``roi`` (its description, or None), ``compare``
        (the other run's file, label and ions, or None),
        ``figures`` (the plotly figures written, by name), ``atom_map`` (ions
        sampled, drawn, unranged left out), ``detector_note`` (why there is no
        detector map, or None), ``composition`` (at.% and errors), ``seconds``.

    Raises
    ------
    AnalysisError
        ``out_html`` not ending in ``.html`` or in a folder that does not exist, a ROI
        holding no ions; the readers' errors (missing or bad files) as they are.
    """
    from ..composition import composition
    from ..io import read, read_ranges
    from ..io._files import atomic_write_text

    t0 = time.perf_counter()
    out_html = os.fspath(out_html)
    if not out_html.lower().endswith(".html"):
        raise AnalysisError("the page is HTML: give an output file name ending in .html",
                            out_html)
    folder = os.path.dirname(os.path.abspath(out_html))
    if not os.path.isdir(folder):                 # before the work, not after it
        raise AnalysisError("folder does not exist", folder)
    if max_ions < 1:
        raise ValueError(f"max_ions must be at least 1, got {max_ions}")
    table = read_ranges(ranges_path)
    run = read(path)
    name = run_label(run, label)
    selection = None
    sel = run
    if roi is not None and str(roi).strip().lower() != "none":
        from ..spatial.roi import select

        sel, selection = select(run, roi, None, table)
    comp = composition(sel.chunks("mass"), table)

    figures: dict[str, str] = {"composition": "liprobe-composition"}
    bars = figure_html(composition_figure(comp, label=name), "liprobe-composition")
    parts: list[str] = [f"<div class=\"small\">{bars}</div>"]
    spec = spectrum_figure(run, table, labels=[name])
    figures["spectrum"] = "liprobe-spectrum"
    parts.append("<h2>Mass spectrum</h2><p class=\"note\">All ions of the run, 0.01 Da "
                 "bins, log scale; the range windows shaded (hover one for its ion).</p>"
                 f"<div class=\"figure\">{figure_html(spec, 'liprobe-spectrum')}</div>")
    other = None
    if compare is not None:
        other = read(compare)
        other_name = run_label(other, compare_label)
        if other_name == name:
            other_name += " (compared)"
        lay = overlay_figure(run, other, table, labels=[name, other_name],
                             title=f"{name} and {other_name}, each normalised to its ions")
        figures["overlay"] = "liprobe-overlay"
        parts.append("<h2>Compared with another run</h2><p class=\"note\">"
                     f"{html.escape(name)} and {html.escape(other_name)} "
                     f"({html.escape(os.fspath(compare))}, {other.n_ions:,} ions), each "
                     "bin divided by its run's ions in the window, log scale; the range "
                     "windows shaded.</p>"
                     f"<div class=\"figure\">{figure_html(lay, 'liprobe-overlay')}</div>")
    detector_note = None
    parts.append("<h2>Detector hit map</h2>")
    if has_detector(run):
        det = detector_figure(run, label=name)
        figures["detector"] = "liprobe-detector"
        parts.append(f"<div class=\"figure\">{figure_html(det, 'liprobe-detector')}</div>")
    else:
        detector_note = (f"no detector map: this {run.format or ''} file holds no detector "
                         "hit positions (det_x, det_y)")
        parts.append(f"<p class=\"note\" id=\"detector-note\">{html.escape(detector_note)}</p>")
    atoms = atom_map_figure(run, table, max_ions=max_ions, seed=seed, roi=selection,
                            label=name)
    figures["atom_map"] = "liprobe-atom-map"
    meta = dict(atoms.layout.meta)
    parts.append("<h2>Atom map</h2><p class=\"note\">"
                 f"{meta['ions_drawn']:,} ranged ions of a seeded sample of "
                 f"{meta['ions_sampled']:,} (of {run.n_ions:,}); "
                 f"{meta['unranged_left_out']:,} unranged ions left out"
                 + (f"; the ROI ({html.escape(selection['description'])}) outlined"
                    if selection else "") + ". Drag to rotate, scroll to zoom.</p>"
                 f"<div class=\"atoms\">{figure_html(atoms, 'liprobe-atom-map')}</div>")

    where = (html.escape(selection["description"]) if selection else "the whole run")
    head = (f"<h1>{html.escape(name)}</h1>"
            f"<p>{html.escape(os.fspath(path))}: {run.n_ions:,} ions "
            f"({html.escape(run.format or 'unknown format')}); ranges "
            f"{html.escape(os.fspath(ranges_path))} ({len(table)} windows, "
            f"{len(table.ions)} ions).</p>"
            f"<h2>Composition</h2><p class=\"note\">In {where}: {sel.n_ions:,} ions, "
            f"{comp.ions_ranged:,} ranged; one-sigma counting errors, each value rounded "
            "to two significant digits of its error.</p>" + _composition_table(comp))
    page = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(name)}: liprobe view</title>"
            f"<style>{_CSS}</style>{plotly_script()}</head><body>"
            + head + "".join(parts) + "</body></html>\n")
    atomic_write_text(out_html, page)
    return {
        "html": out_html, "bytes": os.path.getsize(out_html), "label": name,
        "file": os.fspath(path), "ranges": os.fspath(ranges_path),
        "ions": int(run.n_ions), "ions_selected": int(sel.n_ions),
        "roi": selection, "figures": figures,
        "compare": None if other is None else {"file": os.fspath(compare),
                                               "label": other_name,
                                               "ions": int(other.n_ions)},
        "atom_map": {k: meta[k] for k in ("ions_sampled", "ions_drawn", "unranged_left_out",
                                          "seed")},
        "detector_note": detector_note,
        "composition": {"atomic_percent": dict(comp.atomic_percent),
                        "atomic_percent_error": dict(comp.atomic_percent_error),
                        "ions_ranged": int(comp.ions_ranged)},
        "seconds": round(time.perf_counter() - t0, 3),
    }
