"""``liprobe study --nexus``: one NeXus NXapm file per run, beside the study's table.

Each run of the manifest (the whole run, once, whatever its segments) is
written as ``OUT/<run>.nxs`` by :func:`liprobe.io.nexus.write_nexus`, with its
range table (the range file, or the ranges made by ``autorange``) and the
manifest's metadata: the run's name, ``material``, ``laser_pj``,
``instrument`` and its ``tags`` (``temperature_K``, ``pulse_frequency_kHz``,
``detection_rate_pct``, ``mode``, ``start_time``, ``is_simulation``, ...,
see :data:`liprobe.io.nexus.METADATA_KEYS`). A run simulated by liprobe is
marked so from its ``.truth.json``.
"""

from __future__ import annotations

import os
import warnings

from ..errors import LiprobeError
from .analysis import _load, _one_line
from .manifest import Manifest, RunSpec, run_name_problem

__all__ = ["export_nexus", "run_metadata"]


def run_metadata(spec: RunSpec) -> dict:
    """The NeXus metadata of a run from its manifest entry (``tag_X`` -> ``X``)."""
    from ..io.nexus import simulation_metadata

    meta = simulation_metadata(spec.data)
    for key, value in spec.metadata:
        if key.startswith("segment"):
            continue
        meta[key[4:] if key.startswith("tag_") else key] = value
    meta["run"] = spec.run
    if "autorange" not in meta and spec.autorange is not None:
        meta["autorange"] = list(spec.autorange)
    return meta


def export_nexus(manifest: Manifest, out, progress=None) -> dict:
    """Write ``OUT/<run>.nxs`` for each run of ``manifest``.

    Parameters
    ----------
    manifest : Manifest
    out : str or path
        The study's output folder.
    progress : callable, optional
        Called as ``progress(run, path_or_None, error_or_None)`` after each run.

    Returns
    -------
    dict
        Run name -> ``{"path", "missing": [...]}`` (the export's missing
        fields), or ``{"error"}`` for a run that could not be written (a
        missing file, a manifest problem); the other runs are written.
    """
    from ..io.nexus import write_nexus

    out = os.path.abspath(os.fspath(out))
    seen: set[str] = set()
    result: dict = {}
    for spec in manifest.runs:
        if spec.run in seen:
            continue
        seen.add(spec.run)
        path = os.path.join(out, f"{spec.run}.nxs")
        try:
            why = run_name_problem(spec.run)
            if why is not None or os.path.dirname(os.path.abspath(path)) != out:
                raise LiprobeError(f"run name '{spec.run}' {why or 'leaves the output folder'}: "
                                   "no NeXus file written", manifest.path)
            if spec.problem:
                raise LiprobeError(spec.problem, manifest.path)
            run, table = _load(spec)
            with warnings.catch_warnings():     # the notes go into the result
                warnings.simplefilter("ignore", UserWarning)
                report = write_nexus(path, run, table, metadata=run_metadata(spec))
        except (LiprobeError, OSError, ValueError) as e:
            result[spec.run] = {"error": _one_line(e)}
            if progress is not None:
                progress(spec.run, None, result[spec.run]["error"])
            continue
        result[spec.run] = {"path": path,
                            "missing": [m.to_dict() for m in report.missing],
                            "notes": list(report.notes)}
        if progress is not None:
            progress(spec.run, path, None)
    return result
