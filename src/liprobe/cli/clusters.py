"""``liprobe clusters FILE -r RANGES --species Cr --dmax 0.5 --nmin 10``: maximum-separation
(or DBSCAN) cluster search, each cluster's composition, and a random-label baseline."""

from __future__ import annotations

import click

from ._clusters import check_table_outputs, positive, read_counted, species_list, write_outputs
from ._common import Number, echo_json, echo_selection, element_list, given, selection_options


@click.command()
@click.argument("file")
@click.option("-r", "--ranges", "ranges_path", required=True, help="Range file (.rrng, .rng).")
@click.option("--species", multiple=True, required=True, callback=species_list,
              metavar="ION|EL,...", help="The solute: ions (Cr+) or elements (Cr: every ion "
              "carrying it).")
@click.option("--dmax", "dmax", type=Number(), metavar="NM",
              help="Maximum separation d_max (DBSCAN's eps); default: chosen from the "
                   "nearest-neighbour distributions (Stephenson et al. 2007).")
@click.option("--nmin", "nmin", type=Number(integer=True), metavar="N",
              help="Fewest solute ions of a cluster; default: one more than the largest "
                   "group found in randomly relabelled data.")
@click.option("--method", type=click.Choice(["maxsep", "dbscan"]), default="maxsep",
              show_default=True, help="Maximum separation or DBSCAN.")
@click.option("--envelope", "envelope", type=Number(), metavar="NM",
              help="Envelope L: other ions within L of a cluster's solute join it "
                   "(default d_max; 0: none).")
@click.option("--erosion", "erosion", type=Number(), metavar="NM",
              help="Erosion distance: envelope ions this close to an unclustered ion leave "
                   "again (default L; 0: none).")
@click.option("--core-points", "core_points", type=Number(integer=True), default=5,
              show_default=True, help="DBSCAN: solute ions within d_max of a core point, "
              "itself included.")
@click.option("--knn-order", "knn_order", type=Number(integer=True), default=3,
              show_default=True, help="Order of the neighbour distribution that chooses d_max.")
@click.option("--shuffles", type=Number(integer=True), default=5, show_default=True,
              help="Random relabellings of the baseline.")
@click.option("--seed", type=Number(integer=True), default=0, show_default=True)
@click.option("--exclude", multiple=True, callback=element_list, metavar="EL,...",
              help="Drop every ion containing these elements, with all its atoms.")
@click.option("-o", "--output", "outputs", multiple=True, metavar="FILE.csv|png|svg",
              help="Write the clusters as CSV (one row each) or a figure (repeatable).")
@selection_options
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
def clusters(file, ranges_path, species, dmax, nmin, method, envelope, erosion, core_points,
             knn_order, shuffles, seed, exclude, outputs, roi, center, segment, as_json):
    """Clusters of the --species in FILE: ions, atoms, composition with errors, centre and
    radius of gyration of each, and how many chance would give."""
    from ..spatial.clusters import find_clusters

    positive("--dmax", dmax)
    positive("--nmin", nmin)
    positive("--envelope", envelope, allow_zero=True)
    positive("--erosion", erosion, allow_zero=True)
    positive("--core-points", core_points)
    positive("--shuffles", shuffles)
    if not 1 <= knn_order <= 100:
        raise click.BadParameter("must be 1 to 100", param_hint="--knn-order")
    ctx = click.get_current_context()
    if method != "dbscan" and given(ctx, {"core_points": "--core-points"}):
        raise click.UsageError("--core-points goes with --method dbscan")
    if dmax is not None and given(ctx, {"knn_order": "--knn-order"}):
        raise click.UsageError("--knn-order chooses d_max when --dmax is not given: use one")
    check_table_outputs(outputs)
    table, selection, ions = read_counted(file, ranges_path, roi, segment, exclude, center)
    cs = find_clusters(ions, table, species, dmax_nm=dmax, nmin=nmin, method=method,
                       envelope_nm=envelope, erosion_nm=erosion, core_points=core_points,
                       knn_order=knn_order, shuffles=shuffles, seed=seed, selection=selection)

    def plot(path):
        from ..plots.clusters import plot_clusters

        plot_clusters(cs, path)

    d = cs.to_dict()
    header = {k: d[k] for k in ("method", "species", "parameters", "choice", "n_clusters",
                                "random_baseline", "selection")}
    write_outputs(outputs, header, cs.rows, plot)
    d["outputs"] = list(outputs)
    if as_json:
        echo_json(d)
        return
    rb = cs.random_baseline
    click.echo(f"{file}: {cs.n_clusters} {method} cluster(s) of {cs.species} "
               f"({d['solute_in_clusters']:,} of {cs.solute_ions:,} solute ions); d_max "
               f"{cs.dmax_nm:g} nm ({cs.choice['dmax']}), N_min {cs.nmin} ({cs.choice['nmin']}),"
               f" L {cs.envelope_nm:g} nm, d_erosion {cs.erosion_nm:g} nm; random baseline "
               f"{rb.clusters:g} cluster(s) in {rb.shuffles} relabelling(s)")
    echo_selection(selection)
    for key in ("dmax_how", "nmin_how"):
        if key in cs.choice:
            click.echo(f"  {key[:4]}: {cs.choice[key]}")
    if cs.clusters:
        els = cs.elements
        click.echo(f"  {'#':>4} {'ions':>7} {'solute':>7} {'atoms':>7} {'Rg (nm)':>8} "
                   f"{'centre x, y, z (nm)':>26}  " + "  ".join(f"{el + ' at.%':>15}"
                                                                for el in els))
        for i, c in enumerate(cs.clusters, 1):
            x, y, z = c.centre_nm
            comp = "  ".join(f"{c.composition[el]:6.2f} +/- {c.composition_error[el]:5.2f}"
                             if c.composition[el] is not None else f"{'n/a':>15}" for el in els)
            click.echo(f"  {i:>4} {c.ions:>7,} {c.solute_ions:>7,} {c.atoms:>7,} "
                       f"{c.radius_gyration_nm:8.3f} {x:8.2f} {y:8.2f} {z:8.2f}  {comp}")
    for out in outputs:
        click.echo(f"wrote {out}")
    for w in cs.warnings:
        click.echo(f"warning: {w}", err=True)
