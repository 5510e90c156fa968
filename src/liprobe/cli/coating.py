"""``liprobe coating FILE -r RANGES``: the coating shell and its apparent thickness
against depth."""

from __future__ import annotations

import click

from ._common import Number, apply_selection, echo_json, echo_selection, selection_options


@click.command()
@click.argument("file")
@click.option("-r", "--ranges", "ranges_path", required=True, help="Range file (.rrng, .rng).")
@click.option("--element", default="Cr", show_default=True, help="The coating element.")
@click.option("--margin", type=Number(), default=3.0, show_default=True, metavar="NM",
              help="Report the core this far inside the shell (as --roi core:NM selects it).")
@click.option("--slab-ions", type=Number(integer=True), default=40_000, show_default=True,
              help="Ions per depth slab.")
@click.option("--ring", type=Number(), default=0.5, show_default=True, metavar="NM",
              help="Ring width of the radial profiles.")
@selection_options
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
def coating(file, ranges_path, element, margin, slab_ions, ring, roi, center, segment, as_json):
    """Radius and apparent thickness of the coating shell of FILE against depth."""
    from ..chemistry import is_element
    from ..io import read, read_ranges
    from ..spatial.coating import coating_profile

    if not is_element(element):
        raise click.BadParameter(f"'{element}' is not a chemical element", param_hint="--element")
    if margin < 0 or slab_ions < 1 or ring <= 0:
        raise click.BadParameter("--margin >= 0, --slab-ions >= 1 and --ring > 0")
    table = read_ranges(ranges_path)
    run = read(file)
    run, selection = apply_selection(run, roi, segment, table, center)
    result = coating_profile(run, table, element=element, ions_per_slab=slab_ions, ring_nm=ring)
    d = result.to_dict(margin)
    d["selection"] = selection
    if as_json:
        echo_json(d)
        return
    click.echo(f"{file}: {element} shell in {d['slabs_found']} of {d['slabs_total']} depth slabs "
               f"(iso-level half-way between interior and plateau; apparent thickness)")
    echo_selection(selection)

    def f(v, fmt="7.2f"):
        return f"{v:{fmt}}" if v is not None else "    n/a"

    click.echo("  z from .. to (nm)   axis x, y (nm)    inner r  outer r  thickness  "
               f"core r (margin {margin:g})  core area (nm2)")
    for s in d["slabs"]:
        z0, z1 = s["z_nm"]
        line = (f"  {z1:7.1f} .. {z0:7.1f}  {s['axis_nm'][0]:7.2f} {s['axis_nm'][1]:7.2f}  "
                f"{f(s['inner_radius_nm'])}  {f(s['outer_radius_nm'])}"
                f"{'*' if s['outer_is_data_edge'] else ' '}"
                f"  {f(s['apparent_thickness_nm'])}    {f(s['core_radius_nm'])}             "
                f"{f(s['core_area_nm2'], '8.1f')}")
        if not s["found"]:
            line += f"  ({s['reason']})"
        click.echo(line)
    if any(s["outer_is_data_edge"] for s in d["slabs"]):
        click.echo("  * the shell reaches the edge of the data: outer radius is the data's edge")
    t = d["median_apparent_thickness_nm"]
    click.echo(f"median apparent thickness: {'n/a' if t is None else f'{t:.2f} nm'}")
    for w in d["warnings"]:
        click.echo(f"warning: {w}", err=True)
