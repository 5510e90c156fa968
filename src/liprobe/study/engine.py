"""Running a study: cache look-up, one Dask task per run, the table, the flags.

:func:`run_study` is the whole of ``liprobe study``:

1. every row (a run, or a segment of one) is keyed by a hash of the whole
   content of its input files and of the parameters that change its analysis
   (:mod:`liprobe.study.cache`); a row whose record exists and passes its
   schema and hash checks is taken from it (an untrusted record is recomputed,
   with a warning naming its file);
2. the other rows are analysed by :func:`liprobe.study.analysis.analyse_run`,
   each an independent task: on a local Dask cluster by default (processes,
   one thread per worker, listening on 127.0.0.1 only, no dashboard unless
   asked for), on an existing cluster given its
   scheduler's address, or in this process with ``workers=0``;
3. each result is written to the cache as soon as it arrives (atomically),
   so a study killed half-way keeps every finished run;
4. the table is assembled in manifest order, flagged
   (:mod:`liprobe.study.flags`) and written as ``runs.csv``,
   ``runs.parquet``, ``yield.csv`` and ``summary.json``, each atomically.

A run that fails (a missing file, a bad key in its manifest entry, an
analysis error) is a row with ``status = "failed"`` and its ``error``; the
others complete and :attr:`StudyResult.exit_code` is :data:`EXIT_PARTIAL`.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import logging
import os
import signal
import threading
import time
from dataclasses import dataclass, field

from .._version import __version__
from ..errors import LiprobeError
from ..io._files import atomic_write, atomic_write_text, csv_safe_frame, write_json
from .analysis import analyse_run, registry_signature
from .cache import HASH_NAME, Cache
from .flags import flag_rows, yield_table
from .manifest import Manifest, RunSpec, load_manifest

__all__ = ["run_study", "StudyResult", "EXIT_OK", "EXIT_PARTIAL", "META_COLUMNS"]

#: The only interface a local cluster listens on.
LOOPBACK = "127.0.0.1"

#: Exit codes of ``liprobe study``: every run analysed / some runs failed.
EXIT_OK = 0
EXIT_PARTIAL = 3

#: Table columns that come from the manifest, in order (``tag_*`` columns follow).
META_COLUMNS = ("run", "segment", "segment_name", "segment_start", "segment_stop", "material",
                "coating", "laser_pj", "particle", "instrument")
#: Columns of text (an empty one stays text in runs.parquet; other empty columns are numbers).
_TEXT_COLUMNS = frozenset({"run", "segment_name", "material", "coating", "particle",
                           "instrument", "status", "error", "format", "peaks_present",
                           "peaks_absent", "abrupt_end_evidence", "best_phase", "flags",
                           "flag_reasons", "reasons"})


@dataclass
class StudyResult:
    """The outcome of :func:`run_study`.

    Attributes
    ----------
    name : str
    out : str
        Output folder.
    rows : list of dict
        The table, one dict per row, in manifest order.
    columns : list of str
    yields : list of dict
        Runs complete / fractured per coating.
    computed, cached, failed : list of str
        Row labels analysed now, taken from the cache, failed.
    paths : dict
        ``runs_csv``, ``runs_parquet``, ``yield_csv``, ``summary_json``.
    records : dict
        Row label -> cache record path (rows that have one).
    """

    name: str
    out: str
    rows: list
    columns: list
    yields: list
    computed: list = field(default_factory=list)
    cached: list = field(default_factory=list)
    failed: list = field(default_factory=list)
    paths: dict = field(default_factory=dict)
    records: dict = field(default_factory=dict)
    wall_s: float = 0.0
    analysis_s: float = 0.0

    @property
    def exit_code(self) -> int:
        return EXIT_PARTIAL if self.failed else EXIT_OK

    @property
    def table(self):
        """The table as a pandas DataFrame (the contents of ``runs.parquet``)."""
        return _dataframe(self.rows, self.columns)

    def to_dataframe(self):
        """The per-run records as a pandas DataFrame (as :attr:`table`), one row per run
        or segment, with ``df.attrs["units"]`` and ``df.attrs["descriptions"]`` of the
        columns (:func:`liprobe.study.columns.column_info`)."""
        from .columns import column_info

        df = self.table
        info = {c: column_info(c) for c in self.columns}
        df.attrs["units"] = {c: u for c, (u, _) in info.items()}
        df.attrs["descriptions"] = {c: d for c, (_, d) in info.items()}
        return df

    def summary(self) -> dict:
        return {
            "study": self.name, "out": self.out, "rows": len(self.rows),
            "ok": len(self.rows) - len(self.failed), "failed": len(self.failed),
            "computed": len(self.computed), "cached": len(self.cached),
            "exit_code": self.exit_code, "partial": bool(self.failed),
            "failed_rows": [{"row": r["run"] if r.get("segment") is None
                             else f"{r['run']}[{r['segment']}]", "error": r.get("error")}
                            for r in self.rows if r.get("status") != "ok"],
            "yield": self.yields, "files": self.paths,
            "wall_s": self.wall_s, "analysis_s": self.analysis_s,
        }


# --------------------------------------------------------------------------
# keys and records
# --------------------------------------------------------------------------

def _failed(error: str) -> dict:
    return {"status": "failed", "error": error, "values": {}, "reasons": {}, "timings_s": {}}


def _inputs(spec: RunSpec, cache: Cache, manifest: Manifest) -> dict:
    """``{"data": hash, "ranges": hash}``; raises LiprobeError naming the manifest line."""
    out = {}
    for what, path, line in (("data", spec.data, spec.data_line),
                             ("ranges", spec.ranges, spec.ranges_line)):
        if path is None:
            continue
        try:
            out[what] = cache.digest(path)
        except OSError as e:
            where = f"line {line}: " if line else ""
            why = "no such file" if isinstance(e, FileNotFoundError) else (e.strerror or str(e))
            raise LiprobeError(f"{manifest.path}: {where}key runs[{spec.entry}].{what}: "
                               f"{path}: {why}") from None
    return out


def _params_for_key(spec: RunSpec, manifest: Manifest, groups: dict) -> dict:
    return {"liprobe": __version__, "groups": groups, "run": spec.analysis_dict(),
            "study": manifest.params.to_dict()}


# --------------------------------------------------------------------------
# execution
# --------------------------------------------------------------------------

def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _check_reachable(address: str) -> None:
    """Fail at once (rather than after the client's timeout) when nothing listens there."""
    import socket
    from urllib.parse import urlsplit

    u = urlsplit(address if "://" in address else f"tcp://{address}")
    if u.scheme not in ("tcp", "tls") or not u.hostname or not u.port:
        return
    try:
        socket.create_connection((u.hostname, u.port), timeout=5).close()
    except OSError as e:
        raise LiprobeError(f"cannot connect to the Dask scheduler at {address} "
                           f"({e.strerror or e})") from None


@contextlib.contextmanager
def _sigint_ignored():
    """SIGINT ignored while the local cluster starts, so that its worker processes inherit
    the ignored signal: Ctrl-C (sent to the whole foreground process group) then reaches
    the study alone, which closes the cluster, instead of every worker printing a
    KeyboardInterrupt traceback. The main thread only (elsewhere signals cannot be set)."""
    old = signal.getsignal(signal.SIGINT) if threading.current_thread() is \
        threading.main_thread() else None
    if old is None:             # not the main thread, or a handler not set from Python
        yield
        return
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


def _stop_local(cluster, client) -> None:
    """Ctrl-C: stop a local cluster at once. Its workers are stopped (:func:`_stop_workers`)
    before the client and the cluster close, which would otherwise wait for their tasks,
    and the cluster is dropped from distributed's close at exit (its workers are gone). The
    scheduler's logs of the connections it loses (with tracebacks) are silenced meanwhile:
    nothing a user should read after pressing Ctrl-C."""
    from distributed.deploy.spec import SpecCluster

    quiet = logging.getLogger("distributed")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)
    try:
        _stop_workers(cluster)
        with contextlib.suppress(Exception):
            client.close(timeout=1)
        with contextlib.suppress(Exception):
            cluster.close(timeout=1)
    finally:
        quiet.setLevel(level)
    SpecCluster._instances.discard(cluster)


def _stop_workers(cluster) -> None:
    """Stop a local cluster's worker processes at once: each nanny is first told not to
    restart its worker, then the worker processes (and anything they started) are
    terminated, and killed if they linger. Only the cluster's own workers are touched."""
    import psutil

    nannies = list(getattr(cluster, "workers", {}).values())
    pids = [n.pid for n in nannies if getattr(n, "pid", None)]
    for n in nannies:
        with contextlib.suppress(Exception):
            n.close_gracefully(reason="liprobe: interrupted")       # no restart
    procs = set()
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            p = psutil.Process(pid)
            procs |= {p, *p.children(recursive=True)}
    for p in procs:
        with contextlib.suppress(psutil.Error):
            p.terminate()
    _gone, alive = psutil.wait_procs(procs, timeout=1.0)
    for p in alive:
        with contextlib.suppress(psutil.Error):
            p.kill()


def _execute(pending, params, scheduler, workers, on_result, dashboard=None):
    """Run ``analyse_run`` on every pending spec; ``on_result(spec, result)`` as each finishes.

    ``dashboard``: None (no dashboard) or ``dashboard(link)``, called with the
    address of the local cluster's dashboard (on 127.0.0.1) once it is up.
    """
    if scheduler is None and workers == 0:
        for spec in pending:
            on_result(spec, analyse_run(spec, params))
        return
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError as e:  # pragma: no cover - a dependency
        raise LiprobeError(f"the study needs dask.distributed ({e}); "
                           "or run with --workers 0") from e
    cluster = None
    interrupted = False
    try:
        if scheduler is not None:
            _check_reachable(scheduler)
            try:
                client = Client(scheduler, timeout="10s")
            except (OSError, TimeoutError) as e:
                raise LiprobeError(f"cannot connect to the Dask scheduler at {scheduler} "
                                   f"({e})") from None
        else:
            n = workers or min(len(pending), _cores())
            # everything on the loopback interface only: the scheduler, the workers and
            # the scheduler's small HTTP server (health checks, and the dashboard when
            # asked for) on a free port of 127.0.0.1, never on all interfaces
            with _sigint_ignored():
                cluster = LocalCluster(
                    n_workers=max(1, n), threads_per_worker=1, processes=True, host=LOOPBACK,
                    dashboard_address=f"{LOOPBACK}:0" if dashboard else None,
                    silence_logs=logging.ERROR,
                    scheduler_kwargs={"dashboard": bool(dashboard),
                                      "dashboard_address": f"{LOOPBACK}:0"},
                    env={"NUMBA_NUM_THREADS": "1"})                  # one thread per worker
            client = Client(cluster)
            if dashboard:
                dashboard(client.dashboard_link)
        futures: dict = {}
        try:
            futures = {client.submit(analyse_run, spec, params, pure=False): spec
                       for spec in pending}
            for fut in as_completed(futures):
                spec = futures[fut]
                try:
                    res = fut.result()
                except Exception as e:  # noqa: BLE001 - a lost worker fails one run only
                    res = _failed(f"the task failed on the cluster: {type(e).__name__}: "
                                  f"{' '.join(str(e).split())}")
                on_result(spec, res)
        except KeyboardInterrupt:
            # Ctrl-C: drop the rows not finished (each finished row is already in the
            # cache, so the same command resumes) and stop the local workers at once,
            # before the cluster's graceful close, which would wait for their tasks
            interrupted = True
            if cluster is not None:
                _stop_local(cluster, client)
            raise
        finally:
            if not (interrupted and cluster is not None):
                with contextlib.suppress(Exception):
                    client.close(timeout=1 if interrupted else 10)
    finally:
        if cluster is not None and not interrupted:
            with contextlib.suppress(Exception):
                cluster.close(timeout=10)


# --------------------------------------------------------------------------
# the table
# --------------------------------------------------------------------------

def _merge_columns(orders) -> list:
    """Union of column lists keeping each list's order (a new column goes after its predecessor)."""
    out: list = []
    for cols in orders:
        prev = None
        for c in cols:
            if c not in out:
                out.insert(out.index(prev) + 1 if prev is not None else len(out), c)
            prev = c
    return out


def _row(spec: RunSpec, result: dict) -> dict:
    row = {"run": spec.run, "segment": spec.segment}
    row.update(spec.meta())
    row["status"] = result["status"]
    row["error"] = result.get("error")
    row.update(result.get("values", {}))
    reasons = result.get("reasons", {})
    row["reasons"] = "; ".join(f"{k}: {v}" for k, v in reasons.items()) or None
    return row


def _dataframe(rows, columns):
    import pandas as pd

    df = pd.DataFrame([[r.get(c) for c in columns] for r in rows], columns=columns, dtype=object)
    for c in columns:
        vals = [v for v in df[c] if v is not None]
        if not vals:      # a column no row could compute: numbers unless known as text
            text = c in _TEXT_COLUMNS or c.startswith("tag_")
            df[c] = df[c].astype("string" if text else "float64")
        elif all(isinstance(v, bool) for v in vals):
            df[c] = df[c].astype("boolean")
        elif all(isinstance(v, int) and not isinstance(v, bool) for v in vals):
            df[c] = df[c].astype("Int64")
        elif all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vals):
            df[c] = pd.to_numeric(df[c]).astype("float64")
        else:
            df[c] = df[c].map(lambda v: None if v is None else str(v)).astype("string")
    return df


def _parquet_with_units(df, f) -> None:
    """``df`` as Parquet, each field's unit and description in its schema metadata
    (``unit``, ``description``), and all of them as JSON under ``liprobe.columns``."""
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    from .columns import column_info

    table = pa.Table.from_pandas(df, preserve_index=False)
    info = {c: column_info(c) for c in df.columns}
    fields = [fld.with_metadata({"unit": info[fld.name][0],
                                 "description": info[fld.name][1]}) for fld in table.schema]
    meta = dict(table.schema.metadata or {})
    meta[b"liprobe.columns"] = json.dumps(
        {c: {"unit": u, "description": d} for c, (u, d) in info.items()}).encode()
    pq.write_table(pa.Table.from_arrays(table.columns, schema=pa.schema(fields, metadata=meta)),
                   f)


def _write_tables(out: str, rows, columns, yields, summary) -> dict:
    df = _dataframe(rows, columns)
    paths = {"runs_csv": os.path.join(out, "runs.csv"),
             "runs_parquet": os.path.join(out, "runs.parquet"),
             "yield_csv": os.path.join(out, "yield.csv"),
             "summary_json": os.path.join(out, "summary.json")}
    atomic_write_text(paths["runs_csv"], csv_safe_frame(df).to_csv(index=False))
    with atomic_write(paths["runs_parquet"], "wb") as f:
        _parquet_with_units(df, f)
    import pandas as pd

    ydf = pd.DataFrame(yields, columns=["coating", "runs", "complete", "fractured", "unknown",
                                        "yield"])
    atomic_write_text(paths["yield_csv"], csv_safe_frame(ydf).to_csv(index=False))
    write_json(paths["summary_json"], dict(summary, files=paths), indent=2)
    return paths


# --------------------------------------------------------------------------
# the study
# --------------------------------------------------------------------------

def run_study(manifest, out, scheduler: str | None = None, workers: int | None = None,
              progress=None, dashboard=None) -> StudyResult:
    """Analyse every run of a manifest and write the study's table.

    Parameters
    ----------
    manifest : Manifest or path
    out : str or path
        Output folder (created): ``runs.csv``, ``runs.parquet``, ``yield.csv``,
        ``summary.json`` and ``cache/``.
    scheduler : str, optional
        Address of a running Dask scheduler (``tcp://host:8786``).
    workers : int, optional
        Workers of the local cluster (default: one per core, at most one per
        run to compute); 0 analyses in this process, without Dask.
    progress : callable, optional
        Called as ``progress(event)`` with a dict: ``label``, ``state``
        (``"cached"``, ``"ok"``, ``"failed"``), ``done``, ``total``, ``seconds``,
        ``error``; for a computed run, after its record is in the cache.
    dashboard : callable, optional
        Start the local cluster's Dask dashboard, on 127.0.0.1 only, and call
        ``dashboard(link)`` with its address. By default there is none, and
        the local cluster listens on 127.0.0.1 only.

    Returns
    -------
    StudyResult

    Raises
    ------
    ManifestError
        The manifest cannot be used.
    LiprobeError
        The scheduler cannot be reached.

    Examples
    --------
    A study of one simulated run, analysed in this process (``workers=0``):

    >>> import os, tempfile
    >>> from liprobe.simulate import SimulationConfig, simulate, write_simulation
    >>> from liprobe.study import run_study
    >>> tmp = tempfile.TemporaryDirectory()
    >>> sim = simulate(SimulationConfig("NMC811", coating="Cr", ions=20_000, seed=1))
    >>> files = write_simulation(sim, os.path.join(tmp.name, "cr-5.epos"))   # and cr-5.rrng
    >>> manifest = os.path.join(tmp.name, "study.toml")
    >>> with open(manifest, "w") as f:
    ...     _ = f.write('''
    ... [study]
    ... name = "tiny"
    ... roi = "cylinder:25"
    ... exclude = ["Cr"]
    ... ratios = ["Ni/(Ni+Co+Mn)"]
    ...
    ... [[runs]]
    ... name = "cr-5"
    ... data = "cr-5.epos"
    ... ranges = "cr-5.rrng"
    ... material = "NMC811"
    ... coating = "Cr"
    ... laser_pj = 5
    ... ''')
    >>> result = run_study(manifest, os.path.join(tmp.name, "out"), workers=0)
    >>> result.exit_code, result.computed, result.failed
    (0, ['cr-5'], [])
    >>> row = result.rows[0]
    >>> row["status"], row["ions"]
    ('ok', 20000)
    >>> print(f"{row['Ni/(Ni+Co+Mn)']:.1f}")        # LiNi0.8Co0.1Mn0.1O2
    0.8
    >>> sorted(os.listdir(os.path.join(tmp.name, "out")))
    ['cache', 'runs.csv', 'runs.parquet', 'summary.json', 'yield.csv']

    Run again, the row comes from the cache:

    >>> run_study(manifest, os.path.join(tmp.name, "out"), workers=0).cached
    ['cr-5']
    >>> tmp.cleanup()
    """
    t_start = time.perf_counter()
    if not isinstance(manifest, Manifest):
        manifest = load_manifest(manifest)
    out = os.path.abspath(os.fspath(out))
    os.makedirs(out, exist_ok=True)
    cache = Cache(out)
    groups = registry_signature()
    specs = list(manifest.runs)
    results: dict[int, dict] = {}
    keys: dict[int, str] = {}
    records: dict[str, str] = {}
    computed: list = []
    cached: list = []
    total = len(specs)
    done = [0]

    def report(label, state, seconds=None, error=None):
        done[0] += 1
        if progress is not None:
            progress({"label": label, "state": state, "done": done[0], "total": total,
                      "seconds": seconds, "error": error})

    pending: list = []
    inputs_of: dict[int, dict] = {}
    for i, spec in enumerate(specs):
        if spec.problem:
            results[i] = _failed(f"{manifest.path}: {spec.problem}")
            report(spec.label, "failed", error=results[i]["error"])
            continue
        try:
            inputs = _inputs(spec, cache, manifest)
        except LiprobeError as e:
            results[i] = _failed(str(e))
            report(spec.label, "failed", error=results[i]["error"])
            continue
        key = cache.key(inputs, _params_for_key(spec, manifest, groups))
        keys[i], inputs_of[i] = key, inputs
        rec = cache.load(key)
        if rec is not None:
            results[i] = rec["result"]
            records[spec.label] = cache.path(key)
            cached.append(spec.label)
            report(spec.label, "cached", rec.get("timings_s", {}).get("total"))
        else:
            pending.append(i)
    cache.save_memo()          # the inputs' hashes, for the next study (cache.Cache.digest)

    index_of = {id(specs[i]): i for i in pending}

    def on_result(spec, res):
        i = index_of[id(spec)]
        results[i] = res
        if res["status"] == "ok":
            rec = {"key": keys[i], "run": spec.run, "segment": spec.segment,
                   "inputs": {k: {"path": getattr(spec, k), HASH_NAME: v}
                              for k, v in inputs_of[i].items()},
                   "params": _params_for_key(spec, manifest, groups),
                   "finished": _dt.datetime.now(_dt.UTC).isoformat(),
                   "timings_s": res.get("timings_s", {}), "result": res}
            stored = cache.store(rec)
            if stored is not None:
                records[spec.label] = stored
        computed.append(spec.label)
        report(spec.label, res["status"], res.get("timings_s", {}).get("total"),
               res.get("error"))

    if pending:
        _execute([specs[i] for i in pending], manifest.params, scheduler, workers, on_result,
                 dashboard=dashboard)

    rows = [_row(spec, results[i]) for i, spec in enumerate(specs)]
    flags = flag_rows(rows, manifest.materials, manifest.params, manifest.rules)
    for r, f in zip(rows, flags):
        reasons = r.pop("reasons")
        r.update(f)
        r["reasons"] = reasons
    tags = sorted({k for s in specs for k, _ in s.metadata if k.startswith("tag_")})
    columns = _merge_columns([list(META_COLUMNS) + tags + ["status", "error"]]
                             + [list(r) for r in rows])
    # flags and reasons last
    for c in ("best_phase", "flags", "flag_reasons", "reasons"):
        columns.remove(c)
        columns.append(c)
    yields = yield_table(rows)
    failed = [s.label for s, r in zip(specs, rows) if r["status"] != "ok"]
    analysis_s = sum((results[i].get("timings_s") or {}).get("total", 0.0)
                     for i in range(len(specs)) if specs[i].label in computed)
    result = StudyResult(name=manifest.name, out=out, rows=rows, columns=columns, yields=yields,
                         computed=computed, cached=cached, failed=failed, records=records,
                         analysis_s=analysis_s)
    result.wall_s = time.perf_counter() - t_start
    result.paths = _write_tables(out, rows, columns, yields, result.summary())
    return result
