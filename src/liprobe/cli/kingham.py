"""``liprobe kingham ELEMENT``: Kingham curves, the charge-state fractions against field."""

from __future__ import annotations

import click

from ._common import echo_json, figure_output


def _parse_fields(ctx, param, value):
    """``LO:HI`` or ``LO:HI:STEP`` in V/nm -> the fields (HI included when on the step)."""
    import math

    import numpy as np

    parts = value.split(":")
    try:
        nums = [float(p) for p in parts]
    except ValueError:
        raise click.BadParameter(f"'{value}' is not LO:HI[:STEP] in V/nm") from None
    if len(nums) not in (2, 3):
        raise click.BadParameter(f"'{value}' is not LO:HI[:STEP] in V/nm")
    lo, hi = nums[0], nums[1]
    step = nums[2] if len(nums) == 3 else 1.0
    if not all(np.isfinite(nums)) or not (0 < lo < hi and step > 0):
        raise click.BadParameter(f"'{value}': need 0 < LO < HI and STEP > 0")
    if lo < 0.1 or hi > 1000:
        raise click.BadParameter(f"'{value}': fields must be at least 0.1 and at most 1000 V/nm")
    n = int(math.floor((hi - lo) / step * (1 + 1e-12))) + 1
    if n < 2:
        raise click.BadParameter(f"'{value}' gives one field; give at least two fields")
    if n > 10_000:
        raise click.BadParameter(f"'{value}' gives {n:,} fields; at most 10,000")
    return lo + step * np.arange(n)


@click.command()
@click.argument("element")
@click.option("--fields", default="10:80", show_default=True, callback=_parse_fields,
              metavar="LO:HI[:STEP]", help="Surface fields in V/nm (step 1 by default).")
@click.option("-o", "--output", callback=figure_output, metavar="FILE.png|svg",
              help="Draw the curves.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
def kingham(element, fields, output, as_json):
    """Kingham curves of ELEMENT: the fraction of each charge state against the surface field.

    Post-ionisation model after Kingham (Surf. Sci. 116, 1982); how it compares
    with published curves is in docs/kingham.md. The crossovers are the fields
    at which neighbouring charge states are equally abundant.
    """
    from ..kingham import ELEMENTS, kingham_curves

    if element not in ELEMENTS:
        raise click.BadParameter(f"no Kingham data for '{element}' (known: "
                                 f"{', '.join(ELEMENTS)})", param_hint="ELEMENT")
    c = kingham_curves(element, fields)
    if output:
        from ..plots.kingham import plot_kingham

        plot_kingham(c, output)
    d = c.to_dict()
    d["outputs"] = [output] if output else []
    if as_json:
        echo_json(d)
        return
    cross = ", ".join(f"{k}: {'none below 150' if v is None else f'{v:.2f}'}"
                      for k, v in c.crossover_v_nm.items())
    click.echo(f"{element}: Kingham curves (crossovers in V/nm: {cross})")
    charges = sorted(c.fractions)
    click.echo(f"  {'F (V/nm)':>9} " + " ".join(f"{element + '+' * q:>10}" for q in charges))
    for i, f in enumerate(c.fields_v_nm):
        click.echo(f"  {f:9.2f} " + " ".join(f"{c.fractions[q][i]:10.3g}" for q in charges))
    if output:
        click.echo(f"wrote {output}")
