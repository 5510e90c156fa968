"""The report: every figure of a finished study and one self-contained HTML file.

:func:`build_report` is ``liprobe report OUT``: it reads the study's table
(``OUT/runs.parquet``), draws the figures of :data:`~liprobe.report.figures.FIGURES`
that apply to the study into ``OUT/figures/`` (PNG and SVG: coating comparisons for
coated and uncoated runs, field-proxy plots for a laser-energy series, the particle
spread for several particles, each run's spectrum, maps and profile for a study
without a coating comparison; the others are left out, their reasons kept in
``left_out`` and in one note of the page; the paper's figure numbers only with
``numbering="paper"``), writes ``OUT/figures/supplementary_table_1.csv``
and ``OUT/reporting_table.csv``, each grain's proxigram
(``OUT/grains/<row>.proxigram.csv`` and ``OUT/figures/grain_proxigram_<row>.png``,
:mod:`liprobe.report.grains`), the scorecard of the paper's nine claims
(``OUT/scorecard.json``) and, for a simulated series, the recovery table
(``OUT/recovery.csv``) (:mod:`liprobe.report.scorecard`), and writes
``OUT/report.html``, opening with the scorecard (a study of the paper's kind): the
figures embedded as PNG data, values rounded to their errors
(:mod:`liprobe.report.numbers`), the results table sortable and filterable
(:mod:`liprobe.report.table_html`, its few lines of script included once), no network,
one file to send.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import json
import math
import os
import time
from dataclasses import dataclass, field

from .._version import __version__
from ..errors import LiprobeError
from ..io._files import atomic_write_text, csv_safe_frame, open_regular
from .figures import FIGURES, FigureSkipped, supplementary_table_1
from .flagtext import flag_tests
from .groups import StudyGroups, flag_set, number, plain_records
from .numbers import plain, value_error
from .reporting import ERRORS, RANGING_CONVENTIONS, reporting_rows
from .sources import RunFiles, row_label, study_params_from_records
from .table_html import SORT_SCRIPT, results_table_html

__all__ = ["ReportResult", "build_report", "load_table", "params_from_dict"]


@dataclass
class ReportResult:
    """What :func:`build_report` wrote.

    Attributes
    ----------
    html : str
        The report's path.
    figures : dict
        Figure name -> paths written (PNG, SVG).
    skipped : dict
        Figure name -> why a figure that applies to the study could not be drawn (an
        unreadable file, say).
    left_out : dict
        Figure name -> why it does not apply to the study (no coated run, no
        laser-energy series ...; :meth:`~liprobe.report.figures.FigureSpec.why_not`):
        not drawn, not tried, listed in one note of the report.
    tables : dict
        ``supplementary_table_1``, ``reporting_table``, ``scorecard`` (JSON),
        ``recovery`` -> paths.
    seconds : dict
        Figure name -> seconds spent drawing it (and ``total``).
    scorecard : list
        The paper's nine claims measured on the study
        (:class:`~liprobe.report.scorecard.ClaimResult`).
    interactive : dict
        Interactive (plotly) figure key -> its title, in the page
        (:mod:`liprobe.report.interactive_section`).
    interactive_left_out : dict
        Interactive figure key -> why it is not in the page.
    """

    html: str
    figures: dict = field(default_factory=dict)
    interactive: dict = field(default_factory=dict)
    interactive_left_out: dict = field(default_factory=dict)
    skipped: dict = field(default_factory=dict)
    left_out: dict = field(default_factory=dict)
    tables: dict = field(default_factory=dict)
    seconds: dict = field(default_factory=dict)
    scorecard: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"html": self.html, "figures": self.figures, "skipped": self.skipped,
                "left_out": self.left_out, "interactive": self.interactive,
                "interactive_left_out": self.interactive_left_out, "tables": self.tables,
                "seconds": self.seconds}


def load_table(out_dir):
    """The study's table from ``OUT/runs.parquet`` (LiprobeError if it is not there)."""
    import pandas as pd

    p = os.path.join(os.fspath(out_dir), "runs.parquet")
    if not os.path.exists(p):
        raise LiprobeError(f"{p}: no such file (is {os.fspath(out_dir)} the output folder of "
                           "`liprobe study`?)")
    try:
        return pd.read_parquet(p)
    except (OSError, ValueError) as e:
        raise LiprobeError(f"{p}: cannot read the study's table ({e})") from None


def _read_summary(path) -> dict:
    """What the report uses of the study's ``summary.json`` (``study``, ``wall_s``); {} if
    there is none, and {} with a :class:`~liprobe.study.cache.CacheWarning` naming the
    file if it is not the JSON object `liprobe study` writes."""
    import warnings

    from ..study.cache import CacheWarning

    if not os.path.exists(path):
        return {}
    try:
        with open_regular(path) as f:
            d = json.load(f, parse_constant=lambda c: None)
    except (OSError, ValueError, RecursionError) as e:
        why = f"unreadable: {' '.join(str(e).split())}"
    else:
        if isinstance(d, dict):
            out = {}
            if isinstance(d.get("study"), str):
                out["study"] = d["study"]
            w = d.get("wall_s")
            if isinstance(w, (int, float)) and not isinstance(w, bool) and math.isfinite(w):
                out["wall_s"] = float(w)
            return out
        why = f"not a JSON object but {type(d).__name__}"
    warnings.warn(f"{path}: ignored ({why})", CacheWarning, stacklevel=2)
    return {}


def params_from_dict(d: dict | None):
    """A :class:`~liprobe.study.manifest.StudyParams` from its ``to_dict()`` (None: None)."""
    if not d or not isinstance(d, dict):
        return None
    from ..study.manifest import CoatingProfileConfig, DetectorConfig, FdaConfig, StudyParams

    def tup(v):
        return tuple(v) if isinstance(v, list) else v

    try:
        kw = {k: tup(v) for k, v in d.items()
              if k not in ("fda", "detector", "coating_profile")}
        if "fda" in d:
            kw["fda"] = FdaConfig(**{k: tup(v) for k, v in d["fda"].items()})
        if "detector" in d:
            kw["detector"] = DetectorConfig(**d["detector"])
        if "coating_profile" in d:
            kw["coating_profile"] = CoatingProfileConfig(**d["coating_profile"])
        return StudyParams(**kw)
    except (TypeError, ValueError, AttributeError, LiprobeError):
        return None         # a record written by another version of liprobe, or malformed


# --------------------------------------------------------------------------
# HTML pieces
# --------------------------------------------------------------------------

def _e(v) -> str:
    return html.escape("" if v is None else str(v))


def _cell(v) -> str:
    if v is None:
        return '<td class="na">n/a</td>'
    if isinstance(v, float):
        return f"<td>{_e(plain(v))}</td>"
    return f"<td>{_e(v)}</td>"


def _table(headers, rows, cls="") -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(_cell(v) for v in r) + "</tr>" for r in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _png_data(path) -> str:
    with open(path, "rb") as f:
        return "data:image/png;base64," + base64.b64encode(f.read()).decode("ascii")


_CSS = """
body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:1.5em auto;
max-width:1400px;padding:0 1em;color:#222;line-height:1.4}
h1{font-size:1.6em;margin-bottom:.2em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;
margin-top:2em}
table{border-collapse:collapse;font-size:12px;margin:.5em 0}
th,td{border:1px solid #ddd;padding:3px 6px;text-align:left;vertical-align:top}
th{background:#f2f4f7}td.na{color:#999}
.wide{overflow-x:auto;max-width:100%}
figure{margin:1.5em 0;padding:.5em;border:1px solid #eee}
figure img{max-width:100%;height:auto;display:block}
figcaption{font-size:13px;color:#333;margin-top:.4em}
.skipped{color:#8a4b00;background:#fff6e5;padding:.4em .6em;border-left:3px solid #e0a030}
.note{color:#555;font-size:13px}.flag{font-weight:600;color:#a01818}
code{background:#f4f4f4;padding:0 3px}nav a{margin-right:1em}
table.scorecard tr.reproduced td{background:#eef8ee}table.scorecard tr.partly td{background:#fff7e3}
table.scorecard tr.not td{background:#fbeeee}
"""


def _fmt3(v) -> str:
    return "n/a" if v is None else f"{v:.3g}"


def _group_summary(g: StudyGroups, fda_col: str) -> tuple:
    """At a glance: per part of the study, its rows, flags and the median of each ratio
    with its error (:func:`liprobe.report.scorecard._group`) and range."""
    from .scorecard import _group
    from .table_html import results_columns

    paper = [("Li/(Li+Ni+Co+Mn)", "Li/(Li+Ni+Co+Mn)"), ("Ni/(Ni+Co+Mn)", "Ni/(Ni+Co+Mn)"),
             ("O/(Li+O+Ni+Co+Mn)", "O/(Li+O+Ni+Co+Mn)"), ("O2+/O+", "O2+/O+"),
             ("Mn++/Mn+", "Mn++/Mn+")]
    cols = [(c, name) for c, name in paper if c in g.table]
    if not cols:        # a study of other ratios: its own (Si/(Si+O), Si++/Si+ ...)
        cols = [(c, c) for c in results_columns(g.table) if "/" in c][:5]
    cols += [(fda_col, f"mu of {fda_col[len('fda_mu_'):]}"),
             ("detector_heterogeneity", "detector heterogeneity")]
    cols = [(c, name) for c, name in dict.fromkeys(cols) if c in g.table]
    if g.main is None:                      # no material listed: every row is one part
        parts = [("every row", g.ok)]
    else:
        parts = [(f"{g.main}, uncoated", g.uncoated), (f"{g.main}, coated", g.coated),
                 ("another phase (flagged other_phase)", g.other_phase),
                 ("reference material(s)", g.reference)]
    headers = ["part of the study", "rows", "flags"] + [f"median {n} ± 1σ [min, max]"
                                                         for _, n in cols]
    rows = []
    for name, frame in parts:
        if not len(frame):
            continue
        flags: dict = {}
        for f in frame.get("flags", []):
            for x in sorted(flag_set(f)):       # sorted: the same page whatever the hash seed
                flags[x] = flags.get(x, 0) + 1
        r = [name, len(frame), ", ".join(f"{k} x{v}" for k, v in flags.items()) or "none"]
        for c, _ in cols:
            vals = sorted(v for v in map(number, frame[c]) if v is not None)
            if not vals:
                r.append(None)
                continue
            m, err, _ = _group(frame, c)
            r.append(f"{value_error(m, err, column=c)} [{plain(vals[0], 3)}, "
                     f"{plain(vals[-1], 3)}]")
        rows.append(r)
    return headers, rows


def _ranging_tables(table, runs) -> tuple[dict, list]:
    """Row label -> range table id, and [(id, title, RangeTable)] (one per distinct file)."""
    ids: dict = {}
    tables: list = []
    by_key: dict = {}
    if runs is None:
        return ids, tables
    for _, r in table.iterrows():
        label = row_label(r)
        if label not in runs:
            continue
        spec = runs.spec(label)
        key = spec.ranges or ("autorange", spec.data, spec.autorange)
        if key not in by_key:
            try:
                _, rt = runs.whole_run(label)
            except LiprobeError:
                continue
            rid = f"R{len(tables) + 1}"
            title = (os.path.basename(spec.ranges) if spec.ranges else
                     f"autorange of {os.path.basename(spec.data or '')} "
                     f"({', '.join(spec.autorange or ())})")
            by_key[key] = rid
            tables.append((rid, title, rt))
        ids[label] = by_key[key]
    return ids, tables


def _range_table_html(rid, title, rt, used_by) -> str:
    rows = []
    for r in rt.ranges:
        rows.append([r.ion.name, f"{r.lo:.3f}", f"{r.hi:.3f}", f"{r.hi - r.lo:.3f}",
                     None if r.volume is None else f"{r.volume:.4g}"])
    warn = "".join(f"<li>{_e(w)}</li>" for w in getattr(rt, "warnings", ()) or ())
    return (f'<details id="{rid}"><summary><b>{rid}</b>: {_e(title)}: {len(rt.ranges)} windows '
            f"of {len(rt.ions)} ions; used by {len(used_by)} row(s)</summary>"
            + (f"<ul>{warn}</ul>" if warn else "")
            + _table(["ion", "lo (Da)", "hi (Da)", "width (Da)", "volume (nm3)"], rows)
            + "</details>")


def _params_html(params, rules, materials, extra) -> str:
    items = []
    if params is not None:
        for k, v in params.to_dict().items():
            items.append([k, json.dumps(v)])
    if rules is not None:
        from dataclasses import asdict

        for k, v in asdict(rules).items():
            items.append([f"flags.{k}", json.dumps(v)])
    for name, f in (materials or {}).items():
        items.append([f"materials.{name}", f])
    for k, v in (extra or {}).items():
        items.append([k, v if isinstance(v, str) else json.dumps(v)])
    if not items:
        return '<p class="note">The study\'s parameters are not recorded in this folder.</p>'
    return _table(["parameter", "value"], items)


# --------------------------------------------------------------------------
# the report
# --------------------------------------------------------------------------

def build_report(out_dir, manifest=None, html_path=None, source: str | None = None,
                 table=None, runs=None, figures=FIGURES, progress=None,
                 numbering: str = "descriptive") -> ReportResult:
    """Draw the figures of a finished study and write its self-contained HTML report.

    Parameters
    ----------
    out_dir : str or path
        The study's output folder (``runs.parquet``, ``cache/``).
    manifest : Manifest or path, optional
        The study's manifest: where the runs are and the study's parameters.
        Without it both are read from the cache records of ``out_dir``.
    html_path : str, optional
        Default ``out_dir/report.html``.
    source : str, optional
        A sentence on where the data come from (``liprobe demo`` says which
        simulated series it analysed).
    table : DataFrame, optional
        The study's table (default: read from ``out_dir``).
    runs : RunFiles, optional
    figures : sequence of FigureSpec
    progress : callable, optional
        Called with ``(name, state, seconds)`` after each figure drawn or skipped (not
        for those left out).
    numbering : str
        ``"paper"``: the figures carry the seed paper's numbers ("Figure 1",
        "Supplementary Table 1"; the paper preset, ``liprobe demo``); otherwise
        (``"descriptive"``, the default) descriptive titles only.

    Returns
    -------
    ReportResult
    """
    from ..study.phases import builtin_phases

    t0 = time.perf_counter()
    out_dir = os.path.abspath(os.fspath(out_dir))
    if table is None:
        table = load_table(out_dir)
    rules = None
    name = None
    if manifest is not None:
        if not hasattr(manifest, "runs"):
            from ..study import load_manifest

            manifest = load_manifest(manifest)
        params, rules, materials = manifest.params, manifest.rules, dict(manifest.materials)
        name = manifest.name
        if runs is None:
            runs = RunFiles.from_manifest(manifest)
    else:
        params = params_from_dict(study_params_from_records(out_dir))
        materials = dict(builtin_phases())
        if runs is None:
            runs = RunFiles.from_study_folder(out_dir)
    summary = _read_summary(os.path.join(out_dir, "summary.json"))
    name = name or summary.get("study") or os.path.basename(out_dir)

    fig_dir = os.path.join(out_dir, "figures")
    os.makedirs(fig_dir, exist_ok=True)
    result = ReportResult(html=os.path.abspath(html_path or os.path.join(out_dir,
                                                                          "report.html")))
    groups = StudyGroups(table)
    for spec in figures:
        t = time.perf_counter()
        why = spec.why_not(table, groups, runs) if hasattr(spec, "why_not") else None
        if why:
            result.left_out[spec.name] = why
            continue
        kw = {"numbering": numbering} if _takes_numbering(spec.func) else {}
        try:
            result.figures[spec.name] = spec.func(table, fig_dir, runs=runs, params=params,
                                                  materials=materials, **kw)
            state = "drawn"
        except FigureSkipped as e:
            result.left_out[spec.name] = str(e)     # the study holds nothing to draw it from
            continue
        except (LiprobeError, OSError, ValueError) as e:
            result.skipped[spec.name] = " ".join(str(e).split())
            state = "skipped"
        result.seconds[spec.name] = time.perf_counter() - t
        if progress is not None:
            progress(spec.name, state, result.seconds[spec.name])
    for stem in result.left_out:            # an earlier report's file of it would mislead
        for ext in ("png", "svg"):
            p = os.path.join(fig_dir, f"{stem}.{ext}")
            if os.path.isfile(p):
                os.remove(p)
    grains = _grains(table, out_dir, fig_dir, result, progress)

    st1 = supplementary_table_1(table, params)
    if st1 is not None:
        p = os.path.join(fig_dir, "supplementary_table_1.csv")
        atomic_write_text(p, csv_safe_frame(st1).to_csv())
        result.tables["supplementary_table_1"] = p
    ranging_ids, range_tables = _ranging_tables(table, runs)
    rep = reporting_rows(table, runs, params, ranging_ids)
    if rep:
        import pandas as pd

        p = os.path.join(out_dir, "reporting_table.csv")
        atomic_write_text(p, csv_safe_frame(pd.DataFrame(rep)).to_csv(index=False))
        result.tables["reporting_table"] = p

    # the paper's nine claims only for a study of the paper's kind (said in the page); the
    # recovery table for any study with a simulator's truth
    recovery = _scorecard(table, out_dir, runs, result, progress,
                          _paper_study(table, numbering))

    from .interactive_section import interactive_figures

    t = time.perf_counter()
    interactive, result.interactive_left_out = interactive_figures(table, runs, params)
    result.interactive = {f.key: f.title for f in interactive}
    result.seconds["interactive"] = time.perf_counter() - t
    if progress is not None:
        progress("interactive", f"{len(interactive)} drawn", result.seconds["interactive"])

    doc = _document(name, table, summary, result, figures, st1, rep, range_tables,
                    ranging_ids, params, rules, materials, source, grains, recovery,
                    numbering, interactive)
    atomic_write_text(result.html, doc)
    result.seconds["total"] = time.perf_counter() - t0
    return result


def _takes_numbering(func) -> bool:
    """Whether a figure function takes ``numbering`` (a caller's own FigureSpec may not)."""
    import inspect

    try:
        params = inspect.signature(func).parameters
    except (TypeError, ValueError):
        return False
    return "numbering" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def _scorecard(table, out_dir, runs, result, progress, claims: bool = True):
    """The scorecard (``OUT/scorecard.json``, only with ``claims``: a study of the paper's
    kind) and, when a row has a simulator's truth, the recovery table
    (``OUT/recovery.csv``) (:mod:`liprobe.report.scorecard`), into ``result``; the
    recovery table (or None)."""
    from .scorecard import write_scorecard

    t = time.perf_counter()
    rec = None
    try:
        measured, rec, paths = write_scorecard(out_dir, table, runs=runs, claims=claims)
    except (LiprobeError, OSError, ValueError) as e:
        result.skipped["scorecard" if claims else "recovery"] = \
            f"cannot be computed: {' '.join(str(e).split())}"
    else:
        result.scorecard = measured
        if paths["scorecard"] is not None:
            result.tables["scorecard"] = paths["scorecard"]
        if rec is not None and len(rec) and rec["truth"].notna().any():
            result.tables["recovery"] = paths["recovery"]
        else:
            rec = None
            try:
                os.remove(paths["recovery"])       # no simulated run: no recovery test
            except OSError:
                pass
    result.seconds["scorecard"] = time.perf_counter() - t
    if progress is not None:
        if claims:
            progress("scorecard", "skipped" if "scorecard" in result.skipped else "written",
                     result.seconds["scorecard"])
        else:
            progress("recovery table", "skipped" if "recovery" in result.skipped else
                     "written" if rec is not None else "none (no truth)",
                     result.seconds["scorecard"])
    return rec


def _grains(table, out_dir, fig_dir, result, progress):
    """Each grain's proxigram, CSV and figure (:mod:`liprobe.report.grains`), into ``result``."""
    from .grains import GrainOutputs, figure_name, write_grain_outputs

    t = time.perf_counter()
    try:
        grains = write_grain_outputs(table, out_dir, fig_dir)
    except (LiprobeError, OSError, ValueError) as e:
        grains = GrainOutputs()
        result.skipped["grain_proxigrams"] = " ".join(str(e).split())
    for label, paths in grains.figures.items():
        result.figures[figure_name(label)] = paths
        result.tables[figure_name(label)] = grains.csv[label]
    for label, why in grains.skipped.items():
        result.skipped[figure_name(label)] = why
    result.seconds["grain_proxigrams"] = time.perf_counter() - t
    if progress is not None and (grains.figures or grains.skipped):
        progress("grain_proxigrams", "drawn" if grains.figures else "skipped",
                 result.seconds["grain_proxigrams"])
    return grains


def _grains_html(table, grains, params) -> str:
    from .grains import figure_name

    if "grain_volume_nm3" not in table:
        return '<p class="note">The study looked for no grain of another phase.</p>'
    ratios = [f"grain_{r}" for r in getattr(params, "ratios", ()) or ()
              if f"grain_{r}" in table]
    rows = []
    for _, r in table.iterrows():
        v = number(r.get("grain_volume_nm3"))
        if v is None:
            continue
        cells = [row_label(r), f"{v:.0f}"]
        for c in ("grain_depth_min_nm", "grain_depth_max_nm"):
            x = number(r.get(c))
            cells.append(None if x is None else f"{x:.1f}")
        for c in ratios:
            x = number(r.get(c))
            cells.append(None if x is None else value_error(x, r.get(f"{c}_err")))
        rows.append(cells)
    if not rows:
        return ('<p>No grain of another phase was found in any row (the reason of each is '
                "in the table's <code>reasons</code>).</p>")
    parts = ['<p class="note">A grain of another phase inside a run: an isosurface of the '
             "transition metals' cation fraction at the threshold midway between the matrix "
             "and the grain (chosen from each run's voxels); its composition from the ions "
             "inside it; the proxigram across it (negative inside).</p>",
             '<div class="wide">' + _table(["row", "volume (nm^3)", "z min (nm)", "z max (nm)"]
                                           + [c[len("grain_"):] + " ± 1σ"
                                              for c in ratios], rows) + "</div>"]
    for label, paths in grains.figures.items():
        png = next(p for p in paths if p.endswith(".png"))
        files = ", ".join(os.path.basename(p) for p in paths)
        csv = os.path.relpath(grains.csv[label], os.path.dirname(os.path.dirname(png)))
        parts.append(f'<figure id="{_e(figure_name(label))}"><img alt="proxigram of '
                     f'{_e(label)}" src="{_png_data(png)}"><figcaption>'
                     f"{_e(grains.captions.get(label, label))}. <span class=\"note\">"
                     f"(figures/{_e(files)}; {_e(csv)})</span></figcaption></figure>")
    for label, why in grains.skipped.items():
        parts.append(f'<p class="skipped">The proxigram of {_e(label)} is not drawn: '
                     f"{_e(why)}.</p>")
    return "\n".join(parts)


def _left_out_note(result, figures, numbering, extra=()) -> str:
    """One short note: why the report leaves figures out (each reason once), the figures
    themselves behind a click ("" if nothing is left out)."""
    titles = {s.name: (s.heading(numbering) if hasattr(s, "heading") else s.title)
              for s in figures}
    by_why: dict = {}
    for name, why in list(result.left_out.items()) + list(extra):
        by_why.setdefault(why, []).append(titles.get(name, name))
    if not by_why:
        return ""
    n = sum(len(v) for v in by_why.values())
    items = "".join(f"<li>{_e(', '.join(names))}: {_e(why)}</li>" for why, names in by_why.items())
    return (f'<div class="note" id="left-out">Left out, as this study holds nothing for them: '
            f"{n} figure{'s' if n > 1 else ''} or table{'s' if n > 1 else ''} "
            f"({_e('; '.join(by_why))}). <details><summary>which</summary><ul>{items}</ul>"
            "</details></div>")


def _paper_study(table, numbering) -> bool:
    """Whether the study is of the paper's kind (its scorecard and Li table apply): the
    paper preset, or a table with the paper's ratios of a Li cathode."""
    from .figures import FIELD_RATIOS

    return numbering == "paper" or any(c in table for c in FIELD_RATIOS)


def _document(name, table, summary, result, figures, st1, rep, range_tables, ranging_ids,
              params, rules, materials, source, grains=None, recovery=None,
              numbering="paper", interactive=()) -> str:
    from .scorecard import recovery_html, scorecard_html

    g = StudyGroups(table)
    paper = _paper_study(table, numbering)
    extra_left = []
    if not paper:
        extra_left.append(("the seed paper's scorecard", "the paper's claims are about "
                           "Li-ion cathodes"))
    if st1 is None:
        extra_left.append(("Li's mu by laser energy", "no frequency distribution of a Li "
                           "species"))
    mu_title = ("Supplementary Table 1: Li's mu by laser energy" if numbering == "paper"
                else "Li's mu by laser energy")
    fda_cols = [c for c in table.columns if str(c).startswith("fda_mu_Li")]
    fda_col = fda_cols[0] if fda_cols else "fda_mu_Li+"
    n_ok = len(g.ok)
    now = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    from .interactive import plotly_script

    js = plotly_script() if interactive else ""          # plotly.js once, inline, offline
    parts = [f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
             f"<title>{_e(name)}: liprobe report</title>"
             f"<link rel=\"icon\" href=\"data:,\"><style>{_CSS}</style>{js}</head><body>"]
    parts.append(f"<h1>{_e(name)}</h1>")
    if paper:
        parts.append('<h2 id="scorecard">Scorecard: the paper\'s nine claims</h2>')
        if result.scorecard:
            parts.append('<div class="wide">' + scorecard_html(result.scorecard) + "</div>")
        else:
            parts.append(f'<p class="skipped">No scorecard: '
                         f"{_e(result.skipped.get('scorecard', 'not computed'))}.</p>")
    mat = f"main material {_e(g.main)}." if g.main else "no material listed."
    parts.append(f"<p class=\"note\">liprobe {_e(__version__)} report, "
                 f"{now}: {len(table)} rows ({n_ok} analysed, {len(table) - n_ok} failed); "
                 f"{mat}</p>")
    if source:
        parts.append(f"<p><b>Data.</b> {_e(source)}</p>")
    nav = ([("scorecard", "Scorecard")] if paper else []) + [
        ("glance", "At a glance")] + ([("interactive", "Interactive figures")]
                                      if interactive else []) + [
        ("flags", "Flags"), ("figures", "Figures"),
        ("grains", "Grains")] + ([("mu", mu_title.split(":")[0])] if st1 is not None
                                 else []) + [
        ("yield", "Yield"), ("results", "Results"), ("reporting", "Reporting table")] + (
        [("recovery", "Recovery")] if recovery is not None else []) + [
        ("params", "Parameters")]
    parts.append("<nav>" + "".join(f'<a href="#{k}">{_e(t)}</a>' for k, t in nav) + "</nav>")

    h, rows = _group_summary(g, fda_col)
    parts.append('<h2 id="glance">At a glance</h2>')
    parts.append('<div class="wide">' + _table(h, rows) + "</div>")
    parts.append(f'<p class="note">Errors everywhere: {_e(ERRORS)}; each value is rounded to '
                 "its error's two significant digits, and one whose error is larger than "
                 "itself says so. Ratios are taken in the ROI of each row; the coating's ions "
                 "are excluded. The detector and Li-map heterogeneities are excess variances "
                 "(the variance counting noise alone gives is subtracted): an estimate can be "
                 "below zero, which reads as no heterogeneity, and is marked so.</p>")

    if interactive:
        parts.append('<h2 id="interactive">Interactive figures</h2>')
        parts.append('<p class="note">Drag to zoom (double-click to reset), hover a point '
                     "for its run and value, click a legend entry to hide or show it; the "
                     "static figures below are also in figures/ as PNG and SVG.</p>")
        for f in interactive:
            parts.append(f'<figure class="interactive" id="fig-{_e(f.key)}">{f.html}'
                         f"<figcaption><b>{_e(f.title)}.</b> {_e(f.caption)}</figcaption>"
                         "</figure>")
    if result.interactive_left_out:
        parts.append('<p class="note">Interactive figures left out: '
                     + "; ".join(f"{_e(k)} ({_e(v)})"
                                 for k, v in result.interactive_left_out.items()) + ".</p>")

    parts.append('<h2 id="flags">Flags</h2>')
    flagged = [(row_label(r), r.get("flags"), r) for _, r in table.iterrows()
               if flag_set(r.get("flags"))]
    if flagged:
        frows = []
        for label, _f, r in flagged:
            for t in flag_tests(r):
                frows.append([label, t["flag"], t["test"] or "",
                              value_error(t["value"], t["error"], column=t["metric"])
                              if t["test"] else "",
                              *(_fmt3(t[k]) if t["test"] else ""
                                for k in ("reference", "score", "threshold")),
                              t["sentence"].split(": ", 1)[1]])
        parts.append('<div class="wide">' + _table(
            ["row", "flag", "test", "value ± 1σ", "reference", "score (z or departure)",
             "threshold", "why"], frows) + "</div>")
        parts.append('<p class="note">One line per flag: the test that passed its '
                     "threshold furthest. Every test's reference, score and threshold are "
                     "columns of runs.csv (flag_&lt;flag&gt;_&lt;test&gt;_reference, _score, "
                     "_threshold), and flag_reasons holds every test that fired.</p>")
    else:
        parts.append("<p>No row is flagged.</p>")
    failed = [(row_label(r), r.get("error")) for _, r in table.iterrows()
              if str(r.get("status")) != "ok"]
    if failed:
        parts.append("<h3>Rows whose analysis failed</h3>"
                     + _table(["row", "error"], [[a, b if isinstance(b, str) else None]
                                                 for a, b in failed]))

    parts.append('<h2 id="figures">Figures</h2>')
    for spec in figures:
        title = spec.heading(numbering) if hasattr(spec, "heading") else spec.title
        if spec.name in result.figures:
            paths = result.figures[spec.name]
            png = next(p for p in paths if p.endswith(".png"))
            files = ", ".join(os.path.basename(p) for p in paths)
            parts.append(f'<figure id="{spec.name}"><img alt="{_e(title)}" '
                         f'src="{_png_data(png)}"><figcaption><b>{_e(title)}.</b> '
                         f"{_e(spec.caption)} <span class=\"note\">(figures/{_e(files)})</span>"
                         "</figcaption></figure>")
        elif spec.name in result.skipped:
            parts.append(f'<p class="skipped" id="{spec.name}"><b>{_e(title)}</b> could not be '
                         f"drawn: {_e(result.skipped[spec.name])}.</p>")
    parts.append(_left_out_note(result, figures, numbering, extra_left))

    parts.append('<h2 id="grains">Grains of another phase</h2>')
    if grains is not None:
        parts.append(_grains_html(table, grains, params))

    if st1 is not None:
        parts.append(f'<h2 id="mu">{_e(mu_title)}</h2>')
        col = st1.attrs.get("column", fda_col)
        rows = [[f"{pj:g}"] + [None if math.isnan(v) else f"{v:.4g}" for v in r]
                for pj, r in zip(st1.index, st1.to_numpy(dtype=float))]
        parts.append(f"<p class=\"note\">Pearson coefficient mu of the frequency distribution "
                     f"({_e(col)}), mean over the rows of each cell; 0 for a random "
                     "distribution, 1 for complete association.</p>"
                     + _table(["laser energy (pJ)"] + list(st1.columns), rows))

    parts.append('<h2 id="yield">Yield per coating</h2>')
    from ..study import yield_table

    ys = yield_table(plain_records(table))
    parts.append(_table(["coating", "runs", "complete", "fractured early", "unknown", "yield"],
                        [[y["coating"], y["runs"], y["complete"], y["fractured"], y["unknown"],
                          None if y["yield"] is None else f"{100 * y['yield']:.0f} %"]
                         for y in ys]))

    parts.append('<h2 id="results">Results per row</h2>')
    parts.append('<p class="note">Click a column\'s header to sort the rows by it (again to '
                 "reverse; missing values last); type in the box to keep the rows holding "
                 "that text; hover a flag for its reason.</p>")
    parts.append(results_table_html(table, fda_col))

    parts.append('<h2 id="reporting">Reporting table</h2>')
    parts.append("<p class=\"note\">What each data set is reported with, in the field's "
                 "convention (Gault et al., Nat. Rev. Methods Primers 1, 51 (2021)). Acquisition "
                 "conditions a file does not hold come from the manifest's tags "
                 "(mode, temperature_K, pulse_frequency_kHz, detection_rate_pct, "
                 "reconstruction) or a simulated run's truth file.</p>")
    if rep:
        h = list(rep[0])
        parts.append('<div class="wide">'
                     + _table(h, [[r[k] for k in h] for r in rep], "reporting") + "</div>")
    parts.append(f"<h3>Ranging</h3><p>{_e(RANGING_CONVENTIONS)} Ions containing "
                 f"{_e(', '.join(getattr(params, 'exclude', ()) or ()) or 'no element')} are "
                 "left out of every composition with all their atoms (the coating).</p>")
    used: dict = {}
    for label, rid in ranging_ids.items():
        used.setdefault(rid, []).append(label)
    for rid, title, rt in range_tables:
        parts.append(_range_table_html(rid, title, rt, used.get(rid, [])))

    if recovery is not None:
        parts.append('<h2 id="recovery">Recovery test: the simulator\'s input against the '
                     "analysis</h2>")
        parts.append(recovery_html(recovery))

    parts.append('<h2 id="params">Parameters of the study</h2>')
    extra = {"figures drawn": len(result.figures), "figures left out": len(result.left_out),
             "figures failed": len(result.skipped)}
    if summary.get("wall_s") is not None:
        extra["study wall time (s)"] = f"{summary['wall_s']:.1f}"
    parts.append(_params_html(params, rules, materials, extra))
    parts.append(SORT_SCRIPT)
    parts.append("</body></html>")
    return "\n".join(parts)
