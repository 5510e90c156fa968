"""``liprobe correlation FILE -o saxey.png``: multiple hits and their correlation histogram."""

from __future__ import annotations

import click

from ._common import Number, echo_json, figure_output


def _track(ctx, param, value):
    out = []
    for v in value:
        try:
            parent, frags = v.split("=")
            a, b = frags.split(",")
        except ValueError:
            raise click.BadParameter(f"'{v}' is not PARENT=FRAGMENT1,FRAGMENT2 "
                                     "(e.g. NiO2++=NiO+,O+)") from None
        out.append((parent.strip(), a.strip(), b.strip()))
    return tuple(out)


@click.command()
@click.argument("file")
@click.option("--bin", "bin_da", type=Number(), default=0.1, show_default=True,
              help="Bin width in Da (both axes).")
@click.option("--mass", "mass_range", default="0:120", show_default=True, metavar="LO:HI",
              help="Mass window in Da.")
@click.option("--track", "tracks", multiple=True, callback=_track, metavar="P=A,B",
              help="Draw the dissociation track of P -> A + B (e.g. NiO2++=NiO+,O+). "
                   "Repeatable.")
@click.option("-o", "--output", callback=figure_output,
              metavar="FILE.png|svg", help="Write the correlation histogram.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
def correlation(file, bin_da, mass_range, tracks, output, as_json):
    """Multiplicity statistics and the correlation (Saxey) histogram of ion pairs from one
    pulse of FILE (an .epos: needs its multiplicity column)."""
    from ..io import read
    from ..spectrum.multihit import (
        correlation_histogram_run,
        dissociation_track,
        require_multiplicity,
    )
    from .spectrum import _mass_range

    rng = _mass_range(None, None, mass_range)
    if bin_da <= 0:
        raise click.BadParameter("must be positive", param_hint="--bin")
    run = read(file)
    if "multiplicity" not in run:
        require_multiplicity(run)          # the one-line error
    ch = correlation_histogram_run(run, bin_da, rng)
    lines = []
    for p, a, b in tracks:
        try:
            lines.append((f"{p} -> {a} + {b}", dissociation_track(p, a, b)))
        except ValueError as e:
            raise click.BadParameter(str(e), param_hint="--track") from None
    d = ch.to_dict()
    d["file"] = file
    if tracks:
        d["tracks"] = [{"reaction": lab, "start": [float(x) for x in tr[0]],
                        "end": [float(x) for x in tr[-1]]} for lab, tr in lines]
    if output:
        from ..plots.spectrum import plot_correlation

        d["figure"] = plot_correlation(ch, output, lines)
    if as_json:
        echo_json(d)
        return
    m = d["multiplicity"]
    click.echo(f"{file}: {m['ions']:,} ions in {m['events']:,} events; "
               f"{100 * m['multiple_hit_fraction_of_ions']:.2f} % of ions in multiple hits")
    for k, v in m["events_by_size"].items():
        click.echo(f"  {k} ions per event: {v:,} events")
    click.echo(f"{d['pairs']:,} ion pairs; brightest cells:")
    for t in d["top_pairs"][:10]:
        click.echo(f"  {t['mass_low']:8.2f} {t['mass_high']:8.2f} Da  {t['count']:,}")
    if "figure" in d:
        click.echo(f"wrote {d['figure']}")
