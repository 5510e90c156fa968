"""``liprobe demo``: simulate the paper's study, analyse it, report it.

Three steps, each the public function a user would call:

1. **series** (``OUT/series/``): the simulator's paper preset
   (:func:`liprobe.simulate.write_preset`, as ``liprobe simulate --preset
   paper -o DIR [--ions N]``): uncoated and Cr-coated NMC811 across laser
   energies (with field-driven delithiation and early fracture of the
   uncoated specimens), particles of one batch, a Mn-rich particle listed
   as NMC811, LiMn2O4, and their manifest ``study.toml``.
2. **study**: :func:`liprobe.study.run_study` on ``OUT/series/study.toml``,
   writing ``OUT/runs.csv``, ``runs.parquet``, ``yield.csv``, ``summary.json``.
3. **report**: :func:`liprobe.report.build_report`: ``OUT/figures/``,
   ``OUT/scorecard.json`` (the paper's nine claims measured on the study,
   :mod:`liprobe.report.scorecard`), ``OUT/recovery.csv`` (each run's truth
   against what the analysis measured) and ``OUT/report.html``.

A series already in ``OUT/series`` of the same size is reused
(``OUT/series/demo.json`` records it), and the study's cache makes a second
demo redo nothing but the report.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field

from .._version import __version__
from ..errors import LiprobeError
from ..io._files import atomic_write_text, open_regular

__all__ = ["DemoResult", "preset_available", "write_series", "run_demo", "story_numbers"]

#: The preset the demo simulates.
PRESET = "paper"


@dataclass
class DemoResult:
    """What :func:`run_demo` did.

    Attributes
    ----------
    out : str
    source_text : str
        Where the data come from, in one sentence (also in the report).
    manifest : str
    study : StudyResult
    report : ReportResult
    seconds : dict
        ``series``, ``study``, ``report``, ``total``.
    reused_series : bool
    """

    out: str
    source_text: str
    manifest: str
    study: object
    report: object
    seconds: dict = field(default_factory=dict)
    reused_series: bool = False

    def summary(self) -> dict:
        return {"out": self.out, "source_text": self.source_text, "manifest": self.manifest,
                "reused_series": self.reused_series, "seconds": self.seconds,
                "study": self.study.summary(), "report": self.report.to_dict(),
                "story": story_numbers(self.study.table),
                "scorecard": [c.to_dict() for c in getattr(self.report, "scorecard", [])]}


def preset_available() -> bool:
    """Whether the simulator has the paper preset (:func:`liprobe.simulate.write_preset`)."""
    try:
        from ..simulate import PRESETS, write_preset  # noqa: F401
    except ImportError:
        return False
    return PRESET in PRESETS


def write_series(folder, ions: int | None = None, workers: int | None = None,
                 progress=None, step=None) -> tuple[str, bool]:
    """The paper preset's series in ``folder``: ``(manifest path, reused)``.

    Parameters
    ----------
    folder : str or path
    ions : int, optional
        Detected ions of a coated single-energy run (the preset's default if None;
        the other runs scale with it).
    workers : int, optional
        Processes simulating runs (the preset's default: at most two).
    progress : callable, optional
        ``progress(run_name)`` after each run.
    step : callable, optional
        ``step(done, total, run_name)`` after each run (for a progress bar).

    A series written before in ``folder`` with the same size and liprobe
    version is reused.
    """
    if not preset_available():
        raise LiprobeError("this liprobe's simulator has no paper preset "
                           "(liprobe.simulate.write_preset)")
    from ..simulate import write_preset

    folder = os.fspath(folder)
    stamp_path = os.path.join(folder, "demo.json")
    # "ranges": a series written before its runs were ranged on pooled spectra (issue 19)
    # pointed them at the simulator's truth-derived range files: it is written again
    stamp = {"preset": PRESET, "ions": None if ions is None else int(ions),
             "liprobe": __version__, "ranges": "pooled autorange"}
    manifest = os.path.join(folder, "study.toml")
    try:
        with open_regular(stamp_path) as f:
            if json.load(f) == stamp and os.path.exists(manifest):
                return manifest, True
    except (OSError, ValueError):
        pass
    os.makedirs(folder, exist_ok=True)
    def news(done, total, name):
        if progress is not None:
            progress(name)
        if step is not None:
            step(done, total, name)

    try:
        manifest = write_preset(PRESET, folder, ions=ions, workers=workers, progress=news)
    except ValueError as e:
        raise LiprobeError(f"the {PRESET} preset: {e}") from None
    atomic_write_text(stamp_path, json.dumps(stamp))
    return manifest, False


def run_demo(out, ions: int | None = None, workers: int | None = None,
             scheduler: str | None = None, progress=None, dashboard=None,
             step=None) -> DemoResult:
    """Simulate the series, run the study on it and write the report, all in ``out``.

    Parameters
    ----------
    out : str or path
    ions : int, optional
        Detected ions of a coated single-energy run (default: the preset's).
    workers : int, optional
        Processes of the simulation and of the study's local Dask cluster
        (default one per core; 0: in this process, without Dask).
    scheduler : str, optional
        A Dask scheduler's address for the study instead of a local cluster.
    progress : callable, optional
        ``progress(line)`` with one line of news per step.
    step : callable, optional
        ``step(phase, done, total, name)`` as each simulated run, study row and report
        figure is done (``phase``: "series", "study" or "report"; ``total`` None where
        not known): what a progress bar needs.
    dashboard : callable, optional
        Start the study's local Dask dashboard (127.0.0.1 only) and call
        ``dashboard(link)`` with its address (:func:`liprobe.study.run_study`).

    Returns
    -------
    DemoResult
    """
    from ..study import run_study
    from .build import build_report

    say = progress or (lambda line: None)
    t0 = time.perf_counter()
    out = os.path.abspath(os.fspath(out))
    os.makedirs(out, exist_ok=True)
    seconds: dict = {}
    series = os.path.join(out, "series")
    say(f"demo: simulating the {PRESET} preset in {series}")
    tick = step or (lambda phase, done, total, name: None)
    manifest, reused = write_series(
        series, ions, workers=workers, progress=lambda name: say(f"  simulated {name}"),
        step=lambda done, total, name: tick("series", done, total, name))
    seconds["series"] = time.perf_counter() - t0
    say(f"demo: series {'reused' if reused else 'written'} in {seconds['series']:.1f} s; "
        "running the study")

    t = time.perf_counter()

    def study_news(ev):
        tick("study", ev["done"], ev["total"], ev["label"])
        if ev["state"] == "failed" or ev["done"] == ev["total"] or ev["done"] % 5 == 0:
            say(f"  study [{ev['done']}/{ev['total']}] {ev['label']}: {ev['state']}"
                + (f": {ev['error']}" if ev.get("error") else ""))

    result = run_study(manifest, out, scheduler=scheduler, workers=workers,
                       progress=study_news, dashboard=dashboard)
    seconds["study"] = time.perf_counter() - t
    say(f"demo: study done in {seconds['study']:.1f} s; drawing the report")

    t = time.perf_counter()
    size = "its default size" if ions is None else f"{int(ions):,} ions per coated run"
    text = (f"Simulated by liprobe's simulator: the {PRESET} preset (liprobe simulate "
            f"--preset {PRESET}, {size}), truth beside every run; manifest {manifest}.")
    report = build_report(out, manifest=manifest, source=text, table=result.table,
                          progress=lambda n, s, sec: (say(f"  {n}: {s} ({sec:.1f} s)"),
                                                      tick("report", None, None, n)),
                          numbering="paper")
    seconds["report"] = time.perf_counter() - t
    seconds["total"] = time.perf_counter() - t0
    return DemoResult(out=out, source_text=text, manifest=manifest, study=result,
                      report=report, seconds=seconds, reused_series=reused)


def story_numbers(table) -> dict:
    """The numbers the demo's story rests on, measured on the table.

    ``uncoated_mu_li`` / ``coated_mu_li``: median FDA mu of Li+ (the paper: 0.9 and 0.5),
    ``coated_mu_li_up_to_30pj`` / ``coated_mu_li_40_50pj`` (the paper: ~0.5, then 0.75-0.86;
    every coated row of the main material, flagged delithiated or not, counts);
    ``coated_delithiated``: coated rows of the main material flagged delithiated;
    ``uncoated_delithiated``: uncoated rows flagged delithiated, of all uncoated rows;
    ``coated_li_ratio``: [min, median, max] of Li/(Li+Ni+Co+Mn) over the coated rows
    (the paper: close to 0.5 over the whole field range); ``o2_o_5pj``: median O2+/O+ of
    the 5 pJ rows of the main material (the paper: ~2.61); ``other_phase``: rows flagged
    other_phase and the phase they fit; ``mn_csr_by_laser``: Spearman correlation of
    Mn++/Mn+ with laser energy over the coated rows (the paper: it rises).
    """
    import numpy as np

    from .groups import StudyGroups, flag_set, number

    g = StudyGroups(table)

    def col(frame, c):
        if c not in frame:
            return np.array([])
        v = np.array([number(x) if number(x) is not None else np.nan for x in frame[c]])
        return v

    def med(v):
        v = v[np.isfinite(v)]
        return float(np.median(v)) if len(v) else None

    def spearman(x, y):
        ok = np.isfinite(x) & np.isfinite(y)
        if ok.sum() < 3:
            return None
        from scipy.stats import spearmanr

        return float(spearmanr(x[ok], y[ok]).statistic)

    li = col(g.coated, "Li/(Li+Ni+Co+Mn)")
    li = li[np.isfinite(li)]
    main = g.ok[(g.ok["material"].astype("string") == g.main).fillna(False).astype(bool)]
    at5 = main[col(main, "laser_pj") == 5.0] if len(main) else main
    mu_col = "fda_mu_Li+"
    return {
        "main_material": g.main,
        "uncoated_rows": len(g.uncoated),
        "uncoated_delithiated": int(sum("delithiated" in flag_set(f)
                                        for f in g.uncoated.get("flags", []))),
        "uncoated_mu_li": med(col(g.uncoated, mu_col)),
        "coated_mu_li": med(col(g.coated, mu_col)),
        "coated_mu_li_up_to_30pj": med(col(g.coated, mu_col)[
            col(g.coated, "laser_pj") <= 30]),
        "coated_mu_li_40_50pj": med(col(g.coated, mu_col)[
            col(g.coated, "laser_pj") >= 40]),
        "coated_delithiated": sorted(f"{r['run']}" for _, r in g.coated_delithiated.iterrows()),
        "coated_rows": len(g.coated),
        "coated_li_ratio": ([float(li.min()), float(np.median(li)), float(li.max())]
                            if len(li) else None),
        "o2_o_5pj": med(col(at5, "O2+/O+")),
        "other_phase": [{"row": f"{r['run']}", "best_phase": r.get("best_phase")}
                        for _, r in g.other_phase.iterrows()],
        "mn_csr_by_laser": spearman(col(g.coated, "laser_pj"), col(g.coated, "Mn++/Mn+")),
    }

