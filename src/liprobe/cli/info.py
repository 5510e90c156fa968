"""``liprobe info FILE``: what is in an ion or range file."""

from __future__ import annotations

import click
import numpy as np

from ..io import RANGE_FORMATS, detect_format, read, read_ranges
from ..run import COLUMN_UNITS
from ._common import echo_json

_CHUNK = 1 << 20


def column_range(run, name):
    """[min, max] of a column, read in chunks (bounded memory); None if empty."""
    lo = hi = None
    for _start, chunk in run.chunks(name, _CHUNK):
        if len(chunk):
            cmin, cmax = chunk.min(), chunk.max()
            lo = cmin if lo is None else min(lo, cmin)
            hi = cmax if hi is None else max(hi, cmax)
    if lo is None:
        return None
    # shortest decimal that gives back the stored value (float32 -> 204.6866)
    if isinstance(lo, np.floating):
        return [float(str(lo)), float(str(hi))]
    return [lo.item(), hi.item()]


def ion_file_summary(run) -> dict:
    """The ``info`` record of an ion file."""
    meta = {k: v for k, v in run.meta.items() if k not in ("layout",)}
    return {
        "format": run.format,
        "ions": run.n_ions,
        "columns": list(run.columns),
        "mass_range": column_range(run, "mass") if "mass" in run else None,
        "extent": ({ax: column_range(run, ax) for ax in ("x", "y", "z")}
                   if all(ax in run for ax in ("x", "y", "z")) else None),
        "meta": meta,
    }


def _fmt_range(r, unit):
    return "n/a" if r is None else f"{r[0]:.4g} to {r[1]:.4g} {unit}"


@click.command()
@click.argument("file")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
def info(file, as_json):
    """What is in FILE: an ion file (.pos, .epos, .apt) or a range file (.rrng, .rng)."""
    fmt = detect_format(file)
    if fmt in RANGE_FORMATS:
        table = read_ranges(file, fmt)
        rec = {"format": fmt, **table.to_dict()}
        if as_json:
            echo_json(rec)
            return
        click.echo(f"{file}: {fmt} range file, {len(rec['ions'])} ions, "
                   f"{len(rec['ranges'])} windows")
        for r in rec["ranges"]:
            vol = "" if r["volume"] is None else f"  Vol {r['volume']:g} nm3"
            click.echo(f"  [{r['lo']:9.4f}, {r['hi']:9.4f}) Da  {r['ion']:<10}{vol}")
        for w in rec["warnings"]:
            click.echo(f"  warning: {w}")
        return
    run = read(file, fmt)
    rec = ion_file_summary(run)
    if as_json:
        echo_json(rec)
        return
    click.echo(f"{file}: {fmt} file, {rec['ions']:,} ions")
    cols = ", ".join(f"{c} ({COLUMN_UNITS[c]})" if COLUMN_UNITS.get(c) else c
                     for c in rec["columns"])
    click.echo(f"  columns: {cols}")
    click.echo(f"  mass:    {_fmt_range(rec['mass_range'], 'Da')}")
    if rec["extent"]:
        for ax in ("x", "y", "z"):
            click.echo(f"  {ax}:       {_fmt_range(rec['extent'][ax], 'nm')}")
    for k, v in rec["meta"].items():
        if k in ("path", "format", "sections", "units", "record_bytes"):
            continue
        if isinstance(v, (tuple, list)) and all(isinstance(x, float) for x in v):
            v = "(" + ", ".join(f"{x:.4g}" for x in v) + ")"
        click.echo(f"  {k}: {v}")
    sections = rec["meta"].get("sections") or []
    if sections:
        click.echo("  sections:")
    for s in sections:
        cols = ", ".join(s.get("columns") or ()) or "not mapped"
        click.echo(f"    {s['name']:<22} {s.get('unit') or '-':<4} "
                   f"{s.get('data_type_name', '')}{s.get('data_type_bits', '')} "
                   f"x{s.get('record_size', '')}B  at byte {s.get('offset')}  -> {cols}")
