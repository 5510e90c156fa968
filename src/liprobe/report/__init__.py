"""Figures of a study and its self-contained HTML report; ``liprobe demo``.

From a finished study (:func:`liprobe.study.run_study`)::

    from liprobe.report import build_report
    r = build_report("out/", manifest="study.toml")   # out/figures/*.png|svg, out/report.html
    r.figures, r.left_out                              # name -> paths; name -> why left out

One figure at a time, over the study's table::

    from liprobe.report import figure_5
    figure_5(result.table, "figs/")                    # -> [figs/figure_5.png, figs/figure_5.svg]

The whole demonstration (simulate the paper's series, analyse it, report)::

    from liprobe.report.demo import run_demo
    run_demo("out/")

Modules: :mod:`~liprobe.report.groups` (which rows play which part),
:mod:`~liprobe.report.sources` (the files behind each row),
:mod:`~liprobe.report.figures` (one function per figure, and which a study gets),
:mod:`~liprobe.report.numbers` (values rounded to their errors),
:mod:`~liprobe.report.table_html` (the sortable results table),
:mod:`~liprobe.report.reporting` (the per-run reporting table),
:mod:`~liprobe.report.grains` (each grain's proxigram, CSV and figure),
:mod:`~liprobe.report.scorecard` (the paper's nine claims measured on the study,
``OUT/scorecard.json``; the recovery table of a simulated series,
``OUT/recovery.csv``), :mod:`~liprobe.report.build` (the HTML report),
:mod:`~liprobe.report.demo`.
"""

from .build import ReportResult, build_report, load_table
from .figures import (
    FIGURES,
    FigureSkipped,
    FigureSpec,
    compositions,
    field_collapse,
    figure_1,
    figure_3,
    figure_4,
    figure_5,
    figure_6,
    figure_7,
    maps,
    mrp_by_coating,
    profiles,
    spectra,
    supplementary_figure_3,
    supplementary_table_1,
    voltage_histories,
    yield_by_coating,
)
from .numbers import value_error
from .scorecard import ClaimResult, recovery_table
from .sources import RunFiles

__all__ = ["ClaimResult", "FIGURES", "FigureSkipped", "FigureSpec", "ReportResult", "RunFiles",
           "build_report", "recovery_table", "value_error",
           "compositions", "maps", "profiles", "spectra",
           "field_collapse", "figure_1", "figure_3", "figure_4", "figure_5", "figure_6",
           "figure_7",
           "load_table", "mrp_by_coating", "supplementary_figure_3", "supplementary_table_1",
           "voltage_histories", "yield_by_coating"]
