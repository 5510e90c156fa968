"""What ``liprobe neighbours``, ``clusters``, ``rdf`` and ``map2d`` share: species lists,
outputs, the counted ions of the selection, and CSV tables."""

from __future__ import annotations

import math
import os

import click

from ._common import split_list

#: What -o writes for these commands: a table (.csv) or a figure.
TABLE_OR_FIGURE = (".csv", ".png", ".svg")


def species_list(ctx, param, value):
    """Click callback: ``--opt Li+,Cr --opt O`` -> a tuple of ions or elements, each checked."""
    from ..chemistry import parse_species

    out = split_list(ctx, param, value)
    for sp in out:
        try:
            parse_species(sp)
        except ValueError as e:
            raise click.BadParameter(str(e)) from None
    return out


def positive(name: str, value, allow_zero: bool = False) -> None:
    """A usage error (exit 2) unless ``value`` is None or positive (or 0)."""
    if value is None:
        return
    ok = value >= 0 if allow_zero else value > 0
    if not ok or not math.isfinite(value):
        raise click.BadParameter("must be 0 or more" if allow_zero else "must be positive",
                                 param_hint=name)


def check_table_outputs(outputs) -> None:
    from ._surfaces import check_outputs

    check_outputs(outputs, TABLE_OR_FIGURE)


def write_table_csv(path, header: dict, rows: list[dict]) -> None:
    """``# key: value`` header lines, then one row per dict, atomically (empty cells for
    None or NaN)."""
    import csv
    import json

    from ..io._files import atomic_write, to_jsonable

    with atomic_write(path, "w", newline="", encoding="utf-8") as f:
        for k, v in header.items():
            f.write(f"# {k}: {json.dumps(to_jsonable(v))}\n")
        w = csv.writer(f)
        w.writerow(list(rows[0]) if rows else [])
        for row in rows:
            w.writerow(["" if v is None or (isinstance(v, float) and not math.isfinite(v))
                        else (f"{v:.6g}" if isinstance(v, float) else v) for v in row.values()])


def write_outputs(outputs, header: dict, rows, plot) -> None:
    """Each ``-o``: the CSV table, or the figure drawn by ``plot(path)``."""
    for out in outputs:
        if os.path.splitext(out)[1].lower() == ".csv":
            write_table_csv(out, header, rows() if callable(rows) else rows)
        else:
            plot(out)


def read_counted(file, ranges_path, roi, segment, exclude, center=None):
    """The range table, the selection's description and its counted ions."""
    from ..io import read, read_ranges
    from ..spatial.neighbours import counted_positions
    from ._common import apply_selection

    table = read_ranges(ranges_path)
    run = read(file)
    run, selection = apply_selection(run, roi, segment, table, center)
    return table, selection, counted_positions(run, table, exclude)
