"""``liprobe detector-map FILE``: hit density on the detector and how uneven it is."""

from __future__ import annotations

import click

from ._common import (
    Number,
    apply_selection,
    echo_json,
    echo_selection,
    figure_output,
    selection_options,
)


@click.command("detector-map")
@click.argument("file")
@click.option("-r", "--ranges", "ranges_path", help="Range file (.rrng, .rng): ranged hits, "
              "the --coating ring, --species.")
@click.option("--species", metavar="ION|EL", help="Map this ion (Li+) or element (Li: every ion "
              "carrying it) and its fraction of the ranged hits.")
@click.option("--bins", type=Number(integer=True), default=128, show_default=True,
              help="Bins across the map, each way.")
@click.option("--grid-bins", type=Number(integer=True), default=32, show_default=True,
              help="Bins across the core disc for the heterogeneity.")
@click.option("--sample", "sample_size", type=Number(integer=True), default=100_000,
              show_default=True, help="Ions drawn (seeded) for the heterogeneity.")
@click.option("--seed", type=Number(integer=True), default=0, show_default=True)
@click.option("--coating", "coating_element", metavar="EL",
              help="The specimen's coating element (e.g. Cr; needs -r): the core disc is "
                   "taken inside its ring on the detector. Default: no coating looked for.")
@click.option("--core-radius", type=Number(), metavar="MM",
              help="Core disc radius on the detector (default: inside the --coating ring, "
                   "else 0.8 of the detector radius).")
@click.option("-o", "--output", callback=figure_output,
              metavar="MAP.png|svg", help="Write the map as an image.")
@selection_options
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
def detector_map(file, ranges_path, species, bins, grid_bins, sample_size, seed,
                 coating_element, core_radius, output, roi, center, segment, as_json):
    """Detector event map of FILE (needs det_x, det_y) with its heterogeneity."""
    from ..io import read, read_ranges
    from ..spatial.detector import detector_map as compute

    if species is not None:
        if ranges_path is None:
            raise click.BadParameter("needs a range file (-r)", param_hint="--species")
        from ..chemistry import parse_species

        try:
            parse_species(species)
        except ValueError as e:
            raise click.BadParameter(str(e), param_hint="--species") from None
    if coating_element is not None:
        from ..chemistry import is_element

        if not is_element(coating_element):
            raise click.BadParameter(f"'{coating_element}' is not a chemical element",
                                     param_hint="--coating")
        if ranges_path is None:
            raise click.BadParameter("needs a range file (-r) to find the coating's ions",
                                     param_hint="--coating")
        if core_radius is not None:
            raise click.UsageError("--coating finds the core radius; --core-radius gives it: "
                                   "use one")
    if bins < 1 or grid_bins < 4 or sample_size < 1:
        raise click.BadParameter("--bins >= 1, --grid-bins >= 4 and --sample >= 1")
    table = read_ranges(ranges_path) if ranges_path else None
    run = read(file)
    run, selection = apply_selection(run, roi, segment, table, center)
    result = compute(run, table, species=species, bins=bins, sample_size=sample_size, seed=seed,
                     grid_bins=grid_bins, core_radius_mm=core_radius,
                     coating_element=coating_element)
    if output is not None:
        from ..plots.detector import plot_detector_map

        plot_detector_map(result, output)
    d = result.to_dict()
    d["selection"] = selection
    d["output"] = output
    if as_json:
        echo_json(d)
        return
    h = d["heterogeneity"]
    click.echo(f"{file}: {d['ions']:,} ions on a {bins} x {bins} map, "
               f"{d['bin_mm']:.3f} mm bins; detector radius {d['detector_radius_mm']:.2f} mm")
    echo_selection(selection)
    click.echo(f"core disc: radius {d['core_radius_mm']:.2f} mm around "
               f"({d['center_mm'][0]:.2f}, {d['center_mm'][1]:.2f}) mm ({d['core_method']})")
    click.echo(f"heterogeneity (excess variance over Poisson / mean^2, {h['sample_size']:,} ions, "
               f"{h['bins_used']} bins of {h['bin_mm']:.2f} mm): {h['heterogeneity']:.5f} "
               f"+/- {h['heterogeneity_noise']:.5f} "
               f"(rms variation {100 * h['rms_variation']:.1f} %)")
    f = h.get("species_fraction")
    if f:
        if f.get("reason"):
            click.echo(f"{species} fraction: not tested ({f['reason']})")
        else:
            mu_s = "n/a" if f["mu_shuffled"] is None else f"{f['mu_shuffled']:.4f}"
            click.echo(f"{species} fraction {f['fraction']:.4f}: chi2 = {f['chi2']:.1f}, "
                       f"dof {f['dof']}, p = {f['p_value']:.3g}, mu = {f['mu']:.4f} "
                       f"(shuffled {mu_s})")
    if output:
        click.echo(f"wrote {output}")
    for w in d["warnings"]:
        click.echo(f"warning: {w}", err=True)
