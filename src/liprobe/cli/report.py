"""``liprobe report OUT``: the figures and the HTML report of a finished study."""

from __future__ import annotations

import os

import click

from ._common import echo_json
from .study import cache_warnings_as_lines


@click.command()
@click.argument("study_out", metavar="STUDY_OUT_DIR")
@click.option("-o", "--output", "html_path", metavar="FILE",
              help="The report (default: STUDY_OUT_DIR/report.html).")
@click.option("--manifest", metavar="FILE",
              help="The study's manifest (default: run files and parameters are read from "
                   "STUDY_OUT_DIR/cache).")
@click.option("--json", "as_json", is_flag=True,
              help="Print what was written (figures, figures left out or failed and why) "
                   "as JSON.")
@click.option("-q", "--quiet", is_flag=True, help="No per-figure progress on stderr.")
@click.option("--numbering", type=click.Choice(["descriptive", "paper"]), default="descriptive",
              show_default=True,
              help="Figure titles: descriptive, or the seed paper's numbers (Figure 1 ...), "
                   "as `liprobe demo` draws the paper preset.")
def report(study_out, html_path, manifest, as_json, quiet, numbering):
    """Draw the figures of a finished study and write one self-contained HTML report.

    STUDY_OUT_DIR is the output folder of `liprobe study` (runs.parquet and
    cache/). Figures go to STUDY_OUT_DIR/figures as PNG and SVG; the figures drawn
    are those the study holds something for (a coating comparison for coated and
    uncoated runs, field-proxy plots for a laser-energy series, each run's spectrum,
    maps and profile otherwise); one note of the report lists the others and why.
    The report embeds its images: it needs no network and no other file.
    """
    from ..report import build_report

    if html_path is not None and not html_path.lower().endswith((".html", ".htm")):
        raise click.BadParameter("name the report .html", param_hint="-o")
    if not os.path.isdir(study_out):
        raise click.BadParameter(f"{study_out}: no such folder", param_hint="STUDY_OUT_DIR")

    def progress(name, state, seconds):
        if not quiet:
            click.echo(f"report: {name}: {state} ({seconds:.1f} s)", err=True)

    with cache_warnings_as_lines():
        r = build_report(study_out, manifest=manifest, html_path=html_path, progress=progress,
                         numbering=numbering)
    if as_json:
        echo_json(r.to_dict())
        return
    click.echo(f"wrote {r.html}: {len(r.figures)} figures"
               + (f" ({len(r.left_out)} left out: the study holds nothing for them)"
                  if r.left_out else "")
               + (f", {len(r.skipped)} failed" if r.skipped else "")
               + f"; {len(r.interactive)} interactive")
    for name, why in r.skipped.items():
        click.echo(f"  {name} could not be drawn: {why}")
