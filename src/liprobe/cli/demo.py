"""``liprobe demo -o OUT``: simulate the paper's study, analyse it, write OUT/report.html."""

from __future__ import annotations

import sys

import click

from ._common import Number, echo_json
from .study import NO_DASHBOARD, cache_warnings_as_lines, dashboard_line


@click.command()
@click.option("-o", "--output", "out", required=True, metavar="DIR",
              help="Output folder: series/ (simulated runs and study.toml), the study's "
                   "table, figures/ and report.html.")
@click.option("--ions", type=Number(integer=True), metavar="N",
              help="Detected ions of a coated single-energy run, the others scaled with it "
                   "(accepts 3e4; default: the preset's).")
@click.option("--workers", type=Number(integer=True), metavar="N",
              help="Processes simulating and analysing (default: up to two simulating, one "
                   "per core analysing, at most one per run; 0: in this process).")
@click.option("--scheduler", metavar="ADDRESS",
              help="Run the study on an existing Dask cluster (e.g. tcp://host:8786).")
@click.option("--dashboard", is_flag=True,
              help="Start the study's local Dask dashboard, on 127.0.0.1 only, and print its "
                   "address on stderr (default: no dashboard).")
@click.option("-q", "--quiet", is_flag=True, help="No progress on stderr.")
@click.option("--json", "as_json", is_flag=True,
              help="Print a JSON summary (timings, files, the story's numbers) on stdout.")
def demo(out, ions, workers, scheduler, dashboard, quiet, as_json):
    """Simulate the paper's Cr-coating study, analyse it and write DIR/report.html.

    The study of Singh et al., arXiv:2309.07842 (2023): uncoated and Cr-coated
    NMC811 across laser energies, several particles, a
    Mn-rich particle among them and LiMn2O4: simulated (`liprobe simulate
    --preset paper`), analysed as one study (`liprobe study`), drawn and
    reported (`liprobe report`). Running it again reuses the series and the
    study's cache.
    """
    from ..report.demo import run_demo, story_numbers

    if ions is not None and ions <= 0:
        raise click.BadParameter("must be a whole number above 0", param_hint="--ions")
    if workers is not None and workers < 0:
        raise click.BadParameter("must not be negative", param_hint="--workers")
    if workers is not None and scheduler is not None:
        raise click.BadParameter("sizes the local cluster; not with --scheduler",
                                 param_hint="--workers")
    if dashboard and (scheduler is not None or workers == 0):
        raise click.BadParameter("is the local cluster's; not with --scheduler or --workers 0",
                                 param_hint="--dashboard")
    bar_on = not quiet and sys.stderr.isatty()     # a bar with an ETA on a terminal
    bars: dict = {}

    def step(phase, done, total, name):
        from tqdm import tqdm

        if phase not in bars:
            for b in bars.values():
                b.close()
            bars[phase] = tqdm(total=total, desc=f"demo {phase}", file=sys.stderr,
                               unit=" runs" if phase == "series" else
                               " rows" if phase == "study" else " figures",
                               dynamic_ncols=True)
        bars[phase].update(1)
        bars[phase].set_postfix_str(str(name)[-40:], refresh=False)

    # on a terminal the bars replace the lines of news; elsewhere one line per step
    say = None if quiet or bar_on else (lambda line: click.echo(line, err=True))

    shown = []

    def show_dashboard(link):
        shown.append(link)
        click.echo(dashboard_line("demo", link), err=True)

    with cache_warnings_as_lines():
        try:
            r = run_demo(out, ions=ions, workers=workers, scheduler=scheduler, progress=say,
                         dashboard=show_dashboard if dashboard else None,
                         step=step if bar_on else None)
        finally:
            for b in bars.values():
                b.close()
    if dashboard and not shown:
        click.echo(NO_DASHBOARD.format(who="demo"), err=True)
    if as_json:
        echo_json(r.summary())
        return
    s = story_numbers(r.study.table)
    sec = r.seconds
    click.echo(f"{r.source_text}")
    click.echo(f"series {sec['series']:.1f} s, study {sec['study']:.1f} s, report "
               f"{sec['report']:.1f} s: {sec['total']:.1f} s in all")

    def f(v, spec=".3g"):
        return "n/a" if v is None else format(v, spec)

    click.echo(f"uncoated {s['main_material']}: {s['uncoated_delithiated']} of "
               f"{s['uncoated_rows']} rows delithiated, median mu(Li+) {f(s['uncoated_mu_li'])}")
    li = s["coated_li_ratio"]
    click.echo(f"coated {s['main_material']}: {s['coated_rows']} rows, median mu(Li+) "
               f"{f(s['coated_mu_li'])}, Li/(Li+Ni+Co+Mn) "
               + ("n/a" if li is None else f"{li[0]:.3f}-{li[2]:.3f} (median {li[1]:.3f})")
               + f"; O2+/O+ at 5 pJ {f(s['o2_o_5pj'])}")
    cd = s.get("coated_delithiated") or []
    click.echo(f"coated {s['main_material']} rows flagged delithiated: {len(cd)}"
               + (f" ({', '.join(cd)}); median mu(Li+) at 40-50 pJ "
                  f"{f(s['coated_mu_li_40_50pj'])}" if cd else ""))
    others = sorted({o["row"] for o in s["other_phase"]})
    click.echo(f"flagged other_phase: {len(others)} rows"
               + (f" ({', '.join(others)})" if others else ""))
    claims = getattr(r.report, "scorecard", None) or []
    if claims:
        counts = {k: sum(c.status == k for c in claims) for k in ("reproduced", "partly", "not")}
        click.echo(f"scorecard: {counts['reproduced']} of {len(claims)} claims reproduced, "
                   f"{counts['partly']} partly, {counts['not']} not: "
                   + ", ".join(f"{c.claim} {c.status} ({c.how})" for c in claims))
    click.echo(f"wrote {r.report.html}")
