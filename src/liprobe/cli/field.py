"""``liprobe field FILE -r RANGES``: charge-state ratios and O2+/O+, the field proxies."""

from __future__ import annotations

import click

from ..field import parse_ion_ratio
from ._common import (
    Number,
    apply_selection,
    each_checked,
    echo_json,
    echo_selection,
    selection_options,
)


@click.command()
@click.argument("file")
@click.option("-r", "--ranges", "ranges_path", required=True, help="Range file (.rrng, .rng).")
@selection_options
@click.option("--ratio", "ratios", multiple=True, metavar="EXPR",
              callback=each_checked(parse_ion_ratio, "--ratio"),
              help="A further ion ratio, e.g. 'Mn++/Mn+' or 'NiO+/Ni+'. Repeatable.")
@click.option("--kingham", "with_kingham", is_flag=True,
              help="Also read each metal's charge-state ratio through its Kingham curves: a "
                   "Kingham-equivalent field in V/nm (background subtracted; the coating's "
                   "ions for the coating element, the oxide's core for the others).")
@click.option("--all-elements", is_flag=True,
              help="With --kingham, also the oxide cations (Ni, Co, Mn...): relative "
                   "indicators, not fields.")
@click.option("--coating", default="Cr", show_default=True, metavar="EL",
              help="With --kingham, the coating element (its shell's ions give its ratio).")
@click.option("--margin", "margin_nm", type=Number(), default=3.0, show_default=True,
              metavar="NM", help="With --kingham, how far inside the coating the oxide's "
                                 "ions are taken.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
def field(file, ranges_path, roi, center, segment, ratios, with_kingham, all_elements, coating,
          margin_nm, as_json):
    """Field proxies of FILE: charge-state ratios (Ni++/Ni+, ...), O2+/O+ and O+/(O+ + O2+).

    Counting errors only. Mn++/Mn+ is clean only away from a Cr coating
    (54CrH+ on Mn+, Cr++ tails under Mn++): use --roi. With --kingham, a
    Kingham-equivalent field per metal (docs/kingham.md).
    """
    from ..field import field_proxies
    from ..io import read, read_ranges

    if (all_elements or coating != "Cr" or margin_nm != 3.0) and not with_kingham:
        raise click.UsageError("--all-elements, --coating and --margin go with --kingham")
    if not (margin_nm >= 0 and margin_nm < float("inf")):
        raise click.BadParameter("must be a finite number, not negative", param_hint="--margin")
    from ..chemistry import is_element

    if not is_element(coating):
        raise click.BadParameter(f"'{coating}' is not a chemical element", param_hint="--coating")
    table = read_ranges(ranges_path)
    run = read(file)
    run, selection = apply_selection(run, roi, segment, table, center)
    result = field_proxies(run, table, ratios)
    d = result.to_dict()
    kf = None
    if with_kingham:
        from ..study.kingham import kingham_fields

        kf = kingham_fields(run, table, coating=coating, all_elements=all_elements,
                            margin_nm=margin_nm)
        d.update(kf.to_dict())
    if roi is not None or segment is not None:
        d["selection"] = selection
    if as_json:
        echo_json(d)
        return
    click.echo(f"{file}: {d['ions_total']:,} ions")
    echo_selection(selection)
    for title, group in (("charge-state ratios", d["charge_state_ratios"]),
                         ("ratios", d["ratios"])):
        click.echo(f"{title}:" if group else f"{title}: none")
        for text, r in group.items():
            if r["value"] is None:
                click.echo(f"  {text:<16} n/a ({r['reason']})")
            else:
                click.echo(f"  {text:<16} {r['value']:.5g} +/- {r['error']:.2g}  "
                           f"({r['numerator']:,} / {r['denominator']:,})")
    if kf is not None:
        click.echo("Kingham fields (V/nm; error: counting statistics only, not the model's):")
        for el, f in kf.elements.items():
            if f.value_v_nm is None:
                click.echo(f"  {el:<3} n/a ({f.why_missing()})")
            else:
                err = "n/a" if f.error_v_nm is None else f"{f.error_v_nm:.2g}"
                click.echo(f"  {el:<3} {f.value_v_nm:.2f} +/- {err}  from "
                           f"{f.field.pair} = {f.field.ratio:.4g} in {f.region}: {f.label}")
        for note in kf.notes:
            click.echo(f"  note: {note}")
    for w in d["warnings"]:
        click.echo(f"warning: {w}", err=True)
