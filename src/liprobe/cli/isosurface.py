"""``liprobe isosurface FILE -r RANGES --species Cr --threshold 20``: isoconcentration
(or isodensity) surfaces, their area and enclosed volume, a PLY mesh and a figure."""

from __future__ import annotations

import click

from ._common import apply_selection, echo_json, echo_selection, selection_options
from ._surfaces import (
    ISOSURFACE_OUTPUTS,
    build_surface,
    check_outputs,
    check_surface_options,
    surface_options,
    write_surface_outputs,
)


@click.command()
@click.argument("file")
@click.option("-r", "--ranges", "ranges_path", required=True, help="Range file (.rrng, .rng).")
@surface_options
@click.option("-o", "--output", "outputs", multiple=True, metavar="FILE.ply|png|svg",
              help="Write the mesh (PLY) or a figure (repeatable).")
@selection_options
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
def isosurface(file, ranges_path, species, threshold, density, voxel_nm, smooth_nm,
               delocalisation, min_volume, exclude, outputs, roi, center, segment, as_json):
    """Isoconcentration (or isodensity) surfaces of FILE by marching cubes: area, enclosed
    volume and the plateau compositions on either side, per component."""
    from ..io import read, read_ranges
    from ..plots.surfaces import surface_caption

    check_surface_options(species, threshold, density, voxel_nm, smooth_nm, delocalisation,
                          min_volume)
    check_outputs(outputs, ISOSURFACE_OUTPUTS)
    table = read_ranges(ranges_path)
    run = read(file)
    run, selection = apply_selection(run, roi, segment, table, center)
    surf = build_surface(run, table, species, threshold, density, voxel_nm, smooth_nm,
                         delocalisation, min_volume, exclude, selection)
    write_surface_outputs(surf, outputs)
    d = surf.to_dict()
    d["outputs"] = list(outputs)
    if as_json:
        echo_json(d)
        return
    click.echo(f"{file}: {surface_caption(surf)}")
    echo_selection(selection)
    p_in, p_out = surf.plateaus.get("inside"), surf.plateaus.get("outside")
    if p_in and p_out:
        rel, _why = surf.threshold_relative
        click.echo(f"  plateaus: inside {p_in['value']:.3f} +/- {p_in['error']:.3f}, outside "
                   f"{p_out['value']:.3f} +/- {p_out['error']:.3f} {surf.unit}"
                   + (f"; the threshold is {rel:.2f} of the way from outside to inside"
                      if rel is not None else ""))
    if surf.components:
        click.echo(f"  {'#':>3} {'area (nm2)':>12} {'volume (nm3)':>13} {'closed':>7} "
                   f"{'centroid x, y, z (nm)':>26}")
        for i, c in enumerate(surf.components, 1):
            cx, cy, cz = c.centroid_nm
            click.echo(f"  {i:>3} {c.area_nm2:12.1f} {c.volume_nm3:13.1f} "
                       f"{'yes' if c.closed else 'no':>7} {cx:8.1f} {cy:8.1f} {cz:8.1f}")
    click.echo(f"  {surf.dropped_components} component(s) below {surf.min_volume_nm3:g} nm^3 "
               "dropped")
    for out in outputs:
        click.echo(f"wrote {out}")
    for w in d["warnings"]:
        click.echo(f"warning: {w}", err=True)
