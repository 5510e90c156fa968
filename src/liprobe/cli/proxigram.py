"""``liprobe proxigram FILE -r RANGES --species Cr --threshold 20`` (or ``--radial``):
composition against the distance from an isosurface, or from the specimen axis."""

from __future__ import annotations

import os

import click

from ._common import (
    Number,
    apply_selection,
    echo_bins,
    echo_json,
    echo_selection,
    element_list,
    given,
    selection_options,
)
from ._surfaces import (
    build_surface,
    check_outputs,
    check_surface_options,
    surface_options,
    write_surface_outputs,
)


def write_proxigram_csv(prox, path) -> None:
    """The proxigram as CSV, atomically: ``# key: value`` header lines, then one row per bin."""
    from ..spatial.proxigram import write_proxigram_csv as write_csv

    d = prox.to_dict()
    write_csv(prox, path, {k: d[k] for k in ("kind", "bin_nm", "max_distance_nm", "sign",
                                             "error", "surface", "selection")})


@click.command()
@click.argument("file")
@click.option("-r", "--ranges", "ranges_path", required=True, help="Range file (.rrng, .rng).")
@surface_options
@click.option("--radial", is_flag=True, help="Against the distance from the specimen axis "
              "instead (the cylinder ROI's axis, --center, or the line through the mean x, y "
              "of z slabs).")
@click.option("--bin", "bin_nm", type=Number(), default=0.5, show_default=True, metavar="NM",
              help="Bin width.")
@click.option("--max-distance", "max_distance", type=Number(), metavar="NM",
              help="Bin ions up to this distance (default 10 nm from a surface; every ion "
                   "with --radial).")
@click.option("--elements", multiple=True, callback=element_list, metavar="EL,...",
              help="Elements to report (default: all ranged, less the excluded).")
@click.option("-o", "--output", "outputs", multiple=True, metavar="FILE.csv|png|svg|ply",
              help="Write the proxigram as CSV, a figure, or the surface's mesh (repeatable).")
@selection_options
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
def proxigram(file, ranges_path, species, threshold, density, voxel_nm, smooth_nm,
              delocalisation, min_volume, exclude, radial, bin_nm, max_distance, elements,
              outputs, roi, center, segment, as_json):
    """Composition of FILE against each ion's signed distance to an isosurface (negative
    inside, binomial error bars), or against the distance from the specimen axis."""
    from ..io import read, read_ranges
    from ..spatial.proxigram import proxigram as compute, radial_proxigram

    if radial:
        surface_only = given(click.get_current_context(), {
            "species": "--species", "threshold": "--threshold", "density": "--density",
            "voxel_nm": "--voxel", "smooth_nm": "--smooth", "delocalisation": "--delocalisation",
            "min_volume": "--min-volume"})
        if surface_only:
            raise click.UsageError("--radial measures from the specimen axis: give no "
                                   f"{', '.join(surface_only)} (they define a surface)")
        check_outputs(outputs, (".csv", ".png", ".svg"))
    else:
        check_surface_options(species, threshold, density, voxel_nm, smooth_nm, delocalisation,
                              min_volume)
        check_outputs(outputs, (".csv", ".png", ".svg", ".ply"))
    if not bin_nm > 0:
        raise click.BadParameter("must be positive", param_hint="--bin")
    if max_distance is not None and not max_distance > 0:
        raise click.BadParameter("must be positive", param_hint="--max-distance")
    table = read_ranges(ranges_path)
    run = read(file)
    run, selection = apply_selection(run, roi, segment, table,
                                     None if radial else center)
    if radial:
        axis_center = center
        if axis_center is None and selection.get("kind") == "cylinder":
            axis_center = tuple(selection["center_nm"])
        prox = radial_proxigram(run, table, bin_nm=bin_nm, center_nm=axis_center,
                                max_distance_nm=max_distance, elements=elements or None,
                                exclude=exclude, selection=selection)
    else:
        surf = build_surface(run, table, species, threshold, density, voxel_nm, smooth_nm,
                             delocalisation, min_volume, exclude, selection)
        write_surface_outputs(surf, [o for o in outputs if o.lower().endswith(".ply")])
        prox = compute(run, table, surf, bin_nm=bin_nm,
                       max_distance_nm=10.0 if max_distance is None else max_distance,
                       elements=elements or None, exclude=exclude, selection=selection)
    for out in outputs:
        ext = os.path.splitext(out)[1].lower()
        if ext == ".csv":
            write_proxigram_csv(prox, out)
        elif ext in (".png", ".svg"):
            from ..plots.surfaces import plot_proxigram

            plot_proxigram(prox, out)
    d = prox.to_dict()
    d["outputs"] = list(outputs)
    if as_json:
        echo_json(d)
        return
    if radial:
        head = f"radial proxigram, axis {d['surface']['axis']}"
    else:
        s = d["surface"]
        head = (f"proxigram of the {s['kind']} surface of {'+'.join(s['species']) or 'all atoms'}"
                f" at {s['threshold']:g} {s['unit']} ({s['n_components']} component(s), "
                f"{s['area_nm2']:,.0f} nm^2); negative inside")
    click.echo(f"{file}: {head}; {prox.n_bins} bins of {bin_nm:g} nm, "
               f"{int(prox.ions.sum()):,} ions binned, {prox.ions_beyond:,} beyond")
    echo_selection(selection)
    echo_bins("distance (nm)", prox.distance, "ions", prox.ions, prox.elements, prox.percent,
              prox.error)
    for out in outputs:
        click.echo(f"wrote {out}")
    for w in prox.warnings:
        click.echo(f"warning: {w}", err=True)
