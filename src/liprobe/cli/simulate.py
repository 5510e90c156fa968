"""``liprobe simulate``: a simulated run with its range file and truth."""

from __future__ import annotations

import os
import sys

import click

from ._common import Number, echo_json


def _material(ctx, param, value):
    from ..simulate import resolve_material

    try:
        resolve_material(value)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None
    return value


def _phases(ctx, param, value):
    from ..simulate import PhaseSpec, resolve_material

    out = []
    for text in value:
        try:
            spec = PhaseSpec.parse(text)
            resolve_material(spec.material)
        except ValueError as e:
            raise click.BadParameter(str(e)) from None
        out.append(spec)
    return tuple(out)


def _instrument(ctx, param, value):
    from ..instruments import instrument

    try:
        return instrument(value).name
    except KeyError as e:
        raise click.BadParameter(e.args[0]) from None


def _non_negative(ctx, param, value):
    if value is not None and not value >= 0:
        raise click.BadParameter(f"must not be negative, got {value:g}")
    return value


def _positive_int(ctx, param, value):
    if value is not None and value <= 0:
        raise click.BadParameter(f"must be a whole number above 0, got {value}")
    return value


@click.command()
@click.option("--material", default="NMC811", show_default=True, callback=_material,
              help="NMC811, LiMn2O4, or a formula such as LiNi0.6Co0.2Mn0.2O2.")
@click.option("--coating", type=click.Choice(["none", "Cr"], case_sensitive=False),
              default="none", show_default=True, help="Conformal metal shell.")
@click.option("--coating-thickness", "thickness", type=Number(), default=None,
              callback=_non_negative, metavar="NM",
              help="Shell thickness in nm (default 5).")
@click.option("--ions", type=Number(integer=True), default=1_000_000, show_default=True,
              callback=_positive_int, help="Detected ions to write (accepts 2e6).")
@click.option("--seed", type=Number(integer=True), default=0, show_default=True,
              callback=_non_negative, help="Random seed: same seed, same bytes.")
@click.option("--instrument", default="LEAP 5000 XS", show_default=True, callback=_instrument,
              help="LEAP 5000 XS (efficiency 0.80) or LEAP 5000 XR (0.52).")
@click.option("--laser-pj", type=Number(), default=5.0, show_default=True,
              help="Laser pulse energy, recorded (the ion shares are the 5 pJ defaults).")
@click.option("--phases", multiple=True, callback=_phases, metavar="MATERIAL=SHAPE",
              help="A second phase, e.g. LiMn2O4=sphere:20@0,0,-15 (nm, truth frame: apex at "
                   "0 when recording starts, z into the specimen negative) or "
                   "MATERIAL=box:X0:X1:Y0:Y1:Z0:Z1. Repeatable.")
@click.option("--format", "fmt", type=click.Choice(["pos", "epos"]), default=None,
              help="Output format (default: from the extension of -o).")
@click.option("-o", "--output", required=True, metavar="FILE",
              help="Output run, e.g. run.epos; run.rrng, run.truth.json and run.truth.pos "
                   "are written beside it.")
@click.option("--json", "as_json", is_flag=True, help="Print a summary of the truth as JSON.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def simulate(material, coating, thickness, ions, seed, instrument, laser_pj, phases, fmt,
             output, as_json, quiet):
    """Simulate an atom probe run of a battery cathode, with its range file and truth.

    Writes FILE (.epos or .pos), FILE's .rrng covering every species emitted,
    .truth.json (every input, true compositions, counts per species and per
    window, radius and voltage against depth, instrument) and .truth.pos (true
    positions) beside it.
    """
    from ..simulate import SimulationConfig, simulate_to_files, summary

    ext = os.path.splitext(output)[1].lower().lstrip(".")
    if fmt is None and ext not in ("pos", "epos"):
        raise click.BadParameter(f"cannot tell the format from '.{ext}': name the file .epos "
                                 "or .pos, or give --format", param_hint="-o")
    if coating.lower() != "none" and thickness is not None and thickness <= 0:
        raise click.BadParameter("a coating needs a thickness above 0 nm",
                                 param_hint="--coating-thickness")
    extra = {} if thickness is None else {"coating_thickness_nm": float(thickness)}
    try:
        config = SimulationConfig(material=material, coating=coating, ions=ions, seed=seed,
                                  instrument=instrument, laser_pj=laser_pj, phases=phases,
                                  **extra)
    except ValueError as e:
        raise click.UsageError(str(e)) from None
    bar = None
    if not quiet and sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=ions, unit=" ions", unit_scale=True, file=sys.stderr,
                   desc="simulate")
    try:
        truth = simulate_to_files(config, output, fmt, progress=bar.update if bar else None)
    except ValueError as e:        # e.g. a needle that cannot hold the start depth
        raise click.UsageError(str(e)) from None
    finally:
        if bar is not None:
            bar.close()
    s = summary(truth)
    if as_json:
        echo_json(s)
        return
    folder = os.path.dirname(output)
    click.echo(f"{output}: {s['ions_detected']:,} ions of {material}"
               f"{' with a ' + coating + ' coating' if coating.lower() != 'none' else ''}, "
               f"{s['instrument']}, seed {seed}")
    for key in ("ranges", "truth", "truth_positions"):
        click.echo(f"  {os.path.join(folder, s['files'][key])}")
    fr = s["evaporated_atomic_fractions"]
    click.echo("evaporated at.%: " + ", ".join(f"{el} {100 * v:.2f}" for el, v in fr.items()))
    click.echo(f"ranged {100 * s['ranged_fraction']:.2f} % of ions in {s['windows']} windows; "
               f"depth {s['depth_nm']:.1f} nm, radius {s['radius_nm'][0]:.1f}-"
               f"{s['radius_nm'][1]:.1f} nm, {s['voltage_V'][0]:.0f}-{s['voltage_V'][1]:.0f} V")
    for note in s["notes"]:
        click.echo(f"note: {note}", err=True)
