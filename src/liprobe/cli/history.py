"""``liprobe history FILE -o history.png``: voltage, mass and multiplicity along a run."""

from __future__ import annotations

import click

from ._common import Number, echo_json, figure_output


@click.command()
@click.argument("file")
@click.option("-o", "--output", callback=figure_output,
              metavar="HISTORY.png|svg", help="Write the figure.")
@click.option("--bins", type=Number(integer=True), default=400, show_default=True,
              help="Bins of consecutive ions.")
@click.option("--mass-bin", type=Number(), default=0.25, show_default=True, metavar="DA",
              help="Mass bin of the mass-against-index map, Da.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
def history(file, output, bins, mass_bin, as_json):
    """Voltage, mass and multiplicity against ion index of FILE; voltage jumps; abrupt end."""
    from ..history import run_history
    from ..io import read

    if bins < 1 or not mass_bin > 0:
        raise click.BadParameter("--bins >= 1 and --mass-bin > 0")
    run = read(file)
    h = run_history(run, n_bins=bins, mass_bin_Da=mass_bin)
    if output is not None:
        from ..plots.history import plot_history

        plot_history(h, output)
    d = h.to_dict()
    d["input"] = file
    d["output"] = output
    if as_json:
        echo_json(d)
        return
    click.echo(f"{file}: {d['ions']:,} ions")
    v = d["voltage"]
    if v is None:
        click.echo(f"voltage: none ({d['voltage_reason']})")
    else:
        click.echo(f"voltage: {v['start_V']:.0f} V -> {v['end_V']:.0f} V (max {v['max_V']:.0f} V); "
                   f"{len(d['voltage_jumps'])} jump(s)")
        for j in d["voltage_jumps"]:
            click.echo(f"  at ion {j['ion_index']:,}: {j['voltage_before_V']:.0f} -> "
                       f"{j['voltage_after_V']:.0f} V ({100 * j['relative_change']:+.1f} %)")
    m = d["multiplicity"]
    if m is None:
        click.echo(f"multiplicity: none ({d['multiplicity_reason']})")
    else:
        ev = m["multi_hit_event_fraction"]
        click.echo(f"multiple hits: {100 * m['multi_hit_fraction']:.2f} % of ions"
                   + ("" if ev is None else f", {100 * ev:.2f} % of events"))
        click.echo("  " + ", ".join(f"{k}: {c:,}" for k, c in m["counts"].items()))
    if d["abrupt_end"] is None:
        click.echo(f"abrupt end: cannot tell ({d['end'].get('reason')})")
    else:
        click.echo("abrupt end: " + ("yes, " + "; ".join(d["end"]["abrupt_end_reasons"])
                                     if d["abrupt_end"] else "no"))
    if output:
        click.echo(f"wrote {output}")
