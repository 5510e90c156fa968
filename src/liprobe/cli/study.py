"""``liprobe study MANIFEST -o OUT``: every run of a study, one table, batch-relative flags."""

from __future__ import annotations

import contextlib
import os
import sys
import warnings

import click

from ._common import Number, echo_json


@contextlib.contextmanager
def cache_warnings_as_lines():
    """Within: each :class:`liprobe.study.cache.CacheWarning` is one line on stderr,
    ``warning: FILE: untrusted cache record (why); ...``."""
    from ..study.cache import CacheWarning

    with warnings.catch_warnings():
        warnings.simplefilter("always", CacheWarning)
        shown = warnings.showwarning
        said: set = set()

        def show(message, category, *args, **kwargs):
            if issubclass(category, CacheWarning):
                line = f"warning: {' '.join(str(message).split())}"
                if line not in said:            # once, though the file is read twice
                    said.add(line)
                    click.echo(line, err=True)
            else:
                shown(message, category, *args, **kwargs)

        warnings.showwarning = show
        yield


#: What ``--dashboard`` says when no cluster was started.
NO_DASHBOARD = ("{who}: no Dask dashboard: every row came from the cache, nothing was "
                "computed (no cluster started)")


def dashboard_line(who: str, link: str) -> str:
    """The stderr line giving the local dashboard's address (and what it lacks, if so)."""
    import importlib.util

    line = f"{who}: Dask dashboard at {link}"
    if importlib.util.find_spec("bokeh") is None:
        line += " (its pages need bokeh, which is not installed: pip install bokeh)"
    return line


@click.command()
@click.argument("manifest")
@click.option("-o", "--output", "out", required=True, metavar="DIR",
              help="Output folder: runs.csv, runs.parquet, yield.csv, summary.json, cache/.")
@click.option("--scheduler", metavar="ADDRESS",
              help="Run on an existing Dask cluster (e.g. tcp://host:8786) instead of a local one.")
@click.option("--workers", type=Number(integer=True), metavar="N",
              help="Worker processes of the local cluster (default: one per core, at most one "
                   "per run to compute); 0 analyses in this process without Dask.")
@click.option("--dashboard", is_flag=True,
              help="Start the local cluster's Dask dashboard, on 127.0.0.1 only, and print "
                   "its address on stderr (default: no dashboard).")
@click.option("-q", "--quiet", is_flag=True,
              help="No progress on stderr (a bar with an ETA on a terminal, else one line "
                   "per row); failed rows are still reported.")
@click.option("--nexus", is_flag=True,
              help="Also write each run as NeXus NXapm, DIR/RUN.nxs, with its ranges and the "
                   "manifest's metadata.")
@click.option("--json", "as_json", is_flag=True,
              help="Print a JSON summary (counts, failed runs, yield, files) on stdout.")
def study(manifest, out, scheduler, workers, dashboard, quiet, nexus, as_json):
    """Analyse every run of MANIFEST (TOML) the same way and write one table.

    Each run (each segment, where given) is an independent task; finished runs
    are cached under DIR/cache, so a study stopped half-way and started again
    redoes only the unfinished runs, and a change of parameters only the runs
    it affects. A run that fails is a row with its error; the others complete.

    Exit codes: 0 every run analysed; 1 bad manifest or input (one line on
    stderr); 2 usage error; 3 partial study (some runs failed: see the
    'status' and 'error' columns; or, with --nexus, some NeXus files could
    not be written: see the 'study: nexus' lines).
    """
    from ..study import load_manifest, run_study

    if workers is not None and workers < 0:
        raise click.BadParameter("must not be negative", param_hint="--workers")
    if workers is not None and scheduler is not None:
        raise click.BadParameter("sizes the local cluster; not with --scheduler",
                                 param_hint="--workers")
    if dashboard and (scheduler is not None or workers == 0):
        raise click.BadParameter("is the local cluster's; not with --scheduler or --workers 0",
                                 param_hint="--dashboard")
    m = load_manifest(manifest)

    bars: list = []           # a progress bar with an ETA, on a terminal only

    def progress(ev):
        if not bars and not quiet and sys.stderr.isatty():
            from tqdm import tqdm

            bars.append(tqdm(total=ev["total"], desc="study", unit=" rows", file=sys.stderr,
                             dynamic_ncols=True))
        t = "" if ev["seconds"] is None or ev["state"] == "cached" else f" {ev['seconds']:.2f} s"
        line = f"study: [{ev['done']}/{ev['total']}] {ev['label']}: {ev['state']}{t}"
        if ev["error"]:
            line += f": {ev['error']}"
        if bars:
            bars[0].update(1)
            bars[0].set_postfix_str(ev["label"][-40:], refresh=False)
            if ev["state"] == "failed":
                bars[0].write(line, file=sys.stderr)
            return
        if quiet and ev["state"] != "failed":
            return
        click.echo(line, err=True)

    shown = []

    def show_dashboard(link):
        shown.append(link)
        click.echo(dashboard_line("study", link), err=True)

    done = []

    def counted(ev):
        if ev["state"] in ("ok", "cached"):          # what the cache holds
            done.append(ev)
        progress(ev)

    try:
        with cache_warnings_as_lines():
            result = run_study(m, out, scheduler=scheduler, workers=workers, progress=counted,
                               dashboard=show_dashboard if dashboard else None)
    except KeyboardInterrupt:
        for b in bars:
            b.close()
        click.echo(f"liprobe: study interrupted: {len(done)} row(s) finished and kept in "
                   f"{os.path.join(out, 'cache')}; the same command resumes from them",
                   err=True)
        sys.exit(130)
    for b in bars:
        b.close()
    if dashboard and not shown:
        click.echo(NO_DASHBOARD.format(who="study"), err=True)
    s = result.summary()
    if nexus:
        from ..study.nexus import export_nexus

        def nexus_progress(run, path, error):
            if error or not quiet:
                click.echo(f"study: nexus {run}: {error or path}", err=True)

        s["nexus"] = export_nexus(m, out, progress=nexus_progress)
    failed_nexus = [r for r, v in s.get("nexus", {}).items() if "error" in v]
    exit_code = result.exit_code
    if failed_nexus:                 # a NeXus file asked for and not written: partial too
        exit_code = 3
        s["exit_code"], s["partial"] = 3, True
    if as_json:
        echo_json(s)
    else:
        click.echo(f"{s['study']}: {s['rows']} rows, {s['ok']} ok, {s['failed']} failed "
                   f"({s['computed']} analysed, {s['cached']} from the cache)")
        for y in s["yield"]:
            yl = "n/a" if y["yield"] is None else f"{100 * y['yield']:.0f} %"
            click.echo(f"  coating {y['coating']}: {y['runs']} runs, {y['complete']} complete, "
                       f"{y['fractured']} fractured, yield {yl}")
        click.echo(f"wrote {s['files']['runs_csv']} and {s['files']['runs_parquet']}")
        if nexus:
            done = [v["path"] for v in s["nexus"].values() if "path" in v]
            click.echo(f"wrote {len(done)} NeXus file(s) in {out}"
                       + (f" ({len(s['nexus']) - len(done)} failed)"
                          if len(done) < len(s["nexus"]) else ""))
    if exit_code:
        why = [f"{s['failed']} of {s['rows']} rows failed"] if result.exit_code else []
        if failed_nexus:
            why.append(f"{len(failed_nexus)} of {len(s['nexus'])} NeXus files not written ("
                       + ", ".join(failed_nexus) + ": see 'study: nexus' above)")
        click.echo(f"liprobe: study partial: {'; '.join(why)} (exit code 3)", err=True)
        sys.exit(exit_code)
