"""Where each row of a study's table comes from: its files, segment and ROI.

The figures that show data (maps, slices, spectra, frequency distributions,
voltage) need the run behind a row, not only its numbers. A finished study
folder says where they are in two places:

- the manifest (:class:`~liprobe.study.manifest.RunSpec` per row), when it
  is at hand (``liprobe demo``, ``liprobe report OUT --manifest FILE``);
- otherwise the cache records ``OUT/cache/<key>.json``, each naming its
  input files and the row's segment, ROI and ranging (the newest record of a
  row wins when parameters changed between runs of the study).

:class:`RunFiles` maps row labels (``run`` or ``run[segment]``, as the study
names them) to :class:`~liprobe.study.manifest.RunSpec` and reads a row's
ions once, as the study's worker does: the whole run, its segment, and its
ROI.
"""

from __future__ import annotations

import math
import os

from ..errors import LiprobeError
from ..io._files import open_regular

__all__ = ["row_label", "specs_from_records", "RunFiles", "read_truth"]


def _int_or_none(v):
    if v is None:
        return None
    try:
        if isinstance(v, float) and math.isnan(v):
            return None
    except TypeError:
        return None
    try:
        import pandas as pd

        if v is pd.NA:
            return None
    except ImportError:  # pragma: no cover - pandas is a dependency
        pass
    return int(v)


def row_label(row) -> str:
    """``run`` or ``run[segment]``: the study's label of a table row (a dict or Series)."""
    seg = _int_or_none(row.get("segment"))
    return str(row["run"]) if seg is None else f"{row['run']}[{seg}]"


def specs_from_records(out_dir) -> dict:
    """Row label -> RunSpec, rebuilt from the cache records of a study folder.

    Parameters
    ----------
    out_dir : str or path
        A folder written by :func:`liprobe.study.run_study`.

    Returns
    -------
    dict of str to RunSpec
        Only rows that finished (failed rows have no record).
    """
    import warnings

    from ..study.cache import CacheWarning, iter_records
    from ..study.manifest import RunSpec

    best: dict = {}
    for rec in iter_records(out_dir):      # records that pass their schema and hashes
        seg = rec.get("segment")
        label = rec["run"] if seg is None else f"{rec['run']}[{seg}]"
        if label in best and best[label][0] >= rec["finished"]:
            continue
        try:
            run_p = rec["params"].get("run") or {}
            start, stop = (list(run_p.get("segment") or []) + [None, None])[:2]
            auto = run_p.get("autorange")
            inputs = rec["inputs"]
            spec = RunSpec(run=rec["run"], segment=seg, start=start, stop=stop,
                           data=(inputs.get("data") or {}).get("path"),
                           ranges=(inputs.get("ranges") or {}).get("path"),
                           autorange=tuple(auto) if auto else None, roi=run_p.get("roi"),
                           coating=run_p.get("coating") or "none")
        except (AttributeError, TypeError, ValueError) as e:
            warnings.warn(f"{out_dir}: the cache record of {label} names no usable run "
                          f"({type(e).__name__}: {e}); skipped", CacheWarning, stacklevel=2)
            continue
        best[label] = (rec["finished"], spec, rec["params"].get("study"))
    return {k: v[1] for k, v in best.items()}


def study_params_from_records(out_dir) -> dict | None:
    """The study's parameters (``StudyParams.to_dict()``) of the newest cache record, if any."""
    from ..study.cache import iter_records

    newest = ("", None)
    for rec in iter_records(out_dir):      # records that pass their schema and hashes
        study = rec["params"].get("study")
        if rec["finished"] > newest[0] and isinstance(study, dict):
            newest = (rec["finished"], study)
    return newest[1]


class RunFiles:
    """The runs behind a table's rows, read on demand (memory-mapped) and kept.

    Parameters
    ----------
    specs : dict of str to RunSpec
        Row label -> spec (from the manifest or :func:`specs_from_records`).
    """

    def __init__(self, specs: dict):
        self.specs = dict(specs)
        self._loaded: dict = {}

    @classmethod
    def from_manifest(cls, manifest) -> RunFiles:
        return cls({s.label: s for s in manifest.runs if not s.problem})

    @classmethod
    def from_study_folder(cls, out_dir) -> RunFiles:
        return cls(specs_from_records(out_dir))

    def __contains__(self, label) -> bool:
        return label in self.specs

    def spec(self, label: str):
        try:
            return self.specs[label]
        except KeyError:
            raise LiprobeError(f"no files known for row {label} (it failed, or the study "
                               "folder has no cache record of it)") from None

    def _full(self, label):
        from ..study.analysis import _load  # the worker's own reading: same ranges, same ions

        spec = self.spec(label)
        key = (spec.data, spec.ranges, spec.autorange)
        if key not in self._loaded:
            try:
                self._loaded[key] = _load(spec)
            except OSError as e:
                raise LiprobeError(f"{e.filename or spec.data}: {e.strerror or e}") from None
        return self._loaded[key]

    def truth_path(self, label: str) -> str | None:
        """The simulator's ``.truth.json`` beside the data file, if there is one."""
        data = self.spec(label).data
        if not data:
            return None
        p = os.path.splitext(data)[0] + ".truth.json"
        return p if os.path.exists(p) else None

    def load(self, label: str, roi: bool = False):
        """``(run, table)``: the row's ions (its segment; inside its ROI with ``roi``).

        Raises
        ------
        LiprobeError
            The files cannot be read, or the selection is empty.
        """
        from ..spatial.roi import select

        spec = self.spec(label)
        full, table = self._full(label)
        run = full
        if spec.segment is not None:
            run, _ = select(full, None, slice(spec.start, spec.stop), table)
        if roi and spec.roi:
            run, _ = select(run, spec.roi, None, table)
        return run, table

    def load_with_selection(self, label: str):
        """``(segment_run, roi_run, table, selection)`` with the ROI's description."""
        from ..spatial.roi import select

        spec = self.spec(label)
        run, table = self.load(label)
        if spec.roi:
            roi_run, info = select(run, spec.roi, None, table)
        else:
            roi_run, info = run, {}
        return run, roi_run, table, info

    def whole_run(self, label: str):
        """``(run, table)`` of the whole file (every segment)."""
        return self._full(label)


def read_truth(runs, label: str, cache: dict):
    """The simulator's truth (a dict) of the run labelled ``label``, or None (no run files,
    no truth beside the data, or a file that is not a JSON object); read once per path
    into ``cache``. Its values are as written: read numbers with
    :func:`liprobe.report.groups.number`."""
    import json

    if runs is None or label not in runs:
        return None
    p = runs.truth_path(label)
    if p is None:
        return None
    if p not in cache:
        try:
            with open_regular(p) as f:
                cache[p] = json.load(f)
        except (OSError, ValueError, RecursionError):
            cache[p] = None
        if not isinstance(cache[p], dict):
            cache[p] = None
    return cache[p]
