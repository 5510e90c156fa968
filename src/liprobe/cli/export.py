"""``liprobe export RUN -r RANGES -o run.nxs``: a run as NeXus NXapm (or AP Suite .apt, ...)."""

from __future__ import annotations

import os
import warnings

import click

from ._common import echo_json


def _parse_tags(ctx, param, value):
    """``--tag KEY=VALUE`` (repeatable) -> dict."""
    tags = {}
    for item in value:
        key, sep, val = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"'{item}': write KEY=VALUE (e.g. temperature_K=60)",
                                     param_hint="--tag")
        tags[key.strip()] = val.strip()
    return tags


@click.command()
@click.argument("file")
@click.option("-r", "--ranges", "ranges_path", metavar="RANGES",
              help="Range file (.rrng, .rng): its ions and windows go into the NeXus file.")
@click.option("-o", "--output", required=True, metavar="OUT.nxs|OUT.apt|OUT.epos|OUT.pos",
              help="The file to write; its extension names the format.")
@click.option("--tag", "tags", multiple=True, callback=_parse_tags, metavar="KEY=VALUE",
              help="Metadata the files do not hold (NeXus only; repeatable): start_time, "
                   "is_simulation, instrument, mode, laser_pj, pulse_frequency_kHz, "
                   "temperature_K, ... (docs/cli.md lists them).")
@click.option("--columns", "columns", metavar="COL,COL,...",
              help="The columns to write to an .apt file (default: all); AP Suite names "
                   "accepted. Leave out a column that has no .apt section or does not fit it.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
def export(file, ranges_path, output, tags, columns, as_json):
    """Write FILE (any ion file liprobe reads) as OUT: NeXus NXapm or another ion format.

    NeXus (.nxs) holds the positions, mass-to-charge, detector coordinates,
    voltages, pulses and multiplicities the file has, the ranging definitions
    of -r, the metadata of --tag (a run simulated by liprobe is marked so from
    its .truth.json) and liprobe's name and version. A field that NXapm
    requires and that nothing gives is not written: it is listed as missing,
    with the reason.
    """
    from ..io import read, read_ranges, write

    ext = os.path.splitext(output)[1].lower()
    if ext != ".nxs" and (ranges_path or tags):
        raise click.BadParameter("-r and --tag go into NeXus files only (-o OUT.nxs)",
                                 param_hint="-o")
    names = None
    if columns is not None:
        if ext != ".apt":
            raise click.BadParameter("chooses the columns of an .apt file only (-o OUT.apt)",
                                     param_hint="--columns")
        names = [c.strip() for c in columns.split(",") if c.strip()]
        if not names:
            raise click.BadParameter("name at least one column", param_hint="--columns")
    run = read(file)
    if ext != ".nxs":
        if names is not None:
            from ..io.apt import write_apt

            write_apt(output, run, columns=names)
        else:
            write(output, run)
        written = list(run.columns) if names is None else names
        rec = {"input": file, "output": output, "ions": run.n_ions, "columns": written}
        if as_json:
            echo_json(rec)
        else:
            click.echo(f"wrote {output}: {run.n_ions:,} ions, columns {', '.join(written)}")
        return
    from ..io.nexus import simulation_metadata, write_nexus

    ranges = read_ranges(ranges_path) if ranges_path else None
    metadata = {**simulation_metadata(run.path), **tags}
    with warnings.catch_warnings():      # its notes are printed below, as lines
        warnings.simplefilter("ignore", UserWarning)
        report = write_nexus(output, run, ranges, metadata=metadata)
    d = report.to_dict()
    d["input"] = file
    d["ranges"] = ranges_path
    if as_json:
        echo_json(d)
        return
    click.echo(f"wrote {output}: {d['ions']:,} ions, {d['ion_types']} ion types in "
               f"{d['windows']} windows (NeXus NXapm)")
    for col, path in d["columns"].items():
        click.echo(f"  {col:<13} {path}")
    for note in d["notes"]:
        click.echo(f"note: {note}")
    if d["missing"]:
        click.echo(f"missing ({len(d['missing'])} fields NXapm requires; nothing gives them):")
        for m in d["missing"]:
            click.echo(f"  {m['path']}: {m['reason']}")
