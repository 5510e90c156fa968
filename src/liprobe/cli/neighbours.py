"""``liprobe neighbours FILE -r RANGES --from Cr --to Cr --k 5``: k-th nearest-neighbour
distance distributions against randomly relabelled ions; with ``--composition``, the share
of a species among each of its ions' k nearest neighbours against labels shuffled in
z-slabs."""

from __future__ import annotations

import math

import click

from ._clusters import check_table_outputs, positive, read_counted, species_list, write_outputs
from ._common import Number, echo_json, echo_selection, element_list, selection_options


@click.command()
@click.argument("file")
@click.option("-r", "--ranges", "ranges_path", required=True, help="Range file (.rrng, .rng).")
@click.option("--from", "species_from", multiple=True, required=True, callback=species_list,
              metavar="ION|EL,...", help="The centres: ions (Cr+) or elements (Cr: every ion "
              "carrying it).")
@click.option("--to", "species_to", multiple=True, callback=species_list, metavar="ION|EL,...",
              help="The neighbours (default: every counted ion).")
@click.option("--k", "k", type=Number(integer=True), default=5, show_default=True,
              help="Orders 1 to K.")
@click.option("--bin", "bin_nm", type=Number(), default=0.02, show_default=True, metavar="NM",
              help="Histogram bin.")
@click.option("--max-distance", "max_distance", type=Number(), metavar="NM",
              help="Last edge (default: the 99.9th percentile of the K-th distances).")
@click.option("--shuffles", type=Number(integer=True), metavar="N",
              help="Random relabellings (default 1; 8 for --composition).")
@click.option("--seed", type=Number(integer=True), default=0, show_default=True)
@click.option("--slab", "slab_nm", type=Number(), metavar="NM",
              help="Relabel within z-slabs this thick (default: over the whole selection; "
                   "1 nm for --composition).")
@click.option("--max-centres", "max_centres", type=Number(integer=True), metavar="N",
              help="Measure at most N centres, a seeded choice (default: all; 20,000 for "
                   "--composition).")
@click.option("--composition", is_flag=True,
              help="Also the share of --to (default --from) among the K nearest counted ions "
                   "of each --from ion, against labels shuffled within z-slabs.")
@click.option("--exclude", multiple=True, callback=element_list, metavar="EL,...",
              help="Drop every ion containing these elements (e.g. Cr), with all its atoms.")
@click.option("-o", "--output", "outputs", multiple=True, metavar="FILE.csv|png|svg",
              help="Write the distributions as CSV or a figure (repeatable).")
@selection_options
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
def neighbours(file, ranges_path, species_from, species_to, k, bin_nm, max_distance, shuffles,
               seed, slab_nm, max_centres, composition, exclude, outputs, roi, center, segment,
               as_json):
    """Distances from each --from ion of FILE to its 1st ... K-th nearest --to ion, as
    histograms, against the same ions randomly relabelled."""
    from ..spatial.neighbours import nearest_neighbours, neighbour_composition

    if not 1 <= k <= 100:
        raise click.BadParameter("must be 1 to 100", param_hint="--k")
    positive("--bin", bin_nm)
    positive("--max-distance", max_distance)
    positive("--slab", slab_nm)
    positive("--shuffles", shuffles)
    positive("--max-centres", max_centres)
    check_table_outputs(outputs)
    table, selection, ions = read_counted(file, ranges_path, roi, segment, exclude, center)
    to = species_to or None
    nd = nearest_neighbours(ions, table, species_from, to, k=k, bin_nm=bin_nm,
                            max_distance_nm=max_distance, shuffles=shuffles or 1, seed=seed,
                            slab_nm=slab_nm, max_centres=max_centres, selection=selection)
    nc = None
    if composition:
        nc = neighbour_composition(ions, table, species_from, to, k=k,
                                   slab_nm=1.0 if slab_nm is None else slab_nm,
                                   shuffles=8 if shuffles is None else shuffles,
                                   max_centres=20_000 if max_centres is None else max_centres,
                                   seed=seed, selection=selection)

    def plot(path):
        from ..plots.clusters import plot_neighbours

        plot_neighbours(nd, path)

    header = {k_: v for k_, v in nd.to_dict().items() if k_ not in ("orders", "edges_nm")}
    write_outputs(outputs, header, nd.rows, plot)
    d = nd.to_dict()
    if nc is not None:
        d["composition"] = nc.to_dict()
    d["outputs"] = list(outputs)
    if as_json:
        echo_json(d)
        return
    click.echo(f"{file}: nearest neighbours of {nd.species_from} ({nd.ions_from:,} ions, "
               f"{nd.centres:,} centres) among {nd.species_to} ({nd.ions_to:,} ions); random: "
               f"{d['random']}")
    echo_selection(selection)
    click.echo(f"  {'k':>3} {'mean (nm)':>18} {'median':>8} {'random mean (nm)':>20} "
               f"{'median':>8}")
    def num(v, fmt):
        return format(v, fmt) if math.isfinite(v) else "n/a".rjust(len(format(0.0, fmt)))

    for j in range(nd.k):
        click.echo(f"  {j + 1:>3} {nd.mean_nm[j]:9.4f} +/- {num(nd.mean_err_nm[j], '6.4f')} "
                   f"{num(nd.median_nm[j], '8.4f')} {nd.random_mean_nm[j]:11.4f} +/- "
                   f"{num(nd.random_mean_err_nm[j], '6.4f')} "
                   f"{num(nd.random_median_nm[j], '8.4f')}")
    for key, why in nd.reasons.items():
        click.echo(f"  {key}: n/a: {why}")
    if nc is not None:
        err = (f" +/- {nc.excess_err_pct:.3f}" if nc.excess_err_pct is not None
               else f" (no error: {nc.reasons.get('excess_err_pct')})")
        click.echo(f"  {nc.to} among the {nc.k} nearest ions of {nc.species}: "
                   f"{nc.fraction_pct:.3f} % ({nc.centres:,} centres), random "
                   f"{nc.random_fraction_pct:.3f} % (labels shuffled within "
                   f"{'the selection' if nc.slab_nm is None else f'{nc.slab_nm:g} nm z-slabs'}, "
                   f"{nc.shuffles} times), bulk {nc.bulk_pct:.3f} %; excess "
                   f"{nc.excess_pct:+.3f}{err} percentage points")
    for out in outputs:
        click.echo(f"wrote {out}")
    for w in nd.warnings:
        click.echo(f"warning: {w}", err=True)
