"""The study's whole series as one preset: ``liprobe simulate --preset paper -o DIR``.

:func:`write_preset` simulates every run the study of Singh et al.
(arXiv:2309.07842, 2023; ``shared/reference/paper-numbers.md``) measured and
writes ``DIR/study.toml`` in DESIGN.md's manifest format, ready for
``liprobe study DIR/study.toml -o OUT``:

- uncoated NMC811, particle P1, at 5, 10, 15 and 20 pJ, and one uncoated run
  with a 5/10/15/20 pJ laser schedule (Figure 1, "the 5pJ section"):
  field-driven delithiation, and, most of them, fracture before the
  requested count (:mod:`liprobe.simulate.fracture`; the schedule run at a
  fixed point in its last section);
- Cr-coated NMC811 P1 at 5, 8, 10, 12, 15, 20, 30, 40 and 50 pJ
  (Supplementary Table 1), one run with a 5/10/15 pJ schedule (Figure 3)
  and one at 5 pJ with a LiMn2O4 grain inside (the grain-in-matrix run);
  particles P2, P3 and P4 of the same batch, slightly different in
  composition (Figure 6: a narrow spread), at a few energies each;
- the Mn-rich particle MnRich-1 (a Li-Mn-O spinel-like phase, no Ni or Co)
  at 10, 12, 15 and 20 pJ, listed as ``material = "NMC811"``: what the
  analyst expected (its true phase is in ``tags.true_phase`` and the truth);
- Cr-coated commercial LiMn2O4, particle LMO-1, at 1, 5, 8, 10, 15 and 20 pJ
  (Figure 7), whose Li and Mn fractions are whatever the evaporation
  physics gives (:mod:`liprobe.simulate.evaporation`).

Which runs fracture is the fracture model's draw (uncoated runs fracture
early and often, coated ones rarely), and the manifest does not say: the
study finds a fracture from each run's history (the final burst of multiple
hits), as it would for real data; the truth holds the answer.

Every run has a little H+ and H2+ (:data:`~liprobe.simulate.DEFAULT_HYDROGEN`).
Laser schedules are ``segments`` of the manifest (one table row per
segment). The manifest ranges every run as an analyst would: with
``ranges/POOL.rrng``, autoranged on the mass spectra of the runs pooled per
listed material, one file per coating state when their peak shapes differ
too much (:mod:`liprobe.simulate.analyst_ranges`; ``ranges/pools.json`` says
how). Beside each run are its truth (``runs/NAME.truth.json``), its true
positions and the simulator's range file from its true species
(``runs/NAME.truth.rrng``), for tests only.

Sizes: ``ions`` is the detected-ion count of a coated single-energy run
(default :data:`PAPER_IONS`); the other runs are multiples of it (see
:data:`PAPER_WEIGHTS`). Three **flagship runs** are as deep as real ones:
the coated P1 run at 5 pJ, the grain-in-matrix run and the uncoated run
with the laser schedule, 6-6.5 million detected ions each, so that the
central 25 nm cylinder spans more than 30 nm of reconstructed depth (a
30 nm-radius apex with a 10 deg shank, the whole cap imaged by the LEAP
5000 XS's wide field of view; 6 M ions evaporate about 34 nm, and the
``.epos`` is reconstructed with the depth calibrated, see
:func:`liprobe.simulate.truth.depth_ratio`). The others are 0.5-1 M ions;
a fractured run is as deep as its fracture lets it be. Budget at the
default size: 2 x 6 M + 7 M + 30 runs of 0.5-1.1 M requested, 36.6 M ions
(``bench/results/demo.md``). The Li FDA mu of a run grows with its ion
count (the FDA's chi-square grows with the number of blocks).

The **grain-in-matrix run** (``nmc811-cr-p1-grain-5pj``) is a coated P1
specimen holding an 18 nm LiMn2O4 grain (:data:`GRAIN`) that crosses part
of the analysed volume (8 to 26 nm deep, off the axis, partly outside the
25 nm ROI cylinder); its truth records the part of the grain inside the
analysed volume (``grain.volume_nm3``). The Mn-rich particle's own runs stay
whole-grain runs ([SI24] Suppl. Fig. 4 shows no Ni, Co, NiO or CoO peaks).

Apex and shank: 30 nm and 10 deg (:class:`.parameters.SpecimenGeometry`):
FIB-sharpened oxide specimens end in apices of a few tens of nm
([BOOK-G] ch. 4), and the seed's 25 nm ROI cylinder sits inside every
coated reconstruction ([SI24] s3.2: "a cylindrical region-of-interest (ROI)
25 nm in diameter was placed at the center"). Depth: published NMC811 runs
are tens of nm deep (a corroded NMC811 particle's dataset profiled along a
50 nm-long ROI: Microstructures 3 (2023) 2023043, Fig. 13,
doi:10.20517/microstructures.2023.38). No published LEAP 5000 NMC811 run
states its apex radius or shank angle, so these two stay the textbook's
typical values, an *assumption*.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

from .config import PhaseSpec, SimulationConfig
from .parameters import DEFAULT_HYDROGEN

__all__ = ["PRESETS", "PAPER_IONS", "PAPER_WEIGHTS", "GRAIN", "PresetRun", "preset_runs",
           "write_preset", "manifest_text"]

#: Detected ions of a coated single-energy run of the paper preset.
PAPER_IONS = 500_000

#: Size of each kind of run as a multiple of ``ions``: ``flagship`` for the deep coated
#: and grain runs (6 M at the default size), ``uncoated_schedule`` for the deep uncoated
#: run with the laser schedule (6.5 M, 0.93 of 7 M: it fractures in its last section);
#: uncoated single-energy runs are requested larger because they fracture early.
PAPER_WEIGHTS = {"coated": 1.0, "uncoated": 2.0, "coated_schedule": 0.75,
                 "uncoated_schedule": 14.0, "flagship": 12.0}

#: The grain of the grain-in-matrix run: a LiMn2O4 sphere of 18 nm diameter centred at
#: x = 7, y = -4 nm, 17 nm deep (truth frame), as ``--phases`` takes it.
GRAIN = "LiMn2O4=sphere:18@7,-4,-17"

#: Particles: name -> (true phase formula, kind). NMC811 particles of one batch differ
#: slightly (Figure 6, a narrow spread: *assumption* +-0.01 on Ni and Co, -3 % Li).
PARTICLES = {
    "P1": "LiNi0.8Co0.1Mn0.1O2",
    "P2": "LiNi0.81Co0.09Mn0.1O2",
    "P3": "LiNi0.79Co0.11Mn0.1O2",
    "P4": "Li0.97Ni0.8Co0.1Mn0.1O2",
    "MnRich-1": "Li1.1Mn1.9O4",
    "LMO-1": "LiMn2O4",
}

#: Materials of the study's manifest (what a run may be expected to be).
MATERIALS = {"NMC811": "LiNi0.8Co0.1Mn0.1O2", "LiMn2O4": "LiMn2O4"}


@dataclass(frozen=True)
class PresetRun:
    """One run of a preset.

    ``schedule``: ``((fraction of the run's ions, laser pJ), ...)`` or empty;
    ``weight``: size as a multiple of the preset's ``ions``; ``fracture``:
    the config's fracture setting (``"auto"``: the fracture model,
    :mod:`liprobe.simulate.fracture`); ``phases``: second phases inside the
    specimen, as ``--phases`` takes them (``MATERIAL=sphere:D@X,Y,Z``).
    """

    name: str
    particle: str
    coating: str
    listed_material: str
    laser_pj: float
    weight: float
    schedule: tuple = ()
    fracture: object = "auto"
    phases: tuple = ()

    @property
    def true_phase(self) -> str:
        return PARTICLES[self.particle]

    def config(self, ions: int, seed: int) -> SimulationConfig:
        n = max(1000, int(round(ions * self.weight)))
        sched = tuple((int(round(f * n)), pj) for f, pj in self.schedule)
        material = "NMC811" if self.true_phase == MATERIALS["NMC811"] else (
            "LiMn2O4" if self.true_phase == MATERIALS["LiMn2O4"] else self.true_phase)
        phases = tuple(PhaseSpec.parse(p) for p in self.phases)
        return SimulationConfig(material=material, coating=self.coating, ions=n, seed=seed,
                                laser_pj=self.laser_pj, schedule=sched, fracture=self.fracture,
                                hydrogen=DEFAULT_HYDROGEN, phases=phases)


def _paper_runs() -> tuple:
    w = PAPER_WEIGHTS
    runs = []
    for e in (5, 10, 15, 20):
        runs.append(PresetRun(f"nmc811-none-p1-{e}pj", "P1", "none", "NMC811", e,
                              w["uncoated"]))
    # the schedule run fractures in its last (20 pJ) section, so that every section is there
    runs.append(PresetRun("nmc811-none-p1-5-10-15-20pj", "P1", "none", "NMC811", 5,
                          w["uncoated_schedule"],
                          ((0.0, 5), (0.25, 10), (0.5, 15), (0.75, 20)), fracture=0.93))
    for e in (5, 8, 10, 12, 15, 20, 30, 40, 50):
        runs.append(PresetRun(f"nmc811-cr-p1-{e}pj", "P1", "Cr", "NMC811", e,
                              w["flagship"] if e == 5 else w["coated"]))
    runs.append(PresetRun("nmc811-cr-p1-grain-5pj", "P1", "Cr", "NMC811", 5, w["flagship"],
                          phases=(GRAIN,)))
    runs.append(PresetRun("nmc811-cr-p1-5-10-15pj", "P1", "Cr", "NMC811", 5,
                          w["coated_schedule"] * 3, ((0.0, 5), (1 / 3, 10), (2 / 3, 15))))
    for p, energies in (("P2", (5, 10, 20)), ("P3", (5, 15)), ("P4", (10, 30))):
        for e in energies:
            runs.append(PresetRun(f"nmc811-cr-{p.lower()}-{e}pj", p, "Cr", "NMC811", e,
                                  w["coated"]))
    for e in (10, 12, 15, 20):
        runs.append(PresetRun(f"mnrich-cr-mnrich1-{e}pj", "MnRich-1", "Cr", "NMC811", e,
                              w["coated"]))
    for e in (1, 5, 8, 10, 15, 20):
        runs.append(PresetRun(f"limn2o4-cr-lmo1-{e}pj", "LMO-1", "Cr", "LiMn2O4", e,
                              w["coated"]))
    return tuple(runs)


#: Presets by name: (description, runs, default ions).
PRESETS = {
    "paper": ("the series of Singh et al., arXiv:2309.07842 (2023): uncoated and Cr-coated "
              "NMC811 across laser energies, particles P2-P4, a Mn-rich particle listed as "
              "NMC811, LiMn2O4", _paper_runs(), PAPER_IONS),
}


def preset_runs(name: str = "paper") -> tuple:
    """The runs of a preset (:class:`PresetRun`).

    Raises
    ------
    ValueError
        For an unknown preset name.
    """
    try:
        return PRESETS[name][1]
    except KeyError:
        raise ValueError(f"unknown preset '{name}' (known: {', '.join(PRESETS)})") from None


def _run_seed(seed: int, index: int) -> int:
    return int(seed) * 1000 + index


@contextlib.contextmanager
def _sigint_ignored():
    """SIGINT ignored in this process meanwhile (the main thread's only), so that the
    worker processes started meanwhile inherit SIG_IGN from their first instruction: a
    Ctrl-C while a worker is still importing prints no traceback from it."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


def _ignore_sigint() -> None:
    """A simulation worker's initializer: Ctrl-C is the parent's to handle."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _stop_pool(pool, folder: str) -> None:
    """Stop a process pool now (Ctrl-C or an error in one run): queued runs are cancelled
    and the worker processes terminated (killed if they linger 2 s) instead of waiting for
    the runs under way, which take minutes at large sizes. What the stopped workers left
    in ``folder`` (their scratch folders and temporary files) is removed."""
    from ..io._files import remove_dead_writers_tmp
    from .files import _remove_stale_scratch

    procs = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for p in procs:
        if p.is_alive():
            p.terminate()
    for p in procs:
        p.join(2)
        if p.is_alive():
            p.kill()
            p.join(1)
    _remove_stale_scratch(folder)
    remove_dead_writers_tmp(folder)


def _simulate_one(args) -> dict:
    """Simulate one run to files (a top-level function: picklable for worker processes)."""
    from .files import simulate_to_files
    from .truth import summary

    config, path = args
    truth = simulate_to_files(config, path)
    s = summary(truth)
    return {"truth_segments": [(seg["start_ion"], seg["stop_ion"], seg["laser_pj"])
                               for seg in truth["segments"]],
            "ions_detected": s["ions_detected"], "fractured": s["fractured"]}


def _toml_str(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return f"{v:g}" if isinstance(v, float) else str(v)
    return _toml_str(str(v))


def manifest_text(name: str, entries: list, ranges: dict | None = None) -> str:
    """The study manifest (DESIGN.md's format) of a written preset.

    ``entries``: per run, ``(PresetRun, seed, ions_requested, ions_detected, fractured,
    segments)`` with ``segments`` the truth's ``(start_ion, stop_ion, laser_pj)`` of each.
    ``fractured`` is not written: the simulator's outcome stays in the truth, and the
    study finds a fracture from the run's history. ``ranges``: run name -> its range
    file relative to the manifest (default ``ranges/MATERIAL.rrng`` of its listed
    material: the pooled autorange, :mod:`liprobe.simulate.analyst_ranges`, never the
    truth's ``runs/NAME.truth.rrng``).
    """
    desc = PRESETS[name][0]
    lines = [
        f"# liprobe simulate --preset {name}: {desc}.",
        "# Simulated (liprobe.simulate); each run's truth is runs/NAME.truth.json.",
        "# Ranges: spectra pooled per listed material, autoranged (ranges/pools.json).",
        "# Analyse with: liprobe study study.toml -o OUT",
        "",
        "[study]",
        'name = "Singh et al. 2023, simulated: NMC811 with an in-situ Cr coating"',
        'roi = "cylinder:25"',
        'exclude = ["Cr"]',
        'ratios = ["Li/(Li+Ni+Co+Mn)", "Ni/(Ni+Co+Mn)", "O/(Li+O+Ni+Co+Mn)", "Li/(Li+Mn)", '
        '"Mn/(Li+Mn)"]',
        'field_proxies = ["O2+/O+", "Mn++/Mn+", "Ni++/Ni+", "Co++/Co+"]',
        'fda = { species = ["Li+"], block = 100 }',
        'detector = { species = "Li+", core = 0.4 }',
        'reference_peaks = ["Li+", "O+", "O2+", "Ni++"]',
        "",
    ]
    for mat, formula in MATERIALS.items():
        lines += [f"[materials.{mat}]", f"formula = {_toml_str(formula)}", ""]
    for run, seed, requested, n_det, _fractured, segs in entries:
        rfile = (ranges or {}).get(run.name) or f"ranges/{run.listed_material}.rrng"
        lines += [
            "[[runs]]",
            f"name = {_toml_str(run.name)}",
            f"data = {_toml_str('runs/' + run.name + '.epos')}",
            f"ranges = {_toml_str(rfile)}",
            f"material = {_toml_str(run.listed_material)}",
            f"coating = {_toml_str(run.coating)}",
        ]
        if len(segs) > 1:
            parts = []
            for k, (a, b, pj) in enumerate(segs):
                if b is None or a is None or b <= a:
                    continue
                stop = "" if k == len(segs) - 1 or b >= n_det else f", stop = {b}"
                parts.append(f'{{ start = {a}{stop}, laser_pj = {_toml_value(float(pj))}, '
                             f'name = "{pj:g} pJ" }}')
            lines.append("segments = [" + ",\n            ".join(parts) + "]")
        else:
            lines.append(f"laser_pj = {_toml_value(float(run.laser_pj))}")
        lines += [
            f"particle = {_toml_str(run.particle)}",
            'instrument = "LEAP 5000 XS"',
            f"tags = {{ true_phase = {_toml_str(run.true_phase)}, seed = {seed}, "
            f"ions_requested = {requested} }}",
            "",
        ]
    return "\n".join(lines)


def write_preset(name: str, out_dir, ions: int | None = None, seed: int = 0,
                 workers: int | None = None, progress=None) -> str:
    """Simulate a preset's series into ``out_dir`` and write its study manifest.

    Parameters
    ----------
    name : str
        The preset (``"paper"``).
    out_dir : str or path-like
        Folder (created if missing): ``study.toml``, ``runs/`` (each run's
        ``.epos``, ``.truth.json``, ``.truth.pos`` and the simulator's
        truth-derived ``.truth.rrng``, for tests only) and ``ranges/`` (the
        range files the manifest gives the runs: spectra pooled per listed
        material and autoranged, :func:`~liprobe.simulate.analyst_ranges.write_analyst_ranges`,
        with ``pools.json`` saying how).
    ions : int, optional
        Detected ions of a coated single-energy run (default: the preset's,
        :data:`PAPER_IONS`); the other runs scale with it.
    seed : int
        Base seed; run ``i`` of the preset uses ``1000 * seed + i``.
    workers : int, optional
        Processes simulating runs in parallel (default: up to 2, one per
        core; 0 or 1: in this process).
    progress : callable, optional
        ``progress(done, total, run_name)`` after each run is written.

    Returns
    -------
    str
        The path of ``out_dir/study.toml``.

    Raises
    ------
    ValueError
        An unknown preset, or ``ions`` / ``seed`` not a whole number above 0 / at least 0.
    AnalysisError
        A pooled spectrum that the autorange cannot range (naming the pool).
    """
    from ..io._files import atomic_write
    from .analyst_ranges import keep_truth_ranges, write_analyst_ranges

    runs = preset_runs(name)
    base = PRESETS[name][2] if ions is None else ions
    if isinstance(base, float) and base.is_integer():
        base = int(base)
    if isinstance(base, bool) or not isinstance(base, int) or base <= 0:
        raise ValueError(f"ions must be a whole number above 0, got {ions!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a whole number >= 0, got {seed!r}")
    out = os.fspath(out_dir)
    folder = os.path.join(out, "runs")
    os.makedirs(folder, exist_ok=True)
    jobs = []
    for i, run in enumerate(runs):
        cfg = run.config(base, _run_seed(seed, i))
        jobs.append((cfg, os.path.join(folder, run.name + ".epos")))
    if workers is None:
        workers = min(2, os.cpu_count() or 1)
    results: list = [None] * len(jobs)
    if workers <= 1:
        for i, job in enumerate(jobs):
            results[i] = _simulate_one(job)
            if progress is not None:
                progress(i + 1, len(jobs), runs[i].name)
    else:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor, as_completed

        # largest first (better packing); spawn: numba's threads and fork do not mix.
        # The workers ignore SIGINT: Ctrl-C reaches this process, which stops them at once
        # (a run under way is lost; _stop_pool removes its scratch and temporary files)
        order = sorted(range(len(jobs)), key=lambda i: -jobs[i][0].ions)
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"),
                                   initializer=_ignore_sigint)
        try:
            with _sigint_ignored():      # the workers are born ignoring it (spawn keeps it)
                futures = {pool.submit(_simulate_one, jobs[i]): i for i in order}
            done = 0
            for fut in as_completed(futures):
                i = futures[fut]
                results[i] = fut.result()
                done += 1
                if progress is not None:
                    progress(done, len(jobs), runs[i].name)
        except BaseException:
            _stop_pool(pool, folder)
            raise
        pool.shutdown()
    entries = [(run, job[0].seed, job[0].ions, r["ions_detected"], r["fractured"],
                r["truth_segments"]) for run, job, r in zip(runs, jobs, results)]
    for job in jobs:
        keep_truth_ranges(job[1])
    ranges = write_analyst_ranges(out, [(run.name, run.listed_material, run.coating, job[1])
                                        for run, job in zip(runs, jobs)], MATERIALS, seed=seed)
    path = os.path.join(out, "study.toml")
    with atomic_write(path, "w", encoding="utf-8") as f:
        f.write(manifest_text(name, entries, ranges))
    return path
