"""A simulated run on disk: the data file, its range file, its truth and its true positions.

:func:`write_simulation` writes a :class:`~liprobe.simulate.engine.SimulatedRun`
held in memory; :func:`simulate_to_files` simulates and writes with memory
bounded whatever the number of ions (memory-mapped scratch columns beside
the output). Every file is written atomically (:mod:`liprobe.io`).
"""

from __future__ import annotations

import os

from ..errors import FormatError
from ..io._files import write_json, writer_tag
from ..run import Run
from .config import SimulationConfig
from .engine import SimulatedRun, simulate

__all__ = ["output_paths", "write_simulation", "simulate_to_files", "MEMORY_LIMIT_IONS",
           "disk_bytes_needed"]


def output_paths(path) -> dict:
    """``run.epos`` -> its range file, truth file and true positions beside it."""
    p = os.fspath(path)
    stem = os.path.splitext(p)[0]
    return {"data": p, "ranges": stem + ".rrng", "truth": stem + ".truth.json",
            "truth_positions": stem + ".truth.pos"}


def _files_entry(paths: dict, fmt: str) -> dict:
    return {"data": os.path.basename(paths["data"]), "format": fmt,
            "ranges": os.path.basename(paths["ranges"]),
            "truth": os.path.basename(paths["truth"]),
            "truth_positions": os.path.basename(paths["truth_positions"]),
            "truth_positions_columns": "x y z (nm, truth frame), exact isotopic m/n (Da)"}


#: Runs of more ions than this are built in memory-mapped temporary files
#: (beside the output) instead of memory: about 60 bytes per ion either way.
MEMORY_LIMIT_IONS = 1 << 22

#: Bytes per ion of the memory-mapped scratch columns (the simulator's columns, the
#: positions, the labels and the reconstruction voltage: 63 + 12 + 4 + 4, rounded up).
SCRATCH_BYTES_PER_ION = 84
#: Bytes per ion of the true positions (``.truth.pos``: 4 float32).
TRUTH_POS_BYTES_PER_ION = 16
#: Record sizes of the data file.
_RECORD_BYTES = {"pos": 16, "epos": 40}
#: Prefix of the scratch folders beside the output; the writer's PID follows.
_SCRATCH_PREFIX = ".liprobe-simulate-"


def disk_bytes_needed(ions: int, fmt: str = "epos",
                      memory_limit_ions: int = MEMORY_LIMIT_IONS) -> int:
    """Bytes a run of ``ions`` ions needs in its output folder at the peak: the data
    file and ``.truth.pos``, plus the scratch columns above ``memory_limit_ions``
    (the range and truth files are a few kB, inside the 1 MB margin).

    >>> disk_bytes_needed(1000, "epos")        # 40 + 16 bytes per ion, and 1 MB
    1104576
    """
    per_ion = _RECORD_BYTES[fmt] + TRUTH_POS_BYTES_PER_ION
    if ions > memory_limit_ions:
        per_ion += SCRATCH_BYTES_PER_ION
    return int(ions) * per_ion + (1 << 20)


def _check_disk(folder: str, ions: int, fmt: str, memory_limit_ions: int) -> None:
    import shutil

    need = disk_bytes_needed(ions, fmt, memory_limit_ions)
    free = shutil.disk_usage(folder).free
    if need > free:
        from ..io._files import format_bytes

        raise FormatError(f"not enough disk space for {ions:,} ions: needs about "
                          f"{format_bytes(need)}, {format_bytes(free)} free", folder)


def _remove_stale_scratch(folder: str) -> None:
    """Remove scratch folders left beside the output by a simulator of this host that
    was killed (kill -9): those whose PID no longer runs."""
    import shutil

    from ..io._files import writer_is_gone

    for name in os.listdir(folder):
        if name.startswith(_SCRATCH_PREFIX) and writer_is_gone(
                name[len(_SCRATCH_PREFIX):].rsplit("-", 1)[0]):
            shutil.rmtree(os.path.join(folder, name), ignore_errors=True)


def _format_of(path, format):
    fmt = format or os.path.splitext(os.fspath(path))[1].lower().lstrip(".")
    if fmt not in ("pos", "epos"):
        raise FormatError(f"cannot tell the format to write from the extension '.{fmt}' "
                          "(use .epos or .pos, or give the format)", path)
    return fmt


def write_simulation(result: SimulatedRun, path, format: str | None = None) -> dict:
    """Write a simulated run: the data file, its ``.rrng``, ``.truth.json`` and ``.truth.pos``.

    Parameters
    ----------
    result : SimulatedRun
    path : str or path-like
        ``run.epos`` or ``run.pos``; the others go beside it
        (``run.rrng``, ``run.truth.json``, ``run.truth.pos``).
    format : {"epos", "pos"}, optional
        Default: from the extension.

    Returns
    -------
    dict
        The truth as written (its ``files`` entry names the files).
    """
    from ..io import write, write_ranges

    fmt = _format_of(path, format)
    paths = output_paths(path)
    folder = os.path.dirname(os.path.abspath(paths["data"]))
    if not os.path.isdir(folder):
        raise FormatError("folder does not exist", folder)
    write(paths["data"], result.run, fmt)
    write_ranges(paths["ranges"], result.ranges)
    write(paths["truth_positions"], Run.from_arrays(x=result.true_x, y=result.true_y,
                                                    z=result.true_z, mass=result.true_mass),
          "pos")
    truth = dict(result.truth)
    truth["files"] = _files_entry(paths, fmt)
    write_json(paths["truth"], truth)
    return truth


def simulate_to_files(config: SimulationConfig, path, format: str | None = None,
                      progress=None, memory_limit_ions: int = MEMORY_LIMIT_IONS) -> dict:
    """Simulate and write, with memory bounded whatever the number of ions.

    Writes exactly what ``write_simulation(simulate(config), path, format)``
    writes (same bytes). Runs of more than ``memory_limit_ions`` ions are
    built in memory-mapped temporary files in a hidden folder beside ``path``
    (removed afterwards, on errors and Ctrl-C too; one left by a killed process
    is removed at the next call), so memory stays bounded by a chunk and the
    page cache. A run that would not fit on the disk
    (:func:`disk_bytes_needed` against ``shutil.disk_usage``) is refused before
    anything is written: FormatError naming the folder.

    Returns
    -------
    dict
        The truth, as written to ``run.truth.json``.
    """
    import shutil
    import tempfile

    fmt = _format_of(path, format)
    folder = os.path.dirname(os.path.abspath(os.fspath(path)))
    if not os.path.isdir(folder):
        raise FormatError("folder does not exist", folder)
    _remove_stale_scratch(folder)
    _check_disk(folder, config.ions, fmt, memory_limit_ions)
    if config.ions <= memory_limit_ions:
        return write_simulation(simulate(config, progress), path, format)
    tmp = tempfile.mkdtemp(prefix=f"{_SCRATCH_PREFIX}{writer_tag()}-", dir=folder)
    try:
        result = simulate(config, progress, scratch_folder=tmp)
        truth = write_simulation(result, path, format)
        del result
        return truth
    finally:       # errors and Ctrl-C (KeyboardInterrupt) too
        shutil.rmtree(tmp, ignore_errors=True)
