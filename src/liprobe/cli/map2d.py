"""``liprobe map2d FILE -r RANGES --species Cr --plane xz``: one element's at.% over a slab,
pixel by pixel, with the counts behind each pixel."""

from __future__ import annotations

import click

from ._clusters import check_table_outputs, positive, write_outputs
from ._common import (
    Number,
    apply_selection,
    echo_json,
    echo_selection,
    element_list,
    selection_options,
)


@click.command()
@click.argument("file")
@click.option("-r", "--ranges", "ranges_path", required=True, help="Range file (.rrng, .rng).")
@click.option("--species", multiple=True, required=True, callback=element_list,
              metavar="EL,...", help="Element(s) of the map (summed).")
@click.option("--plane", type=click.Choice(["xy", "xz", "yz"]), default="xz", show_default=True,
              help="xy: across the tip (normal z); xz, yz: along it.")
@click.option("--at", "at_nm", type=Number(), metavar="NM",
              help="Slab centre along the normal (default: median of the counted ions).")
@click.option("--thickness", type=Number(), default=5.0, show_default=True, metavar="NM",
              help="Slab thickness (inf: every ion of the selection).")
@click.option("--pixel", "pixel_nm", type=Number(), default=1.0, show_default=True,
              metavar="NM", help="Pixel edge.")
@click.option("--min-atoms", "min_atoms", type=Number(integer=True), default=10,
              show_default=True, help="Draw pixels with fewer atoms blank.")
@click.option("--exclude", multiple=True, callback=element_list, metavar="EL,...",
              help="Drop every ion containing these elements, with all its atoms.")
@click.option("-o", "--output", "outputs", multiple=True, metavar="FILE.csv|png|svg",
              help="Write the map as CSV (one row per pixel with atoms) or a figure "
                   "(repeatable).")
@selection_options
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
def map2d(file, ranges_path, species, plane, at_nm, thickness, pixel_nm, min_atoms, exclude,
          outputs, roi, center, segment, as_json):
    """At.% of --species over a slab of FILE in square pixels, with the atoms of each pixel
    and its binomial error."""
    from ..io import read, read_ranges
    from ..spatial.map2d import composition_map

    if not thickness > 0:                      # inf: the whole selection
        raise click.BadParameter("must be positive (inf: every ion)", param_hint="--thickness")
    positive("--pixel", pixel_nm)
    positive("--min-atoms", min_atoms, allow_zero=True)
    check_table_outputs(outputs)
    table = read_ranges(ranges_path)
    run = read(file)
    run, selection = apply_selection(run, roi, segment, table, center)
    m = composition_map(run, table, species, plane=plane, at_nm=at_nm, thickness_nm=thickness,
                        pixel_nm=pixel_nm, exclude=exclude, min_atoms=min_atoms,
                        selection=selection)

    def plot(path):
        from ..plots.clusters import plot_composition_map

        plot_composition_map(m, path)

    d = m.to_dict()
    header = {k: v for k, v in d.items() if k != "counts"}
    write_outputs(outputs, header, m.rows, plot)
    d["outputs"] = list(outputs)
    if as_json:
        echo_json(d)
        return
    rng = d["at_pct_range"]
    click.echo(f"{file}: {'+'.join(m.species)} over the {plane} plane, {m.axes[2]} = "
               f"{m.at_nm:.2f} nm, {m.thickness_nm:g} nm thick: {m.shape[0]} x {m.shape[1]} "
               f"pixels of {m.pixel_nm:g} nm, {d['pixels_with_atoms']:,} with atoms (median "
               f"{d['median_atoms_per_pixel']:g} atoms), {m.ions_in_slab:,} ions")
    echo_selection(selection)
    click.echo(f"  slab: {d['at_pct_slab']:.3f} at.% ({d['solute_atoms']:,} of "
               f"{d['atoms']:,} atoms); pixels from {rng[0]:.2f} to {rng[1]:.2f} at.%; "
               f"{d['pixels_below_min_atoms']:,} pixel(s) below {m.min_atoms} atoms")
    for out in outputs:
        click.echo(f"wrote {out}")
    for w in m.warnings:
        click.echo(f"warning: {w}", err=True)
