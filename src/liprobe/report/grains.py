"""The grains' proxigrams: a CSV and a figure per row in which the study found a grain.

The study's ``grain`` group (:mod:`liprobe.study.grain`) keeps each grain's
proxigram, as counts per bin, in the run's cache record
(``result.artefacts.grain``), since a table cell holds one number. The
report writes, for every row of the table with a ``grain_volume_nm3``:

- ``OUT/grains/<row>.proxigram.csv``: ``# key: value`` lines (the field, the
  threshold, the grain's volume, depth and how it was measured), then one row
  per bin: ``lo_nm``, ``hi_nm``, ``distance_nm`` (negative inside the grain),
  ``atoms``, ``ions``, and each element's ``El_at%`` with its 1-sigma binomial
  ``El_err`` (empty where a bin holds no atoms);
- ``OUT/figures/grain_proxigram_<row>.png`` and ``.svg``: the same, drawn
  (:func:`liprobe.plots.surfaces.plot_proxigram`).

The record of a row is the newest one of that row whose ``grain_volume_nm3``
is the table's (a study whose parameters changed keeps older records).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

from ..errors import LiprobeError
from .groups import number
from .sources import row_label

__all__ = ["GrainOutputs", "grain_artefacts", "write_grain_outputs", "figure_name"]


@dataclass
class GrainOutputs:
    """What :func:`write_grain_outputs` wrote.

    Attributes
    ----------
    csv : dict
        Row label -> the proxigram's CSV.
    figures : dict
        Row label -> [PNG, SVG].
    skipped : dict
        Row label -> why nothing was written for its grain.
    captions : dict
        Row label -> one sentence on the grain and its surface.
    """

    csv: dict = field(default_factory=dict)
    figures: dict = field(default_factory=dict)
    skipped: dict = field(default_factory=dict)
    captions: dict = field(default_factory=dict)


def figure_name(label: str) -> str:
    """``grain_proxigram_<label>`` (a file stem: the label made safe)."""
    from ..study.grain import proxigram_csv_name

    return "grain_proxigram_" + proxigram_csv_name(label)[:-len(".proxigram.csv")]


def grain_artefacts(out_dir, table) -> tuple[dict, dict]:
    """``({label: artefact}, {label: why none})`` for the rows of ``table`` with a grain.

    Parameters
    ----------
    out_dir : str or path
        The study's folder (its ``cache/`` records).
    table : DataFrame
        The study's table.
    """
    from ..study.cache import iter_records

    wanted = {}
    for _, row in table.iterrows():
        v = number(row.get("grain_volume_nm3")) if "grain_volume_nm3" in row else None
        if v is not None:
            wanted[row_label(row)] = v
    found: dict = {}
    if not wanted:
        return found, {}
    best: dict = {}
    for rec in iter_records(os.fspath(out_dir)):
        res = rec.get("result") or {}
        art = (res.get("artefacts") or {}).get("grain")
        if not isinstance(art, dict) or "run" not in rec:
            continue
        seg = rec.get("segment")
        label = rec["run"] if seg is None else f"{rec['run']}[{seg}]"
        if label not in wanted:
            continue
        v = number((res.get("values") or {}).get("grain_volume_nm3"))
        if v is None or not math.isclose(v, wanted[label], rel_tol=1e-9, abs_tol=1e-9):
            continue
        when = str(rec.get("finished", ""))
        if label not in best or when > best[label]:
            best[label], found[label] = when, art
    missing = {label: "no cache record of the study holds its grain's proxigram (run "
                      "`liprobe study` again)" for label in wanted if label not in found}
    return {label: found[label] for label in wanted if label in found}, missing


def _caption(label, surface) -> str:
    def f(key, spec):
        v = number(surface.get(key))
        return "n/a" if v is None else format(v, spec)

    how = ("closed surface" if surface.get("closed") else
           "cut by the edge of the analysed volume: its voxels inside the data")
    return (f"{label}: a grain {surface.get('grain_side', '?')} in "
            f"{surface.get('field', '?')} ({f('grain_fraction', '.2f')} against the matrix's "
            f"{f('matrix_fraction', '.2f')}), isosurface at {f('threshold_fraction', '.2f')} "
            f"(midway); {f('volume_nm3', '.0f')} nm^3 ({how}), z from "
            f"{f('depth_min_nm', '.1f')} to {f('depth_max_nm', '.1f')} nm; "
            f"{f('ions_inside', ',.0f')} ions inside")


def write_grain_outputs(table, out_dir, fig_dir=None) -> GrainOutputs:
    """The proxigram CSV (``OUT/grains``) and figure (``OUT/figures``) of every grain.

    Parameters
    ----------
    table : DataFrame
        The study's table.
    out_dir : str or path
        The study's folder.
    fig_dir : str or path, optional
        Default ``OUT/figures``.

    Returns
    -------
    GrainOutputs
    """
    import matplotlib

    from ..plots.surfaces import plot_proxigram
    from ..study.grain import proxigram_csv_name, proxigram_from_artefact, write_proxigram_csv

    out_dir = os.fspath(out_dir)
    fig_dir = os.fspath(fig_dir) if fig_dir is not None else os.path.join(out_dir, "figures")
    res = GrainOutputs()
    arts, res.skipped = grain_artefacts(out_dir, table)
    for label, art in arts.items():
        try:
            prox = proxigram_from_artefact(art)
        except LiprobeError as e:
            res.skipped[label] = str(e)
            continue
        surface = {k: v for k, v in prox.surface.items()
                   if k not in ("kind", "element_atoms", "species", "unit", "threshold")}
        head = {"row": label, **surface, "notes": art.get("notes", [])}
        csv = os.path.join(out_dir, "grains", proxigram_csv_name(label))
        try:
            res.csv[label] = write_proxigram_csv(prox, csv, head)
            caption = _caption(label, surface)
            stem = os.path.join(fig_dir, figure_name(label))
            os.makedirs(fig_dir, exist_ok=True)
            t = number(surface.get("threshold_fraction"))
            title = (f"{label}: proxigram across the grain's surface ({surface.get('field')} "
                     f"at {'n/a' if t is None else f'{t:.2f}'}); negative inside the grain")
            with matplotlib.rc_context({"svg.fonttype": "none"}):
                res.figures[label] = [plot_proxigram(prox, f"{stem}.{ext}", title=title,
                                                     dpi=120) for ext in ("png", "svg")]
            res.captions[label] = caption
        except (OSError, ValueError) as e:
            res.skipped[label] = f"cannot be written: {' '.join(str(e).split())}"
    return res
