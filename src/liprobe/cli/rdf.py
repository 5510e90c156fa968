"""``liprobe rdf FILE -r RANGES --from Cr --to Cr``: the pair correlation of one species
around another, normalised by its bulk composition, 0 to 5 nm."""

from __future__ import annotations

import math

import click

from ._clusters import check_table_outputs, positive, read_counted, species_list, write_outputs
from ._common import Number, echo_json, echo_selection, element_list, selection_options


@click.command()
@click.argument("file")
@click.option("-r", "--ranges", "ranges_path", required=True, help="Range file (.rrng, .rng).")
@click.option("--from", "species_from", multiple=True, required=True, callback=species_list,
              metavar="ION|EL,...", help="The centres A: ions (Cr+) or elements (Cr).")
@click.option("--to", "species_to", multiple=True, callback=species_list, metavar="ION|EL,...",
              help="The species B counted around them (default: A).")
@click.option("--max-distance", "max_distance", type=Number(), default=5.0, show_default=True,
              metavar="NM", help="Outer radius.")
@click.option("--bin", "bin_nm", type=Number(), default=0.1, show_default=True, metavar="NM",
              help="Shell width.")
@click.option("--max-centres", "max_centres", type=Number(integer=True), default=2000,
              show_default=True, help="At most N centres (a seeded choice; 0: all).")
@click.option("--shuffles", type=Number(integer=True), default=10, show_default=True,
              help="Random relabellings that give the error.")
@click.option("--seed", type=Number(integer=True), default=0, show_default=True)
@click.option("--exclude", multiple=True, callback=element_list, metavar="EL,...",
              help="Drop every ion containing these elements, with all its atoms.")
@click.option("-o", "--output", "outputs", multiple=True, metavar="FILE.csv|png|svg",
              help="Write g(r) as CSV or a figure (repeatable).")
@selection_options
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
def rdf(file, ranges_path, species_from, species_to, max_distance, bin_nm, max_centres,
        shuffles, seed, exclude, outputs, roi, center, segment, as_json):
    """g(r): the share of --to in shells around each --from ion of FILE over its share among
    all counted ions (about 1 for a random distribution: compare with g_random, the mean of
randomly relabelled ions), with the scatter of random labels."""
    from ..spatial.rdf import pair_correlation

    positive("--max-distance", max_distance)
    positive("--bin", bin_nm)
    positive("--shuffles", shuffles)
    positive("--max-centres", max_centres, allow_zero=True)
    check_table_outputs(outputs)
    table, selection, ions = read_counted(file, ranges_path, roi, segment, exclude, center)
    pc = pair_correlation(ions, table, species_from, species_to or None,
                          max_distance_nm=max_distance, bin_nm=bin_nm,
                          max_centres=max_centres or None, shuffles=shuffles, seed=seed,
                          selection=selection)

    def plot(path):
        from ..plots.clusters import plot_pair_correlation

        plot_pair_correlation(pc, path)

    d = pc.to_dict()
    header = {k: v for k, v in d.items() if k != "shells"}
    write_outputs(outputs, header, pc.rows, plot)
    d["outputs"] = list(outputs)
    if as_json:
        echo_json(d)
        return
    click.echo(f"{file}: g(r) of {pc.species_to} around {pc.species_from} ({pc.centres:,} "
               f"centres of {pc.ions_from:,}); bulk {pc.bulk_pct:.3f} % of {pc.ions_counted:,} "
               f"counted ions; error: the scatter of {pc.shuffles} random relabelling(s)")
    echo_selection(selection)
    click.echo(f"  {'r (nm)':>8} {'ions':>10} {'B ions':>9} {'g':>8} {'+/-':>7} "
               f"{'g random':>9}")
    for i in range(len(pc.g)):
        g, e, g0 = pc.g[i], pc.g_error[i], pc.g_random[i]
        click.echo(f"  {pc.r_nm[i]:8.3f} {int(pc.ions[i]):10,} {int(pc.to_ions[i]):9,} "
                   + (f"{g:8.3f}" if math.isfinite(g) else f"{'n/a':>8}")
                   + (f" {e:7.3f}" if math.isfinite(e) else f" {'n/a':>7}")
                   + (f" {g0:9.3f}" if math.isfinite(g0) else f" {'n/a':>9}"))
    for out in outputs:
        click.echo(f"wrote {out}")
    for w in pc.warnings:
        click.echo(f"warning: {w}", err=True)
