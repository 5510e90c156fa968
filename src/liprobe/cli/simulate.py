"""``liprobe simulate``: a simulated run with its range file and truth, or a preset series."""

from __future__ import annotations

import os
import sys
import time

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


def _schedule(ctx, param, value):
    """``"0:5,2e5:10"`` -> ((0, 5.0), (200000, 10.0))."""
    if value is None:
        return ()
    out = []
    for part in value.split(","):
        start, sep, pj = part.strip().partition(":")
        try:
            if not sep:
                raise ValueError
            a, e = float(start), float(pj)
        except ValueError:
            raise click.BadParameter(f"'{part.strip()}' is not ION:PJ (write e.g. "
                                     "0:5,2e5:10)") from None
        if not a.is_integer():
            raise click.BadParameter(f"the start ion '{start}' is not a whole number")
        out.append((int(a), e))
    return tuple(out)


def _fracture(ctx, param, value):
    if value is None or value == "auto":
        return "auto"
    if value == "none":
        return None
    try:
        f = float(value)
    except ValueError:
        raise click.BadParameter(f"'{value}' is not auto, none or a fraction in (0, 1]") \
            from None
    if not 0 < f <= 1:
        raise click.BadParameter(f"the fraction must be in (0, 1], got {value}")
    return f


_SINGLE_RUN_OPTIONS = ("material", "coating", "thickness", "instrument", "laser_pj", "phases",
                       "fmt", "schedule", "fracture", "mobility", "hydrides", "hydrogen",
                       "settings", "field_v_nm")


@click.command()
@click.option("--preset", type=click.Choice(["paper"]), default=None,
              help="Write a whole series instead of one run: 'paper', the runs of the seed "
                   "study (Singh et al. 2023), into folder -o with its study.toml for "
                   "`liprobe study`. --ions sets a coated run's size (default 500,000; the "
                   "others scale with it).")
@click.option("--material", default="NMC811", show_default=True, callback=_material,
              help="NMC811, LiMn2O4, or a formula such as LiNi0.6Co0.2Mn0.2O2.")
@click.option("--coating", type=click.Choice(["none", "Cr"], case_sensitive=False),
              default="none", show_default=True, help="Conformal metal shell.")
@click.option("--coating-thickness", "thickness", type=Number(), default=None,
              callback=_non_negative, metavar="NM",
              help="Shell thickness in nm (default 5).")
@click.option("--ions", type=Number(integer=True), default=None, callback=_positive_int,
              help="Detected ions to write (accepts 2e6; default 1e6; at most 2e9, and what "
                   "the output folder's free disk holds; an uncoated specimen fractures "
                   "before, see --fracture).")
@click.option("--seed", type=Number(integer=True), default=0, show_default=True,
              callback=_non_negative, help="Random seed: same seed, same bytes.")
@click.option("--instrument", default="LEAP 5000 XS", show_default=True, callback=_instrument,
              help="LEAP 5000 XS (efficiency 0.80) or LEAP 5000 XR (0.52).")
@click.option("--laser-pj", type=Number(), default=5.0, show_default=True,
              help="Laser pulse energy (pJ): field, charge states, molecular ions, O loss, "
                   "thermal tail and Li transport follow it.")
@click.option("--schedule", callback=_schedule, metavar="ION:PJ,...",
              help="Change the laser energy during the run, e.g. 0:5,2e5:10,4e5:15 "
                   "(detected-ion index where each energy starts; overrides --laser-pj).")
@click.option("--fracture", callback=_fracture, metavar="auto|none|FRACTION",
              help="Where the specimen fractures, as a fraction of --ions; auto (default): "
                   "where the field's Maxwell stress first beats a surface flaw's strength "
                   "(liprobe.simulate.fracture: uncoated specimens often, coated ones rarely); "
                   "none: never.")
@click.option("--li-mobility/--no-li-mobility", "mobility", default=True, show_default=True,
              help="Li transport in the field (liprobe.simulate.lithium): drift to the "
                   "surface, loss between pulses, Li islands from an uncoated specimen's "
                   "flanks; off: Li stays in place (random labels).")
@click.option("--hydrogen", is_flag=True,
              help="H+ and H2+ from the chamber's residual gas (0.3 % and 0.1 % of the ions).")
@click.option("--hydrides", is_flag=True,
              help="With --hydrogen: also CrH+ and NiOH+ (2 % of Cr+ and of NiO+).")
@click.option("--phases", multiple=True, callback=_phases, metavar="MATERIAL=SHAPE",
              help="A second phase, e.g. LiMn2O4=sphere:20@0,0,-15 (nm, truth frame: apex at "
                   "0 when recording starts, z into the specimen negative) or "
                   "MATERIAL=box:X0:X1:Y0:Y1:Z0:Z1. Repeatable.")
@click.option("--format", "fmt", type=click.Choice(["pos", "epos"]), default=None,
              help="Output format (default: from the extension of -o).")
@click.option("--workers", type=Number(integer=True), default=None, metavar="N",
              help="With --preset: processes simulating runs in parallel (default: up to 2; "
                   "0: in this process).")
@click.option("--set", "settings", multiple=True, metavar="NAME=VALUE",
              help="Override one constant of the evaporation physics for this run "
                   "(--list-parameters names them), e.g. --set field_spread=0. Repeatable.")
@click.option("--field-v-nm", type=Number(), default=None, metavar="F",
              help="Fix the oxide's mean field (V/nm) instead of solving it from the apex "
                   "temperature: a probe of the model (the proxies follow the field).")
@click.option("--list-parameters", "list_parameters", is_flag=True,
              help="Print the table of the evaporation physics' constants (name, unit, value, "
                   "source, status: sourced, assumed or fitted) and exit; with --set, the "
                   "values set.")
@click.option("-o", "--output", default=None, metavar="FILE",
              help="Output run, e.g. run.epos; run.rrng, run.truth.json and run.truth.pos "
                   "are written beside it. With --preset: the output folder.")
@click.option("--json", "as_json", is_flag=True, help="Print a summary of the truth as JSON.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.pass_context
def simulate(ctx, **opts):
    """Simulate an atom probe run of a battery cathode, with its range file and truth.

    Writes FILE (.epos or .pos), FILE's .rrng covering every species emitted,
    .truth.json (every input, true compositions, counts per species and per
    window, laser segments, Li transport and its budget, fracture, radius and
    voltage against depth, instrument) and .truth.pos (true positions) beside it.

    With --preset paper, writes the seed study's whole series into the folder
    -o (runs/, ranges/ and study.toml): run `liprobe study DIR/study.toml -o OUT`
    next. Its runs are ranged with ranges/*.rrng, autoranged on their spectra
    pooled per listed material (and coating state); each run's truth-derived
    range file is runs/NAME.truth.rrng, for tests only.
    --list-parameters prints the evaporation physics' and the Li transport's constants
    and exits.
    """
    _simulate(ctx, opts)


def _simulate(ctx, o: dict):
    """The command, with its options in one dict (names as the parameters of :func:`simulate`)."""
    preset, material, coating, thickness = o["preset"], o["material"], o["coating"], \
        o["thickness"]
    ions, seed, instrument, laser_pj = o["ions"], o["seed"], o["instrument"], o["laser_pj"]
    schedule, fracture, mobility = o["schedule"], o["fracture"], o["mobility"]
    hydrogen, hydrides, phases, fmt = o["hydrogen"], o["hydrides"], o["phases"], o["fmt"]
    workers, settings, field_v_nm = o["workers"], o["settings"], o["field_v_nm"]
    output, as_json, quiet = o["output"], o["as_json"], o["quiet"]
    from ..simulate import (
        DEFAULT_EVAPORATION,
        DEFAULT_LITHIUM,
        lithium_parameter_table,
        parameter_table,
        with_overrides,
    )

    li_names = {r["name"] for r in lithium_parameter_table()}
    li_set = [s for s in settings if str(s).partition("=")[0].strip() in li_names]
    try:
        evaporation = with_overrides(DEFAULT_EVAPORATION,
                                     [s for s in settings if s not in li_set])
        lithium = with_overrides(DEFAULT_LITHIUM, li_set)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--set") from None
    if o["list_parameters"]:
        _print_parameters(parameter_table(evaporation) + lithium_parameter_table(lithium),
                          as_json)
        return
    if output is None:
        raise click.UsageError("Missing option '-o' / '--output'.")
    if preset is not None:
        _write_preset(ctx, preset, output, ions, seed, workers, quiet, as_json)
        return
    if workers is not None:
        raise click.BadParameter("only with --preset", param_hint="--workers")
    from ..simulate import (
        DEFAULT_HYDROGEN,
        HydrogenModel,
        SimulationConfig,
        simulate_to_files,
        summary,
    )

    ions = 1_000_000 if ions is None else ions
    ext = os.path.splitext(output)[1].lower().lstrip(".")
    if fmt is None and ext not in ("pos", "epos"):
        raise click.BadParameter(f"cannot tell the format from '.{ext}': name the file .epos "
                                 "or .pos, or give --format", param_hint="-o")
    if coating.lower() != "none" and thickness is not None and thickness <= 0:
        raise click.BadParameter("a coating needs a thickness above 0 nm",
                                 param_hint="--coating-thickness")
    extra = {} if thickness is None else {"coating_thickness_nm": float(thickness)}
    extra["evaporation"] = evaporation
    if field_v_nm is not None:
        extra["field_v_nm"] = field_v_nm
    extra["mobility"] = lithium if mobility else None
    if hydrides and not hydrogen:
        raise click.BadParameter("needs --hydrogen", param_hint="--hydrides")
    if hydrogen:
        extra["hydrogen"] = HydrogenModel(**{**DEFAULT_HYDROGEN.to_dict(), "hydrides": hydrides})
    try:
        config = SimulationConfig(material=material, coating=coating, ions=ions, seed=seed,
                                  instrument=instrument, laser_pj=laser_pj, phases=phases,
                                  schedule=schedule, fracture=fracture, **extra)
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
    pj = "/".join(f"{e:g}" for e in s["laser_pj"])
    click.echo(f"{output}: {s['ions_detected']:,} ions of {material}"
               f"{' with a ' + coating + ' coating' if coating.lower() != 'none' else ''}, "
               f"{pj} pJ, {s['instrument']}, seed {seed}"
               + (f" (fractured: {s['ions_requested']:,} requested)" if s["fractured"] else ""))
    for key in ("ranges", "truth", "truth_positions"):
        click.echo(f"  {os.path.join(folder, s['files'][key])}")
    fr = s["evaporated_atomic_fractions"]
    click.echo("evaporated at.%: " + ", ".join(f"{el} {100 * v:.2f}" for el, v in fr.items()))
    click.echo(f"ranged {100 * s['ranged_fraction']:.2f} % of ions in {s['windows']} windows; "
               f"depth {s['depth_nm']:.1f} nm, radius {s['radius_nm'][0]:.1f}-"
               f"{s['radius_nm'][1]:.1f} nm, {s['voltage_V'][0]:.0f}-{s['voltage_V'][1]:.0f} V")
    fld, temp = s["field"], s["temperature"]
    coat_f = (f", coating {fld['coating_mean_v_nm']:.2f} V/nm"
              if fld.get("coating_mean_v_nm") is not None else "")
    click.echo(f"apex: peak {temp['peak_k']:.0f} K, oxide field {fld['oxide_mean_v_nm']:.2f} V/nm"
               f"{coat_f}" + (" (fixed)" if fld.get("fixed") else ""))
    for note in s["notes"]:
        click.echo(f"note: {note}", err=True)


def _print_parameters(rows: list, as_json: bool) -> None:
    if as_json:
        echo_json({"parameters": rows})
        return
    for r in rows:
        click.echo(f"{r['name']:34s} {r['value']:>11.6g} {r['unit']:6s} {r['status']:8s} "
                   f"{r['source']}")


def _write_preset(ctx, preset, output, ions, seed, workers, quiet, as_json):
    """``--preset``: the series into folder ``output``; single-run options are refused."""
    from click.core import ParameterSource

    given = [p for p in _SINGLE_RUN_OPTIONS
             if ctx.get_parameter_source(p) not in (None, ParameterSource.DEFAULT)]
    if given:
        names = {p.name: p.opts[0] for p in ctx.command.params}
        raise click.UsageError(f"{', '.join(names.get(g, g) for g in given)}: not with "
                               "--preset (a preset fixes every run)")
    if workers is not None and workers < 0:
        raise click.BadParameter("must not be negative", param_hint="--workers")
    if os.path.exists(output) and not os.path.isdir(output):
        raise click.BadParameter(f"'{output}' is a file; --preset writes a folder",
                                 param_hint="-o")
    from ..simulate import preset_runs, write_preset

    total = len(preset_runs(preset))
    bar = None
    if not quiet and sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=total, unit=" runs", file=sys.stderr, desc=f"preset {preset}")

    def step(done, n, name):
        if bar is not None:
            bar.update(1)
            bar.set_postfix_str(name)

    t0 = time.perf_counter()
    try:
        path = write_preset(preset, output, ions=ions, seed=seed, workers=workers,
                            progress=step)
    finally:
        if bar is not None:
            bar.close()
    seconds = time.perf_counter() - t0
    if as_json:
        echo_json({"preset": preset, "manifest": path, "runs": total,
                   "folder": os.path.join(output, "runs"), "seed": seed, "ions": ions,
                   "seconds": seconds})
        return
    click.echo(f"{path}: {total} runs of the '{preset}' preset in "
               f"{os.path.join(output, 'runs')} ({seconds:.1f} s); next: liprobe study "
               f"{path} -o OUT")
