"""``liprobe coating FILE -r RANGES``: the coating's geometry (shell, cap or none), its
normal thickness, and the shell against depth."""

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
@click.option("--shank-angle", type=Number(), default=None, metavar="DEG",
              help="The specimen's shank half-angle for the normal thickness (default: fitted "
                   "from the cap radius against depth, or 10 deg assumed for a shallow run).")
@selection_options
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
def coating(file, ranges_path, element, margin, slab_ions, ring, shank_angle, roi, center,
            segment, as_json):
    """The coating of FILE: shell, cap or none, its thickness normal to the surface, and the
    shell's radius against depth (slabs in evaporation order)."""
    from ..chemistry import is_element
    from ..io import read, read_ranges
    from ..spatial.coating import coating_profile

    if not is_element(element):
        raise click.BadParameter(f"'{element}' is not a chemical element", param_hint="--element")
    if margin < 0 or slab_ions < 1 or ring <= 0:
        raise click.BadParameter("--margin >= 0, --slab-ions >= 1 and --ring > 0")
    if shank_angle is not None and not 0 < shank_angle < 60:
        raise click.BadParameter("must lie between 0 and 60 deg", param_hint="--shank-angle")
    table = read_ranges(ranges_path)
    run = read(file)
    run, selection = apply_selection(run, roi, segment, table, center)
    result = coating_profile(run, table, element=element, ions_per_slab=slab_ions, ring_nm=ring,
                             shank_angle_deg=shank_angle)
    d = result.to_dict(margin)
    d["selection"] = selection
    if as_json:
        echo_json(d)
        return
    click.echo(f"{file}: {element} coating: {_summary(d)}")
    echo_selection(selection)
    st = d["shell_thickness"]
    if st is not None:
        apex = ("original apex unknown (every slab on the shank)"
                if st["start_depth_nm"] is None else
                f"original apex radius {st['original_apex_radius_nm']:.1f} nm, "
                f"{st['start_depth_nm']:.1f} nm above the data")
        click.echo(f"  shank angle {st['shank_angle_deg']:.1f} +/- {st['shank_angle_err_deg']:.1f} "
                   f"deg ({st['shank_angle_source']}); {apex}; {st['slabs_used']} slabs, rms "
                   f"{st['residual_nm']:.2f} nm")
    cap = d["cap"]
    if cap is not None:
        click.echo(f"  cap: {cap['thickness_nm']:.2f} +/- {cap['thickness_nm_err']:.2f} nm along "
                   f"the axis, from z {cap['z_top_nm']:.1f} to {cap['interface_z_nm']:.1f} nm "
                   f"({100 * cap['plateau']:.1f} % {element} above, "
                   f"{100 * cap['interior']:.2f} % below)")
    else:
        click.echo(f"  no cap: {d['cap_reason']}")

    def f(v, fmt="7.2f"):
        return f"{v:{fmt}}" if v is not None else "    n/a"

    evap = d["slab_order"] == "evaporation"
    kind = "consecutive ions, in evaporation order" if evap else "along z"
    click.echo(f"  shell per slab ({kind}; radii at the iso-level half-way between interior "
               f"and plateau, the core {margin:g} nm inside the shell's foot):")
    click.echo(f"  {'ions from .. to' if evap else 'z from .. to (nm)':>21}   axis x, y (nm)    "
               "inner r  outer r  lateral  foot r  core r  core area (nm2)")
    for s in d["slabs"]:
        if evap:
            where = f"{s['ions_range'][0]:>10d} .. {s['ions_range'][1]:<9d}"
        else:
            where = f"{s['z_nm'][1]:8.1f} .. {s['z_nm'][0]:<8.1f}"
        line = (f"  {where}  {s['axis_nm'][0]:7.2f} {s['axis_nm'][1]:7.2f}  "
                f"{f(s['inner_radius_nm'])}  {f(s['outer_radius_nm'])}"
                f"{'*' if s['outer_is_data_edge'] else ' '}"
                f"  {f(s['apparent_thickness_nm'])} {f(s['foot_radius_nm'])} "
                f"{f(s['core_radius_nm'])}  {f(s['core_area_nm2'], '8.1f')}")
        if not s["found"]:
            line += f"  ({s['reason']})"
        click.echo(line)
    if any(s["outer_is_data_edge"] for s in d["slabs"]):
        click.echo("  * the shell reaches the edge of the data: outer radius is the data's edge")
    t = d["median_apparent_thickness_nm"]
    if t is not None:
        click.echo(f"  median lateral width as reconstructed: {t:.2f} nm (an oblique cut of the "
                   "shell, not its thickness)")
    for w in d["warnings"]:
        click.echo(f"warning: {w}", err=True)


def _summary(d: dict) -> str:
    """One line: geometry and thickness, or why there is none."""
    g = d["geometry"]
    if g == "none":
        return f"none found ({d['thickness_reason']})"
    t, e = d["thickness_nm"], d["thickness_nm_err"]
    if t is None:
        return f"{g}, thickness not computable ({d['thickness_reason']})"
    err = "" if e is None else f" +/- {e:.2f}"
    where = ("normal to the surface" if g == "shell" else "along the axis, normal to the apex")
    return (f"{g} in {d['slabs_found']} of {d['slabs_total']} slabs, " if g == "shell"
            else f"{g}, ") + f"thickness {t:.2f}{err} nm ({where})"
