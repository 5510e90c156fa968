"""``liprobe profile FILE -r RANGES``: composition against depth (or radius) with error bars."""

from __future__ import annotations

import math
import os

import click

from ._common import (
    Number,
    apply_selection,
    echo_bins,
    echo_json,
    echo_selection,
    given,
    selection_options,
    split_list,
)


def write_profile_csv(profile, path) -> None:
    """The profile as CSV, atomically: ``# key: value`` header lines, then one row per bin.

    The header states the ROI, its diameter and length, the coordinate and the
    binning; empty cells are compositions of bins without atoms.
    """
    import csv
    import json

    from ..io._files import atomic_write
    from ..plots.profile import profile_caption

    rows = profile.rows()
    with atomic_write(path, "w", newline="", encoding="utf-8") as f:
        f.write(f"# liprobe composition profile: {profile_caption(profile)}\n")
        for k, v in profile.header().items():
            f.write(f"# {k}: {json.dumps(v)}\n")
        sel = profile.selection
        if sel.get("segment"):
            f.write(f"# segment: {json.dumps(sel['segment'])}\n")
        w = csv.writer(f)
        w.writerow(list(rows[0]) if rows else [])
        for row in rows:
            w.writerow(["" if isinstance(v, float) and not math.isfinite(v) else
                        (f"{v:.6g}" if isinstance(v, float) else v) for v in row.values()])


@click.command()
@click.argument("file")
@click.option("-r", "--ranges", "ranges_path", required=True, help="Range file (.rrng, .rng).")
@click.option("--axis", type=click.Choice(["x", "y", "z"]), default="z", show_default=True,
              help="Coordinate of the profile.")
@click.option("--radial", is_flag=True, help="Profile against the distance from an axis along z "
              "(the cylinder ROI's axis, --center, or the median x, y): shows the coating shell.")
@click.option("--bin", "bin_nm", type=Number(), metavar="NM",
              help="Fixed bin width in nm (default 1).")
@click.option("--ions-per-bin", type=Number(integer=True), metavar="N",
              help="Fixed count of ranged ions per bin instead of a fixed width.")
@click.option("--elements", multiple=True, callback=split_list, metavar="EL,...",
              help="Elements to report (default: all ranged, less the excluded).")
@click.option("--exclude", multiple=True, callback=split_list, metavar="EL,...",
              help="Drop every ion containing these elements (e.g. Cr), with all its atoms.")
@click.option("-o", "--output", "outputs", multiple=True, metavar="FILE.csv|png|svg",
              help="Write the profile as CSV or an image (repeatable).")
@selection_options
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
def profile(file, ranges_path, axis, radial, bin_nm, ions_per_bin, elements, exclude, outputs,
            roi, center, segment, as_json):
    """Composition of FILE against depth (or radius), binomial error bars, atoms after
    decomposition."""
    from ..io import read, read_ranges
    from ..plots import figure_format
    from ..spatial.profile import composition_profile

    if radial and given(click.get_current_context(), {"axis": "--axis"}):
        raise click.UsageError("--radial measures from an axis along z: give no --axis")
    if bin_nm is not None and ions_per_bin is not None:
        raise click.UsageError("give --bin or --ions-per-bin, not both")
    if bin_nm is not None and bin_nm <= 0:
        raise click.BadParameter("must be positive", param_hint="--bin")
    if ions_per_bin is not None and ions_per_bin < 1:
        raise click.BadParameter("must be at least 1", param_hint="--ions-per-bin")
    for out in outputs:
        if os.path.splitext(out)[1].lower() != ".csv":
            try:
                figure_format(out)
            except ValueError:
                raise click.BadParameter(f"'{out}': give a .csv, .png or .svg file name",
                                         param_hint="-o") from None
    table = read_ranges(ranges_path)
    run = read(file)
    run, selection = apply_selection(run, roi, segment, table,
                                     None if radial else center)
    axis_center = center
    if radial and axis_center is None and selection.get("kind") == "cylinder":
        axis_center = tuple(selection["center_nm"])
    result = composition_profile(run, table, axis=axis, bin_nm=bin_nm, ions_per_bin=ions_per_bin,
                                 elements=elements or None, exclude=exclude, radial=radial,
                                 center_nm=axis_center, selection=selection)
    for out in outputs:
        if os.path.splitext(out)[1].lower() == ".csv":
            write_profile_csv(result, out)
        else:
            from ..plots.profile import plot_profile

            plot_profile(result, out)
    d = result.to_dict()
    d["outputs"] = list(outputs)
    if as_json:
        echo_json(d)
        return
    from ..plots.profile import profile_caption

    click.echo(f"{file}: {profile_caption(result)}; {result.n_bins} bins along "
               f"{'r' if radial else axis}")
    echo_selection(selection)
    xname = "depth" if result.depth is not None else result.coordinate
    xs = result.depth if result.depth is not None else result.position
    echo_bins(xname + " (nm)", xs, "atoms", result.atoms, result.elements, result.percent,
              result.error, width=12)
    for out in outputs:
        click.echo(f"wrote {out}")
    for w in result.warnings:
        click.echo(f"warning: {w}", err=True)
