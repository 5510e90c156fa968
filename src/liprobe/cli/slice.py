"""``liprobe slice FILE -r RANGES --plane xy -o slice.png``: an atom map of one slab."""

from __future__ import annotations

import click

from ._common import (
    Number,
    apply_selection,
    echo_json,
    echo_selection,
    figure_output,
    selection_options,
    split_list,
)


@click.command("slice")
@click.argument("file")
@click.option("-r", "--ranges", "ranges_path", required=True, help="Range file (.rrng, .rng).")
@click.option("--plane", type=click.Choice(["xy", "xz", "yz"]), default="xy", show_default=True,
              help="xy: across the tip (normal z); xz, yz: along it.")
@click.option("--at", "at_nm", type=Number(), metavar="NM",
              help="Slab position along the normal (default: median of the ions).")
@click.option("--thickness", type=Number(), default=5.0, show_default=True, metavar="NM",
              help="Slab thickness.")
@click.option("--species", multiple=True, callback=split_list, metavar="ION|EL,...",
              help="Ions (Li+) or elements (Cr: every ion carrying it) to show; default all "
                   "ranged.")
@click.option("--max-points", type=Number(integer=True), default=500_000, show_default=True,
              help="Draw at most this many ions (seeded random choice).")
@click.option("-o", "--output", callback=figure_output,
              required=True, metavar="SLICE.png|svg", help="Image to write.")
@selection_options
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
def slice_(file, ranges_path, plane, at_nm, thickness, species, max_points, output, roi, center,
           segment, as_json):
    """Atom map of a slab of FILE, each ion in its range colour (Figure 3 style)."""
    from ..chemistry import parse_species
    from ..io import read, read_ranges
    from ..plots.slices import plot_slice, slice_ions

    for sp in species:
        try:
            parse_species(sp)
        except ValueError as e:
            raise click.BadParameter(str(e), param_hint="--species") from None
    if thickness <= 0 or max_points < 1:
        raise click.BadParameter("--thickness > 0 and --max-points >= 1")
    table = read_ranges(ranges_path)
    run = read(file)
    run, selection = apply_selection(run, roi, segment, table, center)
    s = slice_ions(run, table, plane=plane, at_nm=at_nm, thickness_nm=thickness,
                   species=species or None, max_points=max_points)
    plot_slice(s, output)
    d = s.to_dict()
    d["selection"] = selection
    d["output"] = output
    if as_json:
        echo_json(d)
        return
    click.echo(f"{output}: {plane} slice at {d['normal']} = {s.at_nm:.2f} nm, {thickness:g} nm "
               f"thick, {s.ions_in_slab:,} ions ({s.shown:,} drawn)")
    echo_selection(selection)
    for name, n in d["species"].items():
        click.echo(f"  {name:<10} {n:>10,}  {d['colors'][name]}")
