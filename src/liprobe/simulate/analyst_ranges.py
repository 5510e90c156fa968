"""Range files as an analyst makes them: pooled mass spectra, autoranged.

A simulated run comes with the simulator's own range file, made from the
run's true species list: windows no analyst could draw. The paper preset
(:func:`liprobe.simulate.write_preset`) analyses its runs with ranges made as
an analyst makes them instead:

1. **Pool.** The runs listed as one material (the manifest's ``material``:
   the Mn-rich particle's runs are pooled with NMC811, as the analyst listed
   them) are pooled into one mass spectrum. Memory stays bounded: each run is
   read in chunks (:func:`liprobe.run.column_chunks`) and every ion is kept
   with the same probability, ``min(1, max_ions / ions of the pool)``, so the
   sample's spectrum is the pooled spectrum's, scaled (each ion draws one
   uniform key; an ion is kept when its key is below the rate).
2. **Autorange** the pooled sample with :func:`liprobe.spectrum.autorange`
   as ``liprobe autorange`` does, with the elements the analyst knows: the
   listed material's formula, Cr (the coating) and H (the chamber's residual
   gas; H and C are added to the candidates anyway).
3. **One set of windows, or one per coating state.** Uncoated runs have
   thermal tails several times longer than coated ones
   (:mod:`liprobe.simulate.evaporation`). When a material's runs are of more
   than one coating state, each state's sample (at its own rate) is also
   autoranged, and the pooled windows are compared with each state's own
   windows on that state's ions: the *disagreement* is the share of the
   state's ions that the two name differently (one ranges an ion the other
   leaves unranged, or they name another ion). When it is above
   ``max_disagreement`` (:data:`SPLIT_DISAGREEMENT`, 0.5 % of the ions) for
   any state, the material gets one range file per coating state. On the
   paper preset the pooled NMC811 Li+ window reaches 0.77 Da above the peak,
   three times what a coated run's tail needs (0.25 Da), and still cuts the
   uncoated runs' tail (1.1 Da); the pooled windows name 2.0 % of the
   uncoated ions and 0.3 % of the coated ones differently (at 3e4 and at
   7.5e5 ions per coated run), so NMC811 is split. A state whose own
   autorange fails keeps the pooled windows (the reason is recorded); a pool
   whose autorange fails is an :class:`~liprobe.errors.AnalysisError` naming
   the pool: there is no fallback to the truth.

:func:`ranging_bias` measures what this ranging does to a run's composition
ratios, against the simulator's truth-derived range file (which the preset
keeps beside each run as ``runs/NAME.truth.rrng``, for tests:
:func:`keep_truth_ranges`); :func:`preset_ranging_bias` does it for every
run of a written preset.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field

import numpy as np

from ..errors import AnalysisError, FormatError, LiprobeError
from ..io._files import open_regular

__all__ = ["POOL_IONS", "SPLIT_DISAGREEMENT", "ANALYST_ADDED_ELEMENTS", "BIAS_RATIOS",
           "TRUTH_RANGES_SUFFIX", "MassSample", "Pool", "MaterialRanges", "RangingBias",
           "analyst_elements", "sample_masses", "window_disagreement", "material_ranges",
           "keep_truth_ranges", "write_analyst_ranges", "ranging_bias",
           "preset_ranging_bias"]

#: Ions of a pooled sample at most (each coating state's sample too): 4 M ions hold the
#: faint peaks of the paper preset (autorange then takes a few seconds) in about 50 MB.
POOL_IONS = 4_000_000

#: Share of a coating state's ions that the pooled windows may name differently from the
#: state's own windows before the material is ranged per coating state.
SPLIT_DISAGREEMENT = 0.005

#: Elements an analyst names besides the material's: the coating's Cr, the chamber's H.
ANALYST_ADDED_ELEMENTS = ("Cr", "H")

#: Mass window of the autorange in Da (``liprobe autorange``'s default).
POOL_MASS_RANGE_DA = (0.5, 200.0)

#: The composition ratios whose ranging bias is measured (atoms, and the field proxy).
BIAS_RATIOS = ("Li/(Li+Ni+Co+Mn)", "Ni/(Ni+Co+Mn)", "O/(Li+O+Ni+Co+Mn)", "O2+/O+")

#: What the simulator's truth-derived range file of a preset run is called.
TRUTH_RANGES_SUFFIX = ".truth.rrng"


def analyst_elements(formula: str, added=ANALYST_ADDED_ELEMENTS) -> tuple[str, ...]:
    """The elements an analyst gives the autorange for a listed material.

    Parameters
    ----------
    formula : str
        A material name or formula (:func:`liprobe.simulate.resolve_material`).
    added : iterable of str
        Elements known from the set-up (default: Cr of the coating, H of the chamber).

    Returns
    -------
    tuple of str
        The formula's elements in its order, then ``added`` (no repeats).

    Raises
    ------
    AnalysisError
        Text that is neither a known material nor a formula.

    Examples
    --------
    >>> analyst_elements("LiNi0.8Co0.1Mn0.1O2")
    ('Li', 'Ni', 'Co', 'Mn', 'O', 'Cr', 'H')
    """
    from .materials import resolve_material

    try:
        els = [el for el, _ in resolve_material(formula).amounts]
    except ValueError as e:
        raise AnalysisError(f"material '{formula}': {e}") from None
    return tuple(dict.fromkeys(els + list(added)))


@dataclass(frozen=True)
class MassSample:
    """A random sample of the ions of one or more runs (every ion kept with one rate).

    ``mass_da`` and ``tof_ns`` (None when a run has no time of flight) are float32;
    ``key`` is each kept ion's uniform draw in [0, 1) (below ``rate``): the ions
    with ``key < r`` are a sample at rate ``r <= rate``. ``ions_total``: ions of
    the runs sampled.
    """

    mass_da: np.ndarray
    tof_ns: np.ndarray | None
    key: np.ndarray
    rate: float
    ions_total: int
    runs: int

    def at_rate(self, rate: float) -> MassSample:
        """The ions of this sample that a sample at ``rate`` (at most :attr:`rate`) keeps."""
        if rate >= self.rate:
            return self
        k = self.key < rate
        return MassSample(self.mass_da[k], None if self.tof_ns is None else self.tof_ns[k],
                          self.key[k], float(rate), self.ions_total, self.runs)

    def to_dict(self) -> dict:
        return {"ions_total": self.ions_total, "ions_sampled": int(len(self.mass_da)),
                "rate": self.rate, "runs": self.runs, "tof": self.tof_ns is not None}


def _concat(samples: list, rate: float) -> MassSample:
    parts = [s.at_rate(rate) for s in samples]
    tof = (None if any(p.tof_ns is None for p in parts)
           else np.concatenate([p.tof_ns for p in parts]))
    return MassSample(np.concatenate([p.mass_da for p in parts]), tof,
                      np.concatenate([p.key for p in parts]), float(rate),
                      sum(p.ions_total for p in parts), sum(p.runs for p in parts))


def _as_run(source):
    """A Run or an array of masses as it is; a path read (memory-mapped)."""
    from ..io import read
    from ..run import Run

    if isinstance(source, (Run, np.ndarray)):
        return source
    return read(source)


def sample_masses(sources, max_ions: int = POOL_IONS, seed: int | tuple = 0,
                  chunk_ions: int | None = None) -> MassSample:
    """Pool the ions of ``sources`` into one sample of at most about ``max_ions`` ions.

    Every ion is kept with probability ``min(1, max_ions / total ions)``, so the
    sample's mass spectrum is the pooled spectrum's; each run is read
    ``chunk_ions`` at a time, so memory is bounded by the sample and a chunk.

    Parameters
    ----------
    sources : sequence of Run, path or ndarray
        The runs (``.epos``, ``.pos``, ...; read memory-mapped), or arrays of
        masses in Da (no time of flight).
    max_ions : int
        Ions of the sample (expected; the draw is binomial). At least 1.
    seed : int or tuple of int
        Run ``i`` draws its keys from ``numpy.random.default_rng([*seed, i])``.
    chunk_ions : int, optional
        Ions read at a time (default :data:`liprobe.run.DEFAULT_CHUNK_IONS`).

    Returns
    -------
    MassSample
        Masses in Da, times of flight in ns (when every run has them).

    Raises
    ------
    AnalysisError
        No run, no ion, or ``max_ions`` below 1.
    FormatError
        A file that cannot be read.
    """
    from ..run import Run, column_chunks

    if isinstance(max_ions, bool) or not isinstance(max_ions, int) or max_ions < 1:
        raise AnalysisError(f"max_ions must be a whole number of at least 1, got {max_ions!r}")
    seeds = [int(x) for x in (seed if isinstance(seed, tuple) else (seed,))]
    runs = [_as_run(s) for s in sources]
    total = sum(len(r) for r in runs)
    if total == 0:
        raise AnalysisError("no ions to pool" + ("" if runs else " (no runs)"))
    rate = min(1.0, max_ions / total)
    with_tof = all(isinstance(r, Run) and "tof" in r for r in runs)
    masses, tofs, keys = [], [], []
    for i, run in enumerate(runs):
        rng = np.random.default_rng([*seeds, i])
        tof_chunks = column_chunks(run, "tof", chunk_ions) if with_tof else None
        for chunk in column_chunks(run, "mass", chunk_ions):
            u = rng.random(len(chunk), dtype=np.float32)
            keep = u < rate
            masses.append(np.asarray(chunk, dtype=np.float32)[keep])
            keys.append(u[keep])
            if tof_chunks is not None:
                tofs.append(np.asarray(next(tof_chunks), dtype=np.float32)[keep])
    return MassSample(np.concatenate(masses), np.concatenate(tofs) if with_tof else None,
                      np.concatenate(keys), float(rate), int(total), len(runs))


def window_disagreement(mass, table_a, table_b) -> dict:
    """How differently two range tables name the same ions.

    Parameters
    ----------
    mass : ndarray of float, shape (n,)
        Mass-to-charge in Da.
    table_a, table_b : RangeTable

    Returns
    -------
    dict
        ``disagreement``: share of the ions named differently (an ion ranged by
        one table and not the other, or named another ion); ``only_a`` and
        ``only_b``: share ranged by that table alone; ``ions``: n. Shares are
        None for no ions.

    Examples
    --------
    >>> import numpy as np
    >>> from liprobe import Range, RangeTable, parse_ion
    >>> a = RangeTable.from_ranges([Range(6.9, 7.3, parse_ion("Li+"))])
    >>> b = RangeTable.from_ranges([Range(6.9, 7.1, parse_ion("Li+"))])
    >>> window_disagreement(np.array([7.0, 7.0, 7.2, 9.0]), a, b)["disagreement"]
    0.25
    """
    from ..ranging import assign

    m = np.asarray(mass)
    n = len(m)
    if n == 0:
        return {"ions": 0, "disagreement": None, "only_a": None, "only_b": None}
    codes: dict[str, int] = {}
    named = []
    for t in (table_a, table_b):
        ion_code = np.array([codes.setdefault(r.ion.name, len(codes) + 1) for r in t.ranges]
                            + [0], dtype=np.int32)       # label -1: the last entry, 0
        named.append(ion_code[assign(m, t)[0]])
    a, b = named
    return {"ions": int(n), "disagreement": float(np.mean(a != b)),
            "only_a": float(np.mean((a > 0) & (b == 0))),
            "only_b": float(np.mean((a == 0) & (b > 0)))}


@dataclass(frozen=True)
class Pool:
    """One range file of :func:`material_ranges`: the runs pooled and the autorange's table.

    ``name`` is the file's stem (``NMC811``, ``NMC811-uncoated``, ``NMC811-Cr-coated``);
    ``explained_fraction``: the autorange's share of peak counts explained;
    ``warnings``: its warnings' messages.
    """

    name: str
    material: str
    coatings: tuple
    elements: tuple
    table: object
    sample: dict
    explained_fraction: float
    warnings: tuple = ()

    def to_dict(self) -> dict:
        return {"name": self.name, "material": self.material, "coatings": list(self.coatings),
                "elements": list(self.elements), "windows": len(self.table.ranges),
                "ions": [ion.name for ion in self.table.ions], "sample": dict(self.sample),
                "explained_fraction": self.explained_fraction,
                "warnings": list(self.warnings)}


@dataclass(frozen=True)
class MaterialRanges:
    """Result of :func:`material_ranges`: one pool, or one per coating state.

    ``disagreement``: per coating state, :func:`window_disagreement` of the pooled
    windows against the state's own on the state's sample (empty for one state);
    ``reason``: why the material has one range file or several.
    """

    material: str
    pools: tuple
    split: bool
    reason: str
    disagreement: dict = field(default_factory=dict)

    def pool_of(self, coating: str) -> Pool:
        """The pool whose windows range the runs of ``coating``."""
        return next(p for p in self.pools if coating in p.coatings)

    def to_dict(self) -> dict:
        return {"material": self.material, "split": self.split, "reason": self.reason,
                "disagreement": {k: dict(v) for k, v in self.disagreement.items()},
                "pools": [p.to_dict() for p in self.pools]}


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)


def _state(coating: str) -> str:
    """``"uncoated"`` or ``"Cr-coated"``."""
    return "uncoated" if coating.lower() == "none" else f"{_safe(coating)}-coated"


def _pool_name(material: str, coating: str | None) -> str:
    """``NMC811``; by coating state ``NMC811-uncoated``, ``NMC811-Cr-coated``."""
    return _safe(material) if coating is None else f"{_safe(material)}-{_state(coating)}"


def _autorange(sample: MassSample, elements, mass_range):
    from ..spectrum.autorange import autorange

    return autorange(sample.mass_da, elements, tof=sample.tof_ns, mass_range=mass_range)


def _pool(name, material, coatings, elements, sample, result) -> Pool:
    return Pool(name, material, tuple(coatings), tuple(elements), result.table,
                sample.to_dict(), float(result.explained_fraction),
                tuple(w["message"] for w in result.warnings))


def material_ranges(material: str, runs_by_coating: dict, elements=None,
                    max_ions: int = POOL_IONS, seed: int | tuple = 0,
                    max_disagreement: float = SPLIT_DISAGREEMENT,
                    mass_range=POOL_MASS_RANGE_DA) -> MaterialRanges:
    """Autoranged windows for the runs listed as one material (module text).

    Parameters
    ----------
    material : str
        The listed material (names the pools; its formula gives the elements
        when ``elements`` is None).
    runs_by_coating : dict of str to sequence of Run or path
        The material's runs by coating state (``"none"``, ``"Cr"``).
    elements : iterable of str, optional
        Elements of the autorange (default :func:`analyst_elements` of ``material``).
    max_ions : int
        Ions of each pooled sample at most (:func:`sample_masses`).
    seed : int or tuple of int
        Seed of the samples (coating state ``k``, in sorted order: ``(*seed, k)``).
    max_disagreement : float
        Share of a coating state's ions (0 to 1) that the pooled windows may name
        differently from the state's own before the material is split by coating.
    mass_range : (float, float)
        Da.

    Returns
    -------
    MaterialRanges

    Raises
    ------
    AnalysisError
        No runs, a pool without ions, or a pooled spectrum the autorange cannot
        range (no significant peak, an unknown element): naming the pool.
    """
    groups = {str(c): list(v) for c, v in runs_by_coating.items() if len(v)}
    if not groups:
        raise AnalysisError(f"material '{material}': no runs to pool")
    if not 0 <= max_disagreement <= 1:
        raise AnalysisError(f"max_disagreement must be in [0, 1], got {max_disagreement}")
    els = tuple(elements) if elements is not None else analyst_elements(material)
    seeds = tuple(int(x) for x in (seed if isinstance(seed, tuple) else (seed,)))
    samples = {c: sample_masses(v, max_ions, seed=(*seeds, k))
               for k, (c, v) in enumerate(sorted(groups.items()))}
    total = sum(s.ions_total for s in samples.values())
    pooled = _concat(list(samples.values()), min(1.0, max_ions / total))
    name = _pool_name(material, None)
    try:
        res = _autorange(pooled, els, mass_range)
    except (LiprobeError, ValueError) as e:
        raise AnalysisError(f"ranges of '{name}' ({pooled.runs} runs, {pooled.ions_total:,} "
                            f"ions, {len(pooled.mass_da):,} sampled): the autorange of the "
                            f"pooled spectrum failed: {e}") from None
    whole = _pool(name, material, sorted(groups), els, pooled, res)
    if len(groups) == 1:
        return MaterialRanges(material, (whole,), False, "one coating state")
    own, disagreement, failed = {}, {}, []
    for c, s in samples.items():
        try:
            own[c] = _autorange(s, els, mass_range)
        except (LiprobeError, ValueError) as e:
            failed.append(f"{_state(c)}: {e}")
            continue
        disagreement[c] = window_disagreement(s.mass_da, res.table, own[c].table)
    worst = max(((d["disagreement"] or 0.0, c) for c, d in disagreement.items()), default=None)
    if failed:
        return MaterialRanges(material, (whole,), False,
                              "one set of windows: the autorange of a coating state alone "
                              "failed (" + "; ".join(failed) + ")", disagreement)
    share, which = worst
    if share <= max_disagreement:
        return MaterialRanges(material, (whole,), False,
                              f"one set of windows: the pooled windows name at most "
                              f"{100 * share:.2f} % of a coating state's ions differently "
                              f"from its own (limit {100 * max_disagreement:.2f} %)",
                              disagreement)
    pools = tuple(_pool(_pool_name(material, c), material, (c,), els, samples[c], own[c])
                  for c in sorted(groups))
    return MaterialRanges(material, pools, True,
                          f"one set of windows per coating state: the pooled windows name "
                          f"{100 * share:.2f} % of the {_state(which)} runs' ions differently "
                          f"from their own (limit {100 * max_disagreement:.2f} %)", disagreement)


def keep_truth_ranges(data_path) -> str:
    """Rename a simulated run's range file to ``NAME.truth.rrng``, for tests only.

    The simulator's range file (``NAME.rrng`` beside ``NAME.epos``, windows from
    the run's true species) becomes ``NAME.truth.rrng``, and the run's
    ``NAME.truth.json`` names it under ``files.ranges``: a name no analyst takes
    for a range file of their own.

    Parameters
    ----------
    data_path : str or path-like
        The run's data file.

    Returns
    -------
    str
        The path of the truth-derived range file.

    Raises
    ------
    FormatError
        Neither ``NAME.rrng`` nor ``NAME.truth.rrng`` is there.
    """
    from ..io._files import write_json

    stem = os.path.splitext(os.fspath(data_path))[0]
    src, dst = stem + ".rrng", stem + TRUTH_RANGES_SUFFIX
    if os.path.exists(src):
        os.replace(src, dst)
    elif not os.path.exists(dst):
        raise FormatError("the simulator's range file is missing", src)
    truth_path = stem + ".truth.json"
    if os.path.exists(truth_path):
        with open_regular(truth_path) as f:
            truth = json.load(f)
        files = truth.get("files")
        if isinstance(files, dict) and files.get("ranges") != os.path.basename(dst):
            files["ranges"] = os.path.basename(dst)
            write_json(truth_path, truth)
    return dst


def write_analyst_ranges(out_dir, runs, formulas: dict, max_ions: int = POOL_IONS,
                         seed: int = 0, max_disagreement: float = SPLIT_DISAGREEMENT) -> dict:
    """Pool the runs per listed material, autorange, and write ``out_dir/ranges/``.

    Writes one ``ranges/POOL.rrng`` per pool (:func:`material_ranges`) and
    ``ranges/pools.json`` (what was pooled, the disagreement measured, the
    decision and each autorange's explained fraction and warnings), each
    atomically.

    Parameters
    ----------
    out_dir : str or path-like
        The preset's folder.
    runs : sequence of (name, material, coating, data path)
        Every run, as listed in the manifest.
    formulas : dict of str to str
        Listed material -> its formula (the elements given to the autorange).
    max_ions, seed, max_disagreement
        As :func:`material_ranges`.

    Returns
    -------
    dict of str to str
        Run name -> its range file, relative to ``out_dir`` (``ranges/POOL.rrng``).

    Raises
    ------
    AnalysisError
        A material without a formula, or a pool that cannot be autoranged.
    """
    from ..io import write_ranges
    from ..io._files import write_json

    out = os.fspath(out_dir)
    by_material: dict = {}
    for name, material, coating, path in runs:
        by_material.setdefault(material, {}).setdefault(coating, []).append((name, path))
    results = []
    for k, (material, groups) in enumerate(sorted(by_material.items())):
        if material not in formulas:
            raise AnalysisError(f"material '{material}' has no formula to range it with")
        results.append(material_ranges(
            material, {c: [p for _, p in v] for c, v in groups.items()},
            analyst_elements(formulas[material]), max_ions, (int(seed), k),
            max_disagreement))
    folder = os.path.join(out, "ranges")
    os.makedirs(folder, exist_ok=True)
    assigned = {}
    for res in results:
        for pool in res.pools:
            write_ranges(os.path.join(folder, pool.name + ".rrng"), pool.table, "rrng")
        for coating, members in by_material[res.material].items():
            rel = "ranges/" + res.pool_of(coating).name + ".rrng"
            assigned.update({name: rel for name, _ in members})
    write_json(os.path.join(folder, "pools.json"), {
        "what": "range files of the runs, autoranged on spectra pooled per listed material "
                "(liprobe.simulate.analyst_ranges); the simulator's truth-derived range "
                "files are runs/NAME.truth.rrng, for tests only",
        "max_ions": max_ions, "seed": seed, "max_disagreement": max_disagreement,
        "materials": [r.to_dict() for r in results],
        "runs": {name: assigned[name] for name, _, _, _ in runs}})
    return {name: assigned[name] for name, _, _, _ in runs}


@dataclass(frozen=True)
class RangingBias:
    """Result of :func:`ranging_bias`: a run's ratios under two range tables.

    ``analyst`` and ``truth``: ratio -> value (None when undefined, e.g. a ratio of
    an element neither table ranges); ``bias``: analyst minus truth (None when
    either is); ``reasons``: why a value is None; ``ranged_fraction``: share of the
    run's ions each table ranges.
    """

    ratios: tuple
    analyst: dict
    truth: dict
    bias: dict
    ranged_fraction: dict
    reasons: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"ratios": list(self.ratios), "analyst": dict(self.analyst),
                "truth": dict(self.truth), "bias": dict(self.bias),
                "ranged_fraction": dict(self.ranged_fraction), "reasons": dict(self.reasons)}


def ranging_bias(run, ranges, truth_ranges, ratios=BIAS_RATIOS) -> RangingBias:
    """The composition ratios of a run under analyst ranges against the truth's ranges.

    Parameters
    ----------
    run : Run or ndarray of float
        The run, or its masses in Da (read twice: not an iterator of chunks).
    ranges : RangeTable
        The analyst's windows (e.g. the preset's pooled autorange).
    truth_ranges : RangeTable
        The simulator's windows from the run's true species.
    ratios : iterable of str
        Ratio expressions (default :data:`BIAS_RATIOS`).

    Returns
    -------
    RangingBias

    Examples
    --------
    A Li+ window cut short of its tail: 1 of 4 Li ions is lost.

    >>> import numpy as np
    >>> from liprobe import Range, RangeTable, parse_ion
    >>> truth = RangeTable.from_ranges([Range(6.9, 7.5, parse_ion("Li+")),
    ...                                 Range(15.9, 16.3, parse_ion("O+"))])
    >>> mine = RangeTable.from_ranges([Range(6.9, 7.2, parse_ion("Li+")),
    ...                                Range(15.9, 16.3, parse_ion("O+"))])
    >>> mass = np.array([7.0, 7.0, 7.1, 7.3, 16.0, 16.0, 16.1, 16.2])
    >>> b = ranging_bias(mass, mine, truth, ["Li/(Li+O)"])
    >>> b.truth["Li/(Li+O)"], round(b.analyst["Li/(Li+O)"], 4), round(b.bias["Li/(Li+O)"], 4)
    (0.5, 0.4286, -0.0714)
    """
    from ..composition import composition

    ratios = tuple(ratios)
    values, reasons, ranged = {}, {}, {}
    for which, table in (("analyst", ranges), ("truth", truth_ranges)):
        c = composition(run, table, ratios=ratios, unranged="null")
        values[which] = {r: c.ratios[r].value for r in ratios}
        for r in ratios:
            if c.ratios[r].value is None:
                reasons[f"{which}:{r}"] = c.ratios[r].reason
        ranged[which] = c.ions_ranged / c.ions_total if c.ions_total else None
    bias = {r: (None if values["analyst"][r] is None or values["truth"][r] is None
                else values["analyst"][r] - values["truth"][r]) for r in ratios}
    return RangingBias(ratios, values["analyst"], values["truth"], bias, ranged, reasons)


def preset_ranging_bias(folder, ratios=BIAS_RATIOS) -> dict:
    """:func:`ranging_bias` of every run of a preset written by ``write_preset``.

    Parameters
    ----------
    folder : str or path-like
        The preset's folder: ``study.toml``, ``runs/NAME.epos`` and the truth's
        ``runs/NAME.truth.rrng`` beside each.
    ratios : iterable of str

    Returns
    -------
    dict of str to RangingBias
        Run name -> its bias, in the manifest's order.

    Raises
    ------
    FormatError
        No readable ``study.toml``, a run without ``data`` or ``ranges``, or a
        missing file.
    """
    import tomllib

    from ..io import read, read_ranges

    d = os.fspath(folder)
    manifest = os.path.join(d, "study.toml")
    try:
        with open_regular(manifest, "rb") as f:
            runs = tomllib.load(f).get("runs", [])
    except OSError as e:
        raise FormatError(e.strerror or str(e), manifest) from None
    except tomllib.TOMLDecodeError as e:
        raise FormatError(f"not TOML: {e}", manifest) from None
    out = {}
    for i, r in enumerate(runs):
        if not isinstance(r, dict) or not isinstance(r.get("data"), str) or \
                not isinstance(r.get("ranges"), str):
            raise FormatError("needs data = \"FILE\" and ranges = \"FILE.rrng\"", manifest,
                              f"runs[{i}]")
        data = os.path.join(d, r["data"])
        truth = os.path.splitext(data)[0] + TRUTH_RANGES_SUFFIX
        out[str(r.get("name", r["data"]))] = ranging_bias(
            read(data), read_ranges(os.path.join(d, r["ranges"])), read_ranges(truth),
            ratios)
    return out

