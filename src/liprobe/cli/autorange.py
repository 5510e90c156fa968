"""``liprobe autorange FILE --elements ...``: find, explain and range every significant peak.

The long steps of a large file are the sort of its masses and the peak
analysis (each about half the time; the identification takes a small, fixed
time): the command runs them one after the other and, on a terminal, for a
file of at least :data:`liprobe.cli._common.PROGRESS_MIN_IONS` ions
(``LIPROBE_PROGRESS_MIN_IONS``), moves a progress bar with an ETA on stderr
after each (``--quiet`` turns it off).
"""

from __future__ import annotations

import click

from ._common import Number, echo_json, element_list

#: Shares of the time of the sort and of the peak analysis (measured on a 20 M-ion .epos:
#: 0.48 s and 0.52 s, the identification 0.05 s); the bar moves by them.
_STEP_SHARES = (0.45, 0.50)


def _elements(ctx, param, value):
    els = element_list(ctx, param, value)
    if not els:
        raise click.BadParameter("give at least one element, e.g. Li,Ni,Co,Mn,O")
    return els


@click.command()
@click.argument("file")
@click.option("--elements", required=True, multiple=True, callback=_elements, metavar="EL,...",
              help="Elements of the specimen (H and C are always added).")
@click.option("--max-atoms", type=Number(integer=True), default=5, show_default=True,
              help="Most atoms in a candidate ion.")
@click.option("--max-charge", type=Number(integer=True), default=3, show_default=True,
              help="Highest charge of atomic ions (molecules stop at 2+).")
@click.option("--mass", "mass_range", default="0.5:200", show_default=True, metavar="LO:HI",
              help="Mass window in Da.")
@click.option("--min-significance", type=Number(), default=5.0, show_default=True,
              help="z of a peak above its local background.")
@click.option("--no-calibrate", "no_calibrate", is_flag=True,
              help="Identify on the file's masses as they are (by default the mass offsets are "
                   "measured on peaks identified by their isotope pattern and corrected for "
                   "the identification; windows are always in the file's masses).")
@click.option("--suggest", is_flag=True,
              help="Also rank the elements that the unexplained peaks point to.")
@click.option("-o", "--output", metavar="FILE.rrng", help="Write the range file.")
@click.option("-q", "--quiet", is_flag=True,
              help="No progress bar (shown on a terminal for files of 5 M ions or more).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
def autorange(file, elements, max_atoms, max_charge, mass_range, min_significance, no_calibrate,
              suggest, output, quiet, as_json):
    """Range FILE automatically: the calibration first, from peaks unambiguous by their isotope
    pattern; then peaks above the local background explained by candidate ions whose whole
    isotope pattern fits, windows from the peak shape; ambiguities, notes and warnings."""
    import os

    from ..io import read, write_ranges
    from ..spectrum import analyse_peaks, sorted_masses
    from ..spectrum.autorange import autorange as compute
    from ._common import progress_bar
    from .spectrum import _mass_range

    rng = _mass_range(None, None, mass_range)
    if max_atoms < 1 or max_charge < 1:
        raise click.BadParameter("--max-atoms and --max-charge must be at least 1")
    if output is not None and os.path.splitext(output)[1].lower() != ".rrng":
        raise click.BadParameter(f"'{output}' is not a .rrng file name", param_hint="-o")
    run = read(file)
    tof = run.source("tof") if "tof" in run else None      # read only where sampled
    window = (max(rng[0], 0.3), rng[1])
    # the steps of spectrum.autorange.autorange, run here so that a bar can follow them
    bar = progress_bar(run.n_ions, quiet, "autorange")

    def step(name, share):
        if bar is not None:
            bar.set_postfix_str(name)
            bar.update(share * run.n_ions)

    try:
        step("sorting the masses", 0.0)
        sm = sorted_masses(run)
        step("finding the peaks", _STEP_SHARES[0])
        pa = analyse_peaks(run, tof, window, min_significance, sorted_mass=sm)
        step("identifying", _STEP_SHARES[1])
        res = compute(run, elements, max_atoms, max_charge, window, tof=tof,
                      min_significance=min_significance, calibrate=not no_calibrate,
                      sorted_mass=sm, peak_analysis=pa)
        step("done", 1.0 - sum(_STEP_SHARES))
    finally:
        if bar is not None:
            bar.close()
    if output:
        write_ranges(output, res.table)
    d = res.to_dict()
    d["file"] = file
    if suggest:
        from ..spectrum.autorange import suggest_elements

        d["suggestions"] = suggest_elements(res)
    if output:
        d["output"] = output
    if as_json:
        echo_json(d)
        return
    click.echo(f"{file}: {len(d['peaks'])} peaks, {len(d['ions'])} ions in "
               f"{len(d['ranges'])} windows; {100 * d['explained_fraction']:.1f} % of peak "
               f"counts explained (tolerance {d['tolerance']['rule']})")
    cal = d["calibration"]
    if cal["anchors"]:
        click.echo("calibration anchors: " + ", ".join(
            f"{a['ion']} {a['observed']:.3f} Da {a['offset_da']:+.3f}" for a in cal["anchors"])
            + ("" if cal["rms_after_da"] is None else
               f"; rms offset after it {cal['rms_after_da']:.4f} Da"))
    else:
        click.echo(f"calibration: none ({cal['reason']})")
    for ion in d["ions"]:
        pf = ion["pattern_fit"]
        rc = "n/a" if pf["reduced_chi2"] is None else f"{pf['reduced_chi2']:.2f}"
        click.echo(f"  {ion['ion']:<10} {len(ion['windows']):>2} windows  "
                   f"{ion['counts']:>12,.0f} ions  pattern chi2/dof {rc}")
    for a in d["ambiguities"]:
        split = "" if a["split"] is None else " split " + ", ".join(
            f"{k} {v:,.0f}" for k, v in a["split"].items())
        click.echo(f"ambiguous {a['mass']:.3f} Da: {' / '.join(a['ions'])} -> {a['assigned']}"
                   f"{split}")
    for u in d["unexplained"]:
        click.echo(f"unexplained peak {u['mass']:.3f} Da ({u['counts']:,.0f} counts, "
                   f"{u['significance']:.1f} sigma)")
    for note in d["notes"]:
        click.echo(f"note: {note}")
    for sg in d.get("suggestions", []):
        ions = "; ".join(f"{k} at {', '.join(f'{m:g}' for m in v)}" for k, v in sg["ions"].items())
        click.echo(f"suggested: {sg['element']} explains {sg['counts']:,.0f} unexplained counts "
                   f"({100 * sg['share']:.0f} %): {ions}")
    if suggest and not d.get("suggestions"):
        click.echo("suggested: no element (no unexplained peak, or none fits an element's "
                   "isotopes)")
    for w in d["warnings"]:
        click.echo(f"warning: {w['message']}", err=True)
    if output:
        click.echo(f"wrote {output}")
