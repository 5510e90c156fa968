"""``liprobe spectrum FILE``: the mass spectrum, its peaks with their shapes, and the background."""

from __future__ import annotations

import click

from ._common import Number, echo_json, given, split_list


def _mass_range(ctx, param, value):
    try:
        lo, hi = (float(v) for v in value.split(":"))
    except ValueError:
        raise click.BadParameter(f"'{value}' is not LO:HI in Da") from None
    if not 0 <= lo < hi:
        raise click.BadParameter(f"'{value}' needs 0 <= LO < HI")
    return lo, hi


def _output_kind(path):
    import os

    ext = os.path.splitext(path)[1].lower()
    if ext not in (".png", ".svg", ".csv"):
        raise click.BadParameter(f"cannot tell what to write from '{path}': give a .png, .svg "
                                 "or .csv file name", param_hint="-o")
    return ext[1:]


def _select(run, multiplicity):
    """The run, restricted to single or multiple hits if asked, and its tof column as it lies
    in the file (read only where sampled), or None. The masses are read a chunk at a time by
    the analyses, never held whole."""
    if multiplicity != "all":
        from ..spectrum.multihit import hit_mask_run

        run = run.select(hit_mask_run(run, multiplicity))          # 1 bit per ion
    return run, (run.source("tof") if "tof" in run else None)


@click.command()
@click.argument("file")
@click.option("-r", "--ranges", "ranges_path", help="Range file whose windows are shaded.")
@click.option("--bin", "bin_da", type=Number(), default=0.01, show_default=True,
              help="Bin width of the histogram in Da.")
@click.option("--mass", "mass_range", default="0:200", show_default=True, callback=_mass_range,
              metavar="LO:HI", help="Mass window in Da.")
@click.option("--normalize", default=None, metavar="total|ION",
              help="Divide counts by all ions in the window (total) or by the counts of an "
                   "ion's main peak (e.g. O2+). Default: total with --compare, else none.")
@click.option("--compare", "other_path", metavar="OTHER_FILE",
              help="Overlay a second run, both normalised; adds a table of shared peaks.")
@click.option("--multiplicity", type=click.Choice(["single", "multiple", "all"]), default="all",
              show_default=True, help="Only ions of single- or multiple-hit events (.epos).")
@click.option("--calibration", "calib_ions", multiple=True, callback=split_list,
              metavar="ION,...", help="Check the mass calibration on these known peaks "
                                      "(e.g. H+,O+,O2+): sqrt(m) fit and drift, not applied.")
@click.option("--min-significance", type=Number(), default=5.0, show_default=True,
              help="z of a peak above its local background.")
@click.option("-o", "--output", metavar="FILE.png|svg|csv",
              help="Write the spectrum as a figure or as a table of bins.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
def spectrum(file, ranges_path, bin_da, mass_range, normalize, other_path, multiplicity,
             calib_ions, min_significance, output, as_json):
    """Mass spectrum of FILE: log-scaled histogram, peaks (position, widths at 50/10/1 %,
    resolving power, thermal tail in ns) and the background (ppm/ns and per Da)."""
    from ..errors import AnalysisError
    from ..io import read, read_ranges
    from ..spectrum import (
        analyse_peaks,
        compare_spectra,
        mass_histogram,
        normalization_factor,
        sorted_masses,
    )

    if bin_da <= 0:
        raise click.BadParameter("must be positive", param_hint="--bin")
    kind = _output_kind(output) if output else None
    if kind is None and given(click.get_current_context(), {"bin_da": "--bin"}):
        raise click.UsageError("--bin sets the bins of the figure or table written with -o "
                               "(the peaks do not depend on it): add -o or drop --bin")
    table = read_ranges(ranges_path) if ranges_path else None
    run = read(file)
    mass, tof = _select(run, multiplicity)
    sm = sorted_masses(mass)
    pk_range = (max(mass_range[0], 0.5), mass_range[1])
    pa = analyse_peaks(mass, tof, pk_range, min_significance, sorted_mass=sm)
    hist = mass_histogram(mass, bin_da, mass_range)
    norm = normalize or ("total" if other_path else None)
    d = {"file": file, "ions": int(run.n_ions), "ions_selected": int(mass.n_ions),
         "multiplicity": multiplicity, "bin_da": bin_da, "mass_range": list(mass_range)}
    d.update(pa.to_dict())
    if table is not None:
        _name_peaks(d["peaks"], table)
    scale_a = 1.0
    other_hist = None
    scale_b = 1.0
    if norm:
        na = normalization_factor(mass, norm, mass_range, sorted_mass=sm)
        scale_a = na[0]
        d["normalization"] = {"by": norm, "counts": na[0], "what": na[1]}
    if other_path:
        other = read(other_path)
        try:                     # what goes wrong with the other run names its file
            mass_b, tof_b = _select(other, multiplicity)
            sm_b = sorted_masses(mass_b)
            pb = analyse_peaks(mass_b, tof_b, pk_range, min_significance, sorted_mass=sm_b)
            nb = normalization_factor(mass_b, norm, mass_range, sorted_mass=sm_b)
            other_hist = mass_histogram(mass_b, bin_da, mass_range)
        except AnalysisError as e:
            if e.path is not None:
                raise
            raise AnalysisError(e.problem, other_path, e.where) from None
        scale_b = nb[0]
        d["compare"] = {"file": other_path, **compare_spectra(pa, pb, na, nb, norm).to_dict(),
                        "peaks": [p.to_dict() for p in pb.peaks],
                        "background": pb.background.to_dict()}
        if table is not None:
            _name_peaks(d["compare"]["peaks"], table)
            _name_peaks(d["compare"]["shared_peaks"], table)
    if calib_ions:
        from ..spectrum.calibration import calibration_check, peak_drift

        try:
            d["calibration"] = calibration_check(mass, calib_ions, sorted_mass=sm).to_dict()
            d["drift"] = peak_drift(mass, calib_ions).to_dict()
        except ValueError as e:
            raise click.BadParameter(str(e), param_hint="--calibration") from None
    if kind in ("png", "svg"):
        from ..plots.spectrum import plot_spectrum

        ylabel = "counts per bin" if not norm else f"counts per bin / {norm} counts"
        d["figure"] = plot_spectrum(hist, output, table, other_hist, scale_a, scale_b,
                                    labels=(file, other_path or ""), ylabel=ylabel,
                                    title=f"{file} ({multiplicity} hits, {bin_da:g} Da bins)")
    elif kind == "csv":
        import numpy as np

        from ..io._files import atomic_write

        with atomic_write(output, "w", encoding="utf-8") as f:
            cols = ["mass_lo_da", "mass_hi_da", "counts"]
            if norm:
                cols.append("normalized")
            if other_hist is not None:
                cols += ["counts_other", "normalized_other"]
            f.write(",".join(cols) + "\n")
            for k in np.flatnonzero((hist.counts > 0) | (other_hist.counts > 0 if other_hist
                                                         is not None else False)):
                row = [f"{hist.edges[k]:.6f}", f"{hist.edges[k + 1]:.6f}", str(hist.counts[k])]
                if norm:
                    row.append(f"{hist.counts[k] / scale_a:.6g}")
                if other_hist is not None:
                    row += [str(other_hist.counts[k]), f"{other_hist.counts[k] / scale_b:.6g}"]
                f.write(",".join(row) + "\n")
        d["table"] = output
    if as_json:
        echo_json(d)
        return
    bg = d["background"]
    click.echo(f"{file}: {d['ions_selected']:,} ions ({multiplicity} hits), "
               f"{len(d['peaks'])} peaks above {min_significance:g} sigma")
    ppm = bg["ppm_per_ns"]
    click.echo("background: " + (f"{ppm:.3g} ppm/ns" if ppm is not None else "ppm/ns n/a")
               + ", " + ", ".join(f"{x['counts_per_da']:.3g}/Da at {x['mass']:g} Da"
                                   for x in bg["per_da"][1:3] if x["counts_per_da"] is not None))
    if "normalization" in d:
        click.echo(f"normalized by {d['normalization']['what']}")
    named = table is not None
    click.echo("    mass    counts    FWHM   MRP50   MRP10    MRP1  tail_ns  tail_frac"
               + ("  ion" if named else ""))
    f = lambda v, fmt: "     n/a" if v is None else format(v, fmt)  # noqa: E731
    for p in d["peaks"]:
        click.echo(f"{p['mass']:8.3f} {p['counts']:9.0f} {f(p['fwhm'], '7.4f')} "
                   f"{f(p['mrp_fwhm'], '7.0f')} {f(p['mrp_fw10'], '7.0f')} "
                   f"{f(p['mrp_fw1'], '7.0f')} {f(p['tail_ns'], '8.2f')} "
                   f"{f(p['tail_fraction'], '10.4f')}"
                   + (f"  {p['ion'] or 'unranged'}" if named else ""))
    if "compare" in d:
        _echo_compare(d["compare"], named)
    if "calibration" in d:
        _echo_calibration(d["calibration"], d["drift"])
    for k in ("figure", "table"):
        if k in d:
            click.echo(f"wrote {d[k]}")


def _name_peaks(peaks, table):
    """Add to each peak dict the ion of the range window holding its mass (or None)."""
    for p in peaks:
        ions = sorted({r.ion.name for r in table.ranges if r.lo <= p["mass"] < r.hi})
        p["ion"] = " / ".join(ions) if ions else None


def _echo_compare(c, named):
    na, nb = c["normalization"]["a"], c["normalization"]["b"]
    click.echo(f"compared with {c['file']}: normalized by {c['normalize']} (this run "
               f"{na['what']}; the other {nb['what']})")
    click.echo(f"  {len(c['shared_peaks'])} shared peaks:")
    click.echo("      mass   norm. this  norm. other  other/this  FWHM this  FWHM other"
               + ("  ion" if named else ""))
    f = lambda v, fmt: "n/a" if v is None else format(v, fmt)  # noqa: E731
    for s in c["shared_peaks"]:
        click.echo(f"  {s['mass']:8.3f}  {s['normalized_a']:11.4g}  {s['normalized_b']:11.4g}  "
                   f"{f(s['ratio_b_over_a'], '10.4g'):>10}  {f(s['fwhm_a'], '.4f'):>9}  "
                   f"{f(s['fwhm_b'], '.4f'):>10}"
                   + (f"  {s.get('ion') or 'unranged'}" if named else ""))
    for key, who in (("only_in_a", "this run"), ("only_in_b", "the other")):
        if c[key]:
            click.echo(f"  peaks only in {who}: " + ", ".join(f"{m:g}" for m in c[key]) + " Da")


def _echo_calibration(cal, drift):
    click.echo(f"calibration check ({cal['model']}):")
    if cal.get("reason"):
        click.echo(f"  fit: n/a ({cal['reason']})")
    else:
        rms = cal["rms_after_fit_da"]
        click.echo(f"  a = {cal['a_sqrt_da']:.5g} sqrt(Da), b = {cal['b']:.6f}; rms offset after "
                   "the fit " + ("n/a" if rms is None else f"{rms:.4g} Da"))
    click.echo("    ion         true Da  observed Da  offset Da  offset ppm  after fit Da")
    for r in cal["peaks"]:
        after = "n/a" if r["offset_after_fit_da"] is None else f"{r['offset_after_fit_da']:+.5f}"
        click.echo(f"    {r['ion']:<10} {r['true_mass']:8.4f} {r['observed_mass']:12.4f} "
                   f"{r['offset_da']:+10.5f} {r['offset_ppm']:+11.1f} {after:>13}")
    click.echo(f"drift over {len(drift['blocks'])} blocks of consecutive ions:")
    for name, pk in drift["peaks"].items():
        rng = "n/a" if pk["range_da"] is None else f"{pk['range_da']:.4f} Da"
        sl = pk["slope_da_per_million_ions"]
        click.echo(f"    {name:<10} range {rng}, slope "
                   + ("n/a" if sl is None else f"{sl:+.4g} Da per million ions"))
