"""``liprobe view FILE -r RANGES -o OUT.html``: one interactive, self-contained page of a run."""

from __future__ import annotations

import click

from ._common import Number, echo_json


def _roi_or_none(ctx, param, value):
    """Click callback: ``none`` (no ROI) or a ROI spec checked before any file is read."""
    if value is None or value.strip().lower() == "none":
        return None
    from ..spatial.roi import parse_roi

    try:
        parse_roi(value)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None
    return value


@click.command()
@click.argument("file")
@click.option("-r", "--ranges", "ranges_path", required=True, help="Range file (.rrng, .rng).")
@click.option("-o", "--output", required=True, metavar="OUT.html",
              help="The page to write: one HTML file, plotly.js embedded, no network needed.")
@click.option("--roi", default="cylinder:25", show_default=True, callback=_roi_or_none,
              metavar="SPEC|none",
              help="Region of interest whose composition is tabled and which the atom map "
                   "outlines: cylinder:D[:L], sphere:D@X,Y,Z, box:X0:X1:Y0:Y1:Z0:Z1 or "
                   "core[:MARGIN] (nm); none: the whole run.")
@click.option("--max-ions", type=Number(integer=True), default=50_000, show_default=True,
              help="Most ions in the 3-D atom map (a seeded sample; about 18 bytes of page "
                   "each).")
@click.option("--label", default=None, help="The run's name in the page and its hover texts "
                                            "(default: the file's stem).")
@click.option("--compare", metavar="OTHER", default=None,
              help="Another run (any format): its spectrum and FILE's, each normalised to "
                   "its own ions, overlaid in one more figure.")
@click.option("--compare-label", default=None,
              help="The other run's name (default: its file's stem).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
def view(file, ranges_path, output, roi, max_ions, label, compare, compare_label, as_json):
    """One interactive page of FILE: composition of the ROI, mass spectrum with the range
    windows, detector hit map (not for a .pos) and a rotatable 3-D atom map with the ROI;
    with --compare, a normalised overlay of FILE's and another run's spectra."""
    from ..report.view import build_view

    if max_ions < 1:
        raise click.BadParameter("must be at least 1", param_hint="--max-ions")
    if not output.lower().endswith(".html"):
        raise click.BadParameter("the page is HTML: give a file name ending in .html",
                                 param_hint="-o")
    if compare_label is not None and compare is None:
        raise click.UsageError("--compare-label names the run of --compare: give --compare")
    d = build_view(file, ranges_path, output, roi=roi, max_ions=max_ions, label=label,
                   compare=compare, compare_label=compare_label)
    if as_json:
        echo_json(d)
        return
    click.echo(f"{file}: {d['ions']:,} ions"
               + (f"; {d['roi']['description']}: {d['ions_selected']:,} ions" if d["roi"]
                  else ""))
    a = d["atom_map"]
    click.echo(f"figures: {', '.join(d['figures'])}; atom map {a['ions_drawn']:,} ions "
               f"({a['unranged_left_out']:,} unranged left out)")
    if d["detector_note"]:
        click.echo(d["detector_note"])
    click.echo(f"wrote {d['html']} ({d['bytes'] / 1e6:.2f} MB)")
