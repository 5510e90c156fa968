"""``liprobe field FILE -r RANGES``: charge-state ratios and O2+/O+, the field proxies."""

from __future__ import annotations

import click

from ..field import parse_ion_ratio
from ._common import apply_selection, each_checked, echo_json, selection_options


@click.command()
@click.argument("file")
@click.option("-r", "--ranges", "ranges_path", required=True, help="Range file (.rrng, .rng).")
@selection_options
@click.option("--ratio", "ratios", multiple=True, metavar="EXPR",
              callback=each_checked(parse_ion_ratio, "--ratio"),
              help="A further ion ratio, e.g. 'Mn++/Mn+' or 'NiO+/Ni+'. Repeatable.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
def field(file, ranges_path, roi, center, segment, ratios, as_json):
    """Field proxies of FILE: charge-state ratios (Ni++/Ni+, ...), O2+/O+ and O+/(O+ + O2+).

    Counting errors only. Mn++/Mn+ is clean only away from a Cr coating
    (54CrH+ on Mn+, Cr++ tails under Mn++): use --roi.
    """
    from ..field import field_proxies
    from ..io import read, read_ranges

    table = read_ranges(ranges_path)
    run = read(file)
    run, selection = apply_selection(run, roi, segment, table)
    result = field_proxies(run, table, ratios)
    d = result.to_dict()
    if roi is not None or segment is not None:
        d["selection"] = selection
    if as_json:
        echo_json(d)
        return
    click.echo(f"{file}: {d['ions_total']:,} ions")
    for title, group in (("charge-state ratios", d["charge_state_ratios"]),
                         ("ratios", d["ratios"])):
        click.echo(f"{title}:" if group else f"{title}: none")
        for text, r in group.items():
            if r["value"] is None:
                click.echo(f"  {text:<16} n/a ({r['reason']})")
            else:
                click.echo(f"  {text:<16} {r['value']:.5g} +/- {r['error']:.2g}  "
                           f"({r['numerator']:,} / {r['denominator']:,})")
    for w in d["warnings"]:
        click.echo(f"warning: {w}", err=True)
