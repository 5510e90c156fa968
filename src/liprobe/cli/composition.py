"""``liprobe composition FILE -r RANGES``: counts, at.% with errors, ratios."""

from __future__ import annotations

import click

from ..chemistry import parse_ratio
from ._common import (
    apply_selection,
    each_checked,
    echo_json,
    echo_selection,
    selection_options,
    split_list,
)


@click.command()
@click.argument("file")
@click.option("-r", "--ranges", "ranges_path", required=True, help="Range file (.rrng, .rng).")
@click.option("--exclude", multiple=True, callback=split_list, metavar="EL,...",
              help="Drop every ion containing these elements (e.g. Cr), with all its atoms.")
@click.option("--ratio", "ratios", multiple=True, metavar="EXPR",
              callback=each_checked(parse_ratio, "--ratio"),
              help="Ratio to report, e.g. 'Li/(Li+Ni+Co+Mn)' (atoms) or 'O2+/O+' (ions). "
                   "Repeatable.")
@selection_options
@click.option("--background", "subtract_bg", is_flag=True,
              help="Subtract the background under each window (uniform in time of flight, "
                   "fitted in peak-free windows).")
@click.option("--deconvolve", is_flag=True,
              help="Solve ion counts from the isotope patterns over all windows (non-negative "
                   "least squares, with uncertainties), correcting the tails of neighbouring "
                   "peaks with the peak shape measured on the data.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
def composition(file, ranges_path, exclude, ratios, roi, center, segment, subtract_bg,
                deconvolve, as_json):
    """Ion and atom counts, atomic percent with binomial errors, and ratios of FILE."""
    from ..composition import composition as compute
    from ..io import read, read_ranges

    table = read_ranges(ranges_path)
    from ..composition import check_ratio_terms
    from ..errors import AnalysisError

    for text in ratios:                  # before the file is read: one line, exit 1
        why = check_ratio_terms(text, table)
        if why is not None:
            raise AnalysisError(f"ratio '{text}': {why}", table.path)
    run = read(file)
    run, selection = apply_selection(run, roi, segment, table, center)
    extra = {}
    if subtract_bg or deconvolve:
        from ..spectrum.deconvolve import corrected_counts

        counts, extra, cov = corrected_counts(run, table, subtract_bg, deconvolve,
                                              tof=run.source("tof") if "tof" in run else None,
                                              with_covariance=True)
        from ..composition import composition_from_counts

        parts = extra.pop("errors_included")
        what = ", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else parts[0]
        result = composition_from_counts(
            counts, table, run.n_ions, exclude, ratios, ion_covariance=cov,
            errors=f"{what}, propagated to first order from the ion counts' covariance")
    else:
        result = compute(run.chunks("mass"), table, exclude=exclude, ratios=ratios)
    d = result.to_dict()
    d.update(extra)
    if roi is not None or segment is not None:
        d["selection"] = selection
    if as_json:
        echo_json(d)
        return
    click.echo(f"{file}: {d['ions_total']:,} ions, {d['ions_ranged']:,} ranged "
               f"({100 * d['ions_ranged'] / max(d['ions_total'], 1):.2f} %)")
    echo_selection(selection)
    if d["excluded"]["elements"]:
        click.echo(f"excluded ({', '.join(d['excluded']['elements'])}): "
                   f"{d['excluded']['ions_total']:,} ions")
    click.echo("ions:")
    for name, n in d["ion_counts"].items():
        click.echo(f"  {name:<10} {n:>12,}")
    click.echo(f"errors: {d['errors']}")
    if d["atomic_percent"]:
        click.echo("atoms:            count      at.%    +/- (1 sigma)")
        for el, n in d["atom_counts"].items():
            click.echo(f"  {el:<6} {n:>16,} {d['atomic_percent'][el]:9.4f} "
                       f"{d['atomic_percent_error'][el]:9.4f}")
    for text, r in d["ratios"].items():
        if r["value"] is None:
            click.echo(f"{text} = n/a ({r.get('reason')})")
        else:
            click.echo(f"{text} = {r['value']:.5f} +/- {r['error']:.5f}")
    for w in d["warnings"]:
        click.echo(f"warning: {w}", err=True)
