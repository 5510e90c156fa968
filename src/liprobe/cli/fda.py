"""``liprobe fda FILE -r RANGES --species Li+``: frequency distribution analysis, Pearson mu."""

from __future__ import annotations

import click

from ._common import (
    Number,
    apply_selection,
    echo_json,
    echo_selection,
    element_list,
    figure_output,
    selection_options,
)


def _species_option(ctx, param, value):
    from ..chemistry import parse_species

    try:
        return parse_species(value)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None


@click.command()
@click.argument("file")
@click.option("-r", "--ranges", "ranges_path", required=True, help="Range file (.rrng, .rng).")
@click.option("--species", required=True, callback=_species_option, metavar="ION|ELEMENT",
              help="An ion (Li+, O2+: that ion) or an element (Li: every ion containing it).")
@click.option("--block", type=Number(integer=True), default=100, show_default=True,
              metavar="N", help="Ions per block.")
@selection_options
@click.option("--normalization", type=click.Choice(["solute", "blocks", "ions"]),
              default="solute", show_default=True,
              help="N of mu = sqrt(chi2/(N+chi2)): species count (as 3Depict), blocks, or ions.")
@click.option("--exclude", multiple=True, callback=element_list, metavar="EL,...",
              help="Drop every ion containing these elements (e.g. Cr) before blocking "
                   "(H and Ga are always dropped).")
@click.option("--blocks", "blocking", type=click.Choice(["sequential", "voxel"]),
              default="sequential", show_default=True,
              help="Consecutive ions in evaporation order, or spatial blocks of about N ions.")
@click.option("--shuffles", type=Number(integer=True), default=20, show_default=True,
              help="Label permutations for the shuffled baseline mu_shuffled (at most 10,000).")
@click.option("--seed", type=Number(integer=True), default=0, show_default=True,
              help="Seed of the permutations.")
@click.option("-o", "--output", callback=figure_output,
              metavar="FILE.png|svg", help="Write the distribution as a figure.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
def fda(file, ranges_path, species, block, roi, center, segment, normalization, exclude,
        blocking, shuffles, seed, output, as_json):
    """Is a species randomly distributed in FILE? Binomial frequency distribution, chi2, Pearson mu.

    Blocks of N ranged ions of the analysed phase (excluded elements, H, Ga and
    unranged ions dropped first) in evaporation order; mu is reported next to
    mu_shuffled, the mu of the same blocks with the labels randomly permuted.
    """
    from ..fda import MAX_SHUFFLES, frequency_distribution
    from ..io import read, read_ranges

    if block < 1:
        raise click.BadParameter("must be at least 1", param_hint="--block")
    if shuffles < 1:
        raise click.BadParameter("must be at least 1 (mu needs its baseline)",
                                 param_hint="--shuffles")
    if shuffles > MAX_SHUFFLES:
        raise click.BadParameter(f"must be at most {MAX_SHUFFLES:,} (got {shuffles:,})",
                                 param_hint="--shuffles")
    if seed < 0:
        raise click.BadParameter("must not be negative", param_hint="--seed")
    table = read_ranges(ranges_path)
    run = read(file)
    run, selection = apply_selection(run, roi, segment, table, center)
    result = frequency_distribution(run, table, species, block, exclude=exclude,
                                    normalization=normalization, blocks=blocking,
                                    shuffles=shuffles, seed=seed)
    d = result.to_dict()
    if roi is not None or segment is not None:
        d["selection"] = selection
    if output is not None:
        from ..plots.fda import plot_frequency_distribution

        d["figure"] = plot_frequency_distribution(result, output)
    if as_json:
        echo_json(d)
        return
    f = lambda v, fmt: "n/a" if v is None else format(v, fmt)  # noqa: E731
    click.echo(f"{file}: {d['species']} in {d['blocks']:,} {d['blocking']} blocks of "
               f"{d['block']} ions ({d['ions_kept']:,} of {d['ions_selected']:,} ions kept)")
    echo_selection(selection)
    click.echo(f"fraction     {100 * d['fraction']:.4f} %")
    click.echo(f"chi2         {d['chi2']:.4g} with {d['dof']} dof, p = {f(d['p_value'], '.3g')}")
    reasons = dict(d["reasons"])
    if d["mu"] is None:
        click.echo(f"mu           n/a ({reasons.pop('mu', 'not computable')})")
    else:
        click.echo(f"mu           {d['mu']:.4f}  (N = {d['normalization']}, "
                   f"{d['normalization_n']:,})")
    lo_hi = d["mu_shuffled_interval"]
    if d["mu_shuffled"] is None:
        why = reasons.pop("mu_shuffled", "not computable")
        if d["mu"] is not None:
            click.echo(f"mu_shuffled  n/a ({why})")
    else:
        click.echo(f"mu_shuffled  {d['mu_shuffled']:.4f}  (median of {d['shuffles']} label "
                   f"permutations; 5-95 %: {lo_hi[0]:.4f}-{lo_hi[1]:.4f})")
    if d["dispersion"] is not None:
        click.echo(f"dispersion   {d['dispersion']:.3f}  (variance of k over n p (1-p): "
                   ">1 clustering, <1 ordering)")
    for k, why in reasons.items():
        click.echo(f"{k}: n/a ({why})")
    if "figure" in d:
        click.echo(f"wrote {d['figure']}")
    for w in d["warnings"]:
        click.echo(f"warning: {w}", err=True)
