"""``liprobe reconstruct FILE -o OUT.pos``: point-projection reconstruction from detector hits.

``--compare-to-file-positions`` fits the projection that maps the file's
hits onto its own x, y, z (a reconstruction made elsewhere) and reports the
residuals per depth slab; with ``-o`` the reconstruction is written too.
An option that one mode would ignore is a usage error.

No material is assumed: the atomic volume Omega comes from ``--atomic-volume``,
else ``--material``, else the range file's ``Vol:`` (``-r``), else it is a usage
error; the evaporation field only from ``--evaporation-field`` or ``--material``,
and only the radius from the voltage needs it.

On a terminal, a file of :data:`liprobe.cli._common.PROGRESS_MIN_IONS` ions or more shows a
progress bar with an ETA on stderr (``--quiet`` turns it off); the
environment variable ``LIPROBE_PROGRESS_MIN_IONS`` lowers or raises that
threshold (read here, in the command line only: for tests and for users who
want a bar on smaller files). ``liprobe autorange`` uses the same bar.
"""

from __future__ import annotations

import os

import click

from ..instruments import DEFAULT_INSTRUMENT
from ._common import (
    Number,
    echo_json,
    given,
    parse_xy,
    progress_bar,
)

#: What ``parameters.material`` says when Omega came from the range file.
FROM_RANGE_VOLUMES = "from the range file's Vol:"


def _parse_radius(ctx, param, value):
    """``voltage`` or ``shank:ANGLE_DEG:R0_NM`` -> (kind, angle, r0)."""
    if value is None or value == "voltage":
        return ("voltage", None, None)
    parts = value.split(":")
    if parts[0] == "shank" and len(parts) == 3:
        try:
            angle, r0 = float(parts[1]), float(parts[2])
        except ValueError:
            pass
        else:
            if 0 <= angle < 90 and r0 > 0:
                return ("shank", angle, r0)
    raise click.BadParameter(f"'{value}': write 'voltage' or 'shank:ANGLE_DEG:R0_NM' "
                             "(e.g. shank:10:20, angle in [0, 90), R0 > 0 nm)")


#: Options that only the reconstruction written with -o uses (parameter -> option).
_RECONSTRUCTION_ONLY = {
    "ranges_path": "-r", "material": "--material", "k_factor": "--k-factor", "icf": "--icf",
    "evaporation_field": "--evaporation-field", "efficiency": "--efficiency",
    "atomic_volume": "--atomic-volume", "detector_radius": "--detector-radius",
    "detector_center": "--detector-center", "radius_spec": "--radius",
    "no_range_volumes": "--no-range-volumes"}
#: Options that only --compare-to-file-positions uses.
_COMPARISON_ONLY = {"slabs": "--slabs", "detector_correction": "--detector-correction"}


@click.command()
@click.argument("file")
@click.option("-o", "--output", metavar="OUT.pos|OUT.epos",
              help="Write the reconstructed run (.pos or .epos, by extension).")
@click.option("-r", "--ranges", "ranges_path",
              help="Range file: each ion counts its own atoms (or the range's Vol:).")
@click.option("--instrument", default=DEFAULT_INSTRUMENT, show_default=True,
              help="Preset for flight path and efficiency (LEAP 5000 XS, LEAP 5000 XR, "
                   "LEAP 4000X HR).")
@click.option("--material", metavar="NAME",
              help="Atomic volume and evaporation field: a preset (NMC811, LiMn2O4, Cr), "
                   "an element (its volume from density and molar mass, its field from "
                   "Tsong's table where tabulated), or any formula with --atomic-volume "
                   "(and --evaporation-field for the voltage radius). No default: without "
                   "it, Omega comes from --atomic-volume or the range file's Vol: (-r), and "
                   "F_e from --evaporation-field, needed only with --radius voltage.")
@click.option("--flight-path", type=Number(), metavar="MM", help="Flight path L in mm.")
@click.option("--k-factor", type=Number(), metavar="K", help="Field factor k [default: 3.3].")
@click.option("--icf", type=Number(), metavar="XI",
              help="Image compression factor [default: 1.65].")
@click.option("--evaporation-field", type=Number(), metavar="V_PER_NM",
              help="Evaporation field F_e in V/nm (used only by --radius voltage).")
@click.option("--efficiency", type=Number(), metavar="E", help="Detection efficiency (0-1].")
@click.option("--atomic-volume", type=Number(), metavar="NM3",
              help="Atomic volume Omega in nm^3 (before --material and the range file's Vol:).")
@click.option("--detector-radius", type=Number(), metavar="MM",
              help="Detector radius in mm [default: the largest hit radius].")
@click.option("--detector-center", callback=parse_xy("mm"), metavar="X,Y",
              help="Where the specimen axis hits the detector, mm [default: 0,0].")
@click.option("--protocol", type=click.Choice(["geiser", "bas"]), default="geiser",
              show_default=True, help="Wide-angle (Geiser 2009 / Gault 2011) or Bas 1995.")
@click.option("--radius", "radius_spec", callback=_parse_radius, default="voltage",
              show_default=True, metavar="voltage|shank:ANGLE_DEG:R0_NM",
              help="Radius from the voltage, or from a shank angle and initial radius.")
@click.option("--no-range-volumes", is_flag=True,
              help="Ignore the range file's Vol: (use atoms x atomic volume).")
@click.option("--compare-to-file-positions", "compare", is_flag=True,
              help="Fit the projection onto the file's own x, y, z and report residuals "
                   "(with -o, also write the reconstruction).")
@click.option("--slabs", type=Number(integer=True), default=20, show_default=True,
              help="Depth slabs of the comparison.")
@click.option("--detector-correction",
              type=click.Choice(["quadratic", "cubic", "affine", "center", "none"]),
              default="quadratic", show_default=True,
              help="Distortion map of the hits fitted once for the comparison.")
@click.option("-q", "--quiet", is_flag=True,
              help="No progress bar (shown on a terminal for files of 5 M ions or more).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
def reconstruct(file, output, ranges_path, compare, slabs, detector_correction, quiet, as_json,
                **opts):
    """Reconstruct x, y, z of FILE (.epos or .apt with detector hits) and write it to -o.

    No material is assumed: Omega comes from --atomic-volume, --material or the range
    file's Vol: (-r); F_e from --evaporation-field or --material, and only --radius
    voltage needs it."""
    ctx = click.get_current_context()
    if compare and output is None:
        unused = given(ctx, _RECONSTRUCTION_ONLY)
        if unused:
            raise click.UsageError(
                f"{', '.join(unused)} set the reconstruction written with -o; the comparison "
                "alone uses only --instrument, --flight-path and --protocol: add -o OUT.pos "
                "or drop them")
    if not compare:
        unused = given(ctx, _COMPARISON_ONLY)
        if unused:
            raise click.UsageError(f"{', '.join(unused)} go with --compare-to-file-positions")
    if compare and slabs < 1:
        raise click.BadParameter("must be at least 1", param_hint="--slabs")
    if output is None:
        if compare:
            from ..instruments import instrument as preset_of

            try:
                ins = preset_of(opts["instrument"])
            except KeyError as e:
                raise click.BadParameter(e.args[0], param_hint="--instrument") from None
            flight_path = opts["flight_path"]
            if flight_path is not None and not flight_path > 0:
                raise click.BadParameter("must be a positive number of mm",
                                         param_hint="--flight-path")
            return _echo_comparison(
                _compare(file, flight_path or ins.flight_path_mm, opts["protocol"], slabs,
                         detector_correction), as_json)
        raise click.UsageError("give the output file: -o OUT.pos or -o OUT.epos "
                               "(or use --compare-to-file-positions)")
    if os.path.splitext(output)[1].lower() not in (".pos", ".epos"):
        raise click.BadParameter(f"'{output}' is not a .pos or .epos file name: liprobe "
                                 "writes .pos or .epos", param_hint="-o")
    table = None
    if ranges_path:
        from ..io import read_ranges

        table = read_ranges(ranges_path)
    params = _parameters(table, ranges_path, file, **opts)
    d = _reconstruct(file, output, table, params, params.radius, quiet)
    d["atomic_volume_source"] = omega_source(params, opts["atomic_volume"])
    if compare:
        d["comparison"] = _compare(file, params.flight_path_mm, params.protocol, slabs,
                                   detector_correction)
    if as_json:
        echo_json(d)
    else:
        _echo_reconstruction(d)
        if compare:
            _echo_comparison(d["comparison"], False)
    for w in d["warnings"]:
        click.echo(f"warning: {w}", err=True)


def range_volume_omega(table, mass=None) -> tuple[float, int] | None:
    """Omega (nm^3 per atom) from a range table's ``Vol:``, over the ranges that give a
    ``Vol:`` and have atoms: with ``mass`` (the run's masses in Da: a Run, an array or
    chunks), weighted by the ions each window holds, ``sum(n_i Vol_i) / sum(n_i atoms_i)``
    (the mean volume per atom of what was detected); without, or when those windows hold
    no ion, the unweighted ``sum(Vol_i) / sum(atoms_i)``. With how many ranges; None when
    no range gives a ``Vol:``."""
    import numpy as np

    keep = [i for i, r in enumerate(table.ranges)
            if r.volume is not None and r.volume > 0 and r.ion.n_atoms > 0]
    if not keep:
        return None
    vol = np.array([table.ranges[i].volume for i in keep], np.float64)
    atoms = np.array([table.ranges[i].ion.n_atoms for i in keep], np.float64)
    w = np.ones(len(keep))
    if mass is not None:
        from ..ranging import count_windows
        from ..run import column_chunks

        counts = np.zeros(len(table), np.int64)
        for chunk in column_chunks(mass):
            counts += count_windows(chunk, table)[0]
        if counts[keep].sum() > 0:
            w = counts[keep].astype(np.float64)
    return float((w * vol).sum() / (w * atoms).sum()), len(keep)


def _parameters(table, ranges_path, file, *, instrument, material, flight_path, k_factor, icf,
                evaporation_field, efficiency, atomic_volume, detector_radius,
                detector_center, protocol, radius_spec, no_range_volumes):
    """The reconstruction's parameters; Omega from --atomic-volume, --material or the
    range file's Vol:, F_e from --evaporation-field or --material (voltage radius only)."""
    from ..spatial.reconstruct import ReconstructionParameters

    kind, angle, r0 = radius_spec
    label = None
    if kind == "voltage" and material is None and evaporation_field is None:
        raise click.UsageError("the radius from the voltage (R = V / (k F_e)) needs the "
                               "evaporation field: give --material NAME or --evaporation-field "
                               "V_PER_NM, or take the radius from the shank angle (--radius "
                               "shank:ANGLE_DEG:R0_NM)")
    if atomic_volume is None and material is None:
        got = None
        if table is not None and not no_range_volumes:
            from ..io import read

            got = range_volume_omega(table, read(file))
        if got is None:
            why = ""
            if table is not None:
                why = (" (--no-range-volumes ignores the range file's Vol:)" if no_range_volumes
                       else f" ({ranges_path} gives no Vol:)")
            raise click.UsageError("no atomic volume: give --material NAME, --atomic-volume "
                                   f"NM3, or a range file with Vol: (-r RANGES){why}; no "
                                   "material is assumed")
        atomic_volume, label = got[0], FROM_RANGE_VOLUMES
    try:
        params = ReconstructionParameters.preset(
            instrument, material, flight_path_mm=flight_path, k_factor=k_factor, icf=icf,
            evaporation_field_V_per_nm=evaporation_field, efficiency=efficiency,
            atomic_volume_nm3=atomic_volume, detector_radius_mm=detector_radius,
            detector_center_mm=detector_center, protocol=protocol, radius=kind,
            shank_angle_deg=angle, initial_radius_nm=r0,
            use_range_volumes=not no_range_volumes)
    except KeyError as e:
        raise click.BadParameter(e.args[0]) from None
    except ValueError as e:
        raise click.UsageError(str(e)) from None
    return params if label is None else params.replace(material=label)


def omega_source(params, atomic_volume) -> str:
    """Where Omega came from, as the text output says it: ``given`` (--atomic-volume), the
    material's name, or the range file's Vol:."""
    if atomic_volume is not None:
        return "given"
    return params.material or "given"


def _reconstruct(file, output, table, params, kind, quiet=False):
    """Reconstruct FILE with ``params``, write it to ``output``; the result as a dict."""
    from ..io import read, write
    from ..spatial.reconstruct import reconstruct_run

    run = read(file)
    if output.lower().endswith(".epos"):
        from ..errors import ColumnError
        from ..io.pos import EPOS_DTYPE

        lacking = [c for c in EPOS_DTYPE.names if c not in ("x", "y", "z") and c not in run]
        if lacking:
            raise ColumnError(f"cannot write an .epos: the {run.format or ''} file has no "
                              f"{', '.join(lacking)}; write a .pos instead", run.path)
    import os

    bar = progress_bar(run.n_ions, quiet, "reconstruct")

    def progress(done, total):      # two passes over the ions: the bar counts ions once
        bar.update(done * run.n_ions / total - bar.n)

    try:
        new_run, result = reconstruct_run(
            run, params, table, scratch_dir=os.path.dirname(os.path.abspath(output)),
            progress=progress if bar is not None else None)
    finally:
        if bar is not None:
            bar.close()
    d = result.to_dict()
    if kind == "voltage":
        from ..history import binned_voltage, voltage_jumps

        v = run.source("v_dc")               # read a bin at a time
        curve, edges = binned_voltage(v)
        for j in voltage_jumps(curve, edges, v):
            d["warnings"].append(
                f"the voltage jumps by {100 * j.relative_change:+.1f} % at ion {j.ion_index:,} "
                "(a laser-energy change?): a radius from the voltage is wrong across it; "
                "consider --radius shank:ANGLE_DEG:R0_NM")
    write(output, new_run)
    d["input"] = file
    d["output"] = output
    return d


def _echo_reconstruction(d):
    p = d["parameters"]
    click.echo(f"{d['input']}: {d['ions']:,} ions reconstructed ({p['protocol']}, radius from "
               f"{p['radius']}) -> {d['output']}")
    fe = p["evaporation_field_V_per_nm"]
    fe = "n/a (radius from the shank angle)" if fe is None or p["radius"] == "shank" \
        else f"{fe} V/nm"
    click.echo(f"  L {p['flight_path_mm']} mm, eta {p['efficiency']}, k {p['k_factor']}, "
               f"F_e {fe}, ICF {p['icf']}, Omega {p['atomic_volume_nm3']:.6g} nm^3 ("
               f"{d.get('atomic_volume_source') or p['material'] or 'given'}), detector radius "
               f"{p['detector_radius_mm']:.2f} mm")
    shank = d["implied_shank_angle_deg"]
    click.echo(f"  radius {d['radius_start_nm']:.2f} -> {d['radius_end_nm']:.2f} nm over "
               f"{d['depth_nm']:.2f} nm of depth (implied shank angle "
               + ("n/a" if shank is None else f"{shank:.2f} deg") + ")")


def _compare(file, flight_path_mm, protocol, slabs, detector_correction):
    """Compare the file's positions with the fitted projection; the result as a dict."""
    from ..errors import ColumnError
    from ..io import read
    from ..spatial.compare import compare_to_file_positions

    run = read(file)
    missing = [c for c in ("x", "y", "z", "det_x", "det_y") if c not in run]
    if missing:
        raise ColumnError(f"cannot compare: the {run.format or ''} file has no "
                          f"{', '.join(missing)} (it needs reconstructed positions and detector "
                          "hits, as in .epos or .apt)", run.path)
    res = compare_to_file_positions(
        run["x"], run["y"], run["z"], run["det_x"], run["det_y"],
        flight_path_mm=flight_path_mm, protocol=protocol, n_slabs=slabs,
        detector_correction=detector_correction)
    d = res.to_dict()
    d["input"] = file
    return d


def _echo_comparison(d, as_json):
    if as_json:
        echo_json(d)
        return
    file, slabs = d["input"], len(d["slabs"])
    lat, z = d["residual_nm"]["lateral"], d["residual_nm"]["z"]
    click.echo(f"{file}: {d['ions']:,} ions, {slabs} slabs, {d['protocol']} projection, "
               f"L = {d['flight_path_mm']} mm, {d['detector_correction']['kind']} detector "
               "correction")
    click.echo(f"residuals (nm): lateral median {lat['median']:.4f}, 95th percentile "
               f"{lat['p95']:.4f}; z median {z['median']:.4f}, 95th percentile {z['p95']:.4f}")
    click.echo("  ions                 z mean   radius      ICF   nm/mm   lateral med/p95"
               "     z med/p95")
    for s in d["slabs"]:
        a, b = s["ions"]
        click.echo(f"  {a:>9,}-{b:<9,} {s['z_mean_nm']:8.2f} {s['radius_nm']:8.2f} "
                   f"{s['icf']:8.3f} {s['nm_per_mm']:7.4f}   {s['lateral_median_nm']:.4f}/"
                   f"{s['lateral_p95_nm']:.4f}   {s['z_median_nm']:.4f}/{s['z_p95_nm']:.4f}")
