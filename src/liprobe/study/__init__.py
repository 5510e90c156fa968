"""Studies: many runs analysed the same way, one table, batch-relative flags.

The only part of liprobe that knows about many runs. In a notebook::

    from liprobe.study import load_manifest, run_study

    study = load_manifest("study.toml")            # Manifest (errors name line and key)
    result = run_study(study, "out/", workers=2)   # local Dask cluster; workers=0: in-process
    df = result.table                              # pandas DataFrame, as out/runs.parquet
    result.exit_code                               # 0, or 3 when some runs failed

and one run of it, as a worker analyses it::

    from liprobe.study import analyse_run
    analyse_run(study.runs[0], study.params)       # {"status", "error", "values", "reasons", ...}

Modules: :mod:`~liprobe.study.manifest` (the TOML format),
:mod:`~liprobe.study.analysis` (the registry of column groups and the
per-run task), :mod:`~liprobe.study.cache` (content-hashed records),
:mod:`~liprobe.study.flags` (delithiated, off_stoichiometric, other_phase,
early_fracture), :mod:`~liprobe.study.phases` (reference phases),
:mod:`~liprobe.study.presence` (peaks above background),
:mod:`~liprobe.study.grain` (a grain of another phase, its proxigram),
:mod:`~liprobe.study.engine` (execution and the table).
"""

from .analysis import GROUPS, analyse_run, column_group, registry_signature
from .engine import EXIT_OK, EXIT_PARTIAL, StudyResult, run_study
from .flags import FLAGS, flag_rows, yield_table
from .manifest import (
    FlagRules,
    Manifest,
    ManifestError,
    RunSpec,
    StudyParams,
    load_manifest,
    parse_manifest,
)

__all__ = ["EXIT_OK", "EXIT_PARTIAL", "FLAGS", "FlagRules", "GROUPS", "Manifest",
           "ManifestError", "RunSpec", "StudyParams", "StudyResult", "analyse_run",
           "column_group", "flag_rows", "load_manifest", "parse_manifest", "registry_signature",
           "run_study", "yield_table"]
