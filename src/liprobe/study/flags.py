"""Flags: what a run's numbers say against the rest of the batch.

Each flag comes with one sentence in ``flag_reasons`` giving the number, the
reference it was compared with and the threshold. Thresholds are in
:class:`~liprobe.study.manifest.FlagRules` (``[study.flags]``). "Robust z" is
``(value - median) / scale`` with ``scale = max(1.4826 MAD, floor)`` over the
reference runs: the median and the median absolute deviation (scaled to a
standard deviation for normal data) ignore the outliers one is looking for
(Iglewicz & Hoaglin, *How to Detect and Handle Outliers*, ASQC 1993, whose
modified z-score flags above 3.5). The floor keeps a batch of near-identical
runs from turning tiny differences into flags.

``delithiated``
    Detector heterogeneity, Li's FDA dispersion (the variance of the Li count
    per block over the binomial's, for every configured FDA species carrying
    Li: unlike the FDA mu, which grows with the number of blocks, its
    expectation does not depend on the run's size) or the detector
    Li-fraction mu (over a fixed sample of hits) far above the batch's coated
    runs: robust z above ``delithiated_z`` (5). Floors: ``mu_scale_min``
    (0.02) for mu, ``dispersion_scale_min`` (0.1) for the dispersion, whose
    z also takes the run's own error (``sqrt(scale^2 + err^2)``); for the
    heterogeneity ``heterogeneity_scale_min`` (0.1) of the coated median, or
    the median Poisson noise of the heterogeneity if larger. Field-driven
    delithiation shows as Li clustered in time and space and as an uneven
    hit map (Singh et al. 2023, Fig. 1 and 4; Kim et al., J. Mater. Chem. A
    10 (2022) 4926). Reference: the coated runs (at least
    ``min_reference_runs``), else every run. Or, for an uncoated run, a study
    ratio with Li in its numerator (``Li/(Li+Ni+Co+Mn)``) more than
    ``delithiated_z`` robust SD below or above that of the coated runs of the
    same material and instrument (floor ``ratio_scale_min``, or the run's
    counting error if larger; runs of another phase neither judged nor taken
    as reference): Li lost between pulses shows as a deficit, Li brought in
    from the specimen's flanks as an excess (:mod:`liprobe.simulate.lithium`).
    Coated runs are not judged on their Li ratio: the shell suppresses
    field-driven migration (Kim et al. 2022), so a coated run off the batch is a
    composition (``off_stoichiometric``: a grain, a particle). A Li ratio that
    passes through the bulk value while Li moves is caught by the clustering
    only.
``other_phase``
    The run's peaks and cation fractions fit another phase of the study
    better than its expected material (:mod:`liprobe.study.phases`): fewer
    elements missing or extra, or, with as many, a cation distance smaller by
    ``phase_margin`` (0.1). The phase that fits is named, and is in the
    ``best_phase`` column of every run. Or the run holds a grain of another
    phase (the study's ``grain`` group, :mod:`liprobe.study.grain`): the flag
    says where it is (depth range in the reconstruction's z, nm), its volume
    and its cation ratios, and names the phase whose nominal ratios they are
    closest to (``best_phase`` stays the run's own fit).
``off_stoichiometric``
    A study ratio of atoms (cation ratios: a ratio with O in it only with
    ``off_stoichiometric_oxygen``, since O is lost in laser-pulsed oxides) off
    its reference, ``off_stoichiometric_reference``:

    - ``nominal``: the null hypothesis is the material's formula (the
      manifest's ``[materials]`` or the built-in phases); the ratio departs
      from it by more than ``max(off_stoichiometric_min, 3 sigma)`` (0.03),
      sigma combining the run's counting error with the spread (robust SD)
      of the comparable runs;
    - ``batch``: the null hypothesis is the comparable runs (same material and
      instrument, not delithiated nor of another phase): ``|robust z|`` above
      ``off_stoichiometric_z`` (3.5), floor ``ratio_scale_min`` (0.01) or the
      run's counting error if larger (APT's biases, ~1e-2, dwarf counting
      errors, ~1e-3), judged with at least ``min_reference_runs`` of them;
    - ``both`` (the default): either.

    An uncoated run's Li ratios are judged by ``delithiated`` instead, against
    the coated runs, when there are enough of them; its other ratios with Li in
    them (``Mn/(Li+Mn)``) are then not judged, since they move with Li.
``early_fracture``
    ``tags.outcome`` says so (fractured, early_fracture), or the run ends
    abruptly (:func:`liprobe.history.run_history`: a final burst of multiple
    hits or of ions per pulse).
"""

from __future__ import annotations

import math

import numpy as np

from .manifest import OUTCOMES_FRACTURED, FlagRules
from .phases import match_phases, parse_stoichiometry, ratio_of_formula

__all__ = ["FLAGS", "robust_center_scale", "flag_rows", "yield_table"]

#: The flags, in the order they are listed.
FLAGS = ("delithiated", "off_stoichiometric", "other_phase", "early_fracture")


def robust_center_scale(values) -> tuple[float, float]:
    """Median and ``1.4826 * MAD`` of ``values``."""
    v = np.asarray(values, dtype=np.float64)
    med = float(np.median(v))
    return med, float(1.4826 * np.median(np.abs(v - med)))


def _ok(row) -> bool:
    return row.get("status") == "ok"


def _num(row, col):
    v = row.get(col)
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) \
        else None


def _li_metrics(params) -> list[tuple[str, str, str]]:
    """(column, description, kind) of the delithiation metrics the study computes."""
    from ..chemistry import Ion, parse_species

    out = [("detector_heterogeneity", "detector heterogeneity", "heterogeneity")]

    def has_li(sp):
        s = parse_species(sp)
        return s.count("Li") > 0 if isinstance(s, Ion) else s == "Li"

    for sp in params.fda.species:
        if has_li(sp):
            out.append((f"fda_dispersion_{sp}", f"FDA dispersion of {sp}", "dispersion"))
    sp = params.detector.species
    if sp and has_li(sp):
        out.append((f"detector_mu_{sp}", f"detector {sp}-fraction mu", "mu"))
    return out


def _record(out_row: dict, flag: str, test: str, reference: float, score: float,
            threshold: float) -> None:
    """Keep a test's numbers for the table (:func:`flag_rows`): ``flag_<flag>_<test>_reference``,
    ``_score`` (a z, or a departure from a nominal ratio) and ``_threshold`` (``|score|`` above
    it fires)."""
    t = out_row.setdefault("_tests", {})
    base = f"flag_{flag}_{test}"
    t[base + "_reference"] = float(reference)
    t[base + "_score"] = float(score)
    t[base + "_threshold"] = float(threshold)


def _fmt(v: float) -> str:
    return f"{v:.3g}" if abs(v) < 1e4 else f"{v:.3e}"


def _delithiated(rows, params, rules: FlagRules, out):
    for col, what, kind in _li_metrics(params):
        ref = [r for r in rows if _ok(r) and r.get("coating", "none") != "none"
               and _num(r, col) is not None]
        ref_what = "coated runs"
        if len(ref) < rules.min_reference_runs:
            ref = [r for r in rows if _ok(r) and _num(r, col) is not None]
            ref_what = "runs (too few coated runs to compare with)"
        if len(ref) < rules.min_reference_runs:
            continue
        med, mad = robust_center_scale([_num(r, col) for r in ref])
        if kind == "mu":
            floor = rules.mu_scale_min
        elif kind == "dispersion":
            floor = rules.dispersion_scale_min
        else:
            noise = [_num(r, col + "_err") for r in ref if _num(r, col + "_err") is not None]
            floor = max(rules.heterogeneity_scale_min * abs(med),
                        float(np.median(noise)) if noise else 0.0)
        scale = max(mad, floor)
        if not scale > 0:
            continue
        for i, r in enumerate(rows):
            v = _num(r, col)
            if v is None or not _ok(r):
                continue
            own = _num(r, col + "_err") if kind == "dispersion" else None
            sd = math.hypot(scale, own) if own else scale
            z = (v - med) / sd
            _record(out[i], "delithiated", col, med, z, rules.delithiated_z)
            if z > rules.delithiated_z:
                sd_text = (f"SD {_fmt(sd)}: the batch's {_fmt(scale)} and the run's own "
                           f"{_fmt(own)}" if own else f"SD {_fmt(scale)}")
                out[i].setdefault("delithiated", []).append(
                    f"{what} {_fmt(v)} is {z:.1f} robust SD above the median {_fmt(med)} of "
                    f"{len(ref)} {ref_what} ({sd_text}, threshold {rules.delithiated_z:g})")


def _li_ratio_shift(rows, params, rules: FlagRules, out) -> set:
    """The Li-ratio part of ``delithiated`` (module docstring): against the coated runs of
    the same material and instrument, after ``other_phase``. Returns the ``(row, ratio)``
    pairs it judged, which ``off_stoichiometric`` then leaves alone."""
    judged: set = set()
    from ..chemistry import Ion, parse_ratio

    exprs = []
    for t in params.ratios:
        r = parse_ratio(t)
        if any(isinstance(x, Ion) for x in r.terms):
            continue
        if {name for name, _ in r.numerator} == {"Li"}:
            exprs.append(t)
    skip = {i for i, o in enumerate(out) if "other_phase" in o}
    groups: dict = {}
    for i, r in enumerate(rows):
        if _ok(r) and i not in skip:
            groups.setdefault((r.get("material"), r.get("instrument")), []).append(i)
    for (material, instrument), idx in groups.items():
        where = f"coated {material or 'unknown material'} runs" + (
            f" on {instrument}" if instrument else "")
        for expr in exprs:
            ref = [_num(rows[i], expr) for i in idx
                   if rows[i].get("coating", "none") != "none"]
            ref = [v for v in ref if v is not None]
            if len(ref) < rules.min_reference_runs:
                continue
            med, mad = robust_center_scale(ref)
            for i in idx:
                v = _num(rows[i], expr)
                if v is None or rows[i].get("coating", "none") != "none":
                    continue
                judged.add((i, expr))
                sd = max(mad, rules.ratio_scale_min, _num(rows[i], expr + "_err") or 0.0)
                _ratio_z(out[i], "delithiated", expr, expr, v, med, sd,
                         f"{len(ref)} {where}", rules.delithiated_z)
    return judged


def _ratio_z(out_row, flag, test, expr, v, center, sd, of, threshold) -> None:
    """A ratio's robust z against reference runs (``of``: how many, which): recorded
    (:func:`_record`), and a sentence under ``flag`` when ``|z|`` passes ``threshold``."""
    z = (v - center) / sd
    _record(out_row, flag, test, center, z, threshold)
    if abs(z) > threshold:
        out_row.setdefault(flag, []).append(
            f"{expr} = {_fmt(v)} is {abs(z):.1f} robust SD {'below' if z < 0 else 'above'} "
            f"the median {_fmt(center)} of {of} (SD {_fmt(sd)}, threshold {threshold:g})")


def _grain_phase(rows, materials, rules: FlagRules, out):
    """``other_phase`` for a grain inside a run (module docstring)."""
    from ..chemistry import Ion, parse_ratio

    for i, r in enumerate(rows):
        vol = _num(r, "grain_volume_nm3")
        if not _ok(r) or not vol or vol <= 0:
            continue
        ratios = {}
        for col in r:
            if not col.startswith("grain_") or col.endswith("_err"):
                continue
            expr = col[len("grain_"):]
            try:
                e = parse_ratio(expr)
            except ValueError:
                continue
            els = {el for el, _ in e.numerator + e.denominator}
            if any(isinstance(t, Ion) for t in e.terms) or "O" in els:
                continue
            v = _num(r, col)
            if v is not None:
                ratios[expr] = v
        best, best_d = None, math.inf
        for name, formula in materials.items():
            if name == r.get("material"):
                continue
            d = [v - ratio_of_formula(x, formula) for x, v in ratios.items()
                 if ratio_of_formula(x, formula) is not None]
            if d and math.sqrt(np.mean(np.square(d))) < best_d:
                best, best_d = name, math.sqrt(np.mean(np.square(d)))
        lo, hi = _num(r, "grain_depth_max_nm"), _num(r, "grain_depth_min_nm")
        where = (f" at z {_fmt(lo)} to {_fmt(hi)} nm" if lo is not None and hi is not None
                 else "")
        comp = ", ".join(f"{x} {_fmt(v)}" for x, v in ratios.items())
        what = (f"closest to {best}'s nominal ratios (rms {best_d:.3f})" if best is not None
                else "no phase of the study")
        frac = _num(r, "grain_ion_fraction")
        share = f" ({100 * frac:.1f} % of the analysed ions)" if frac is not None else ""
        out[i].setdefault("other_phase", []).append(
            f"a grain of another phase{where}, {vol:,.0f} nm^3{share}, {comp}: {what}")


def _cations(materials: dict, exclude) -> tuple:
    els = []
    for f in materials.values():
        for el in parse_stoichiometry(f):
            if el != "O" and el not in exclude and el not in els:
                els.append(el)
    return tuple(els)


def _present_elements(row) -> set:
    from ..chemistry import parse_ion

    out = set()
    for name in (row.get("peaks_present") or "").split(";"):
        if name:
            out.update(parse_ion(name).elements)
    return out


def _other_phase(rows, materials, params, rules: FlagRules, out, best):
    cations = _cations(materials, params.exclude)
    phases = {name: {el: a for el, a in parse_stoichiometry(f).items() if el in cations}
              for name, f in materials.items()}
    phases = {k: v for k, v in phases.items() if v}
    for i, r in enumerate(rows):
        if not _ok(r) or r.get("peaks_present") is None:
            continue
        pct = {el: _num(r, f"at_pct_{el}") or 0.0 for el in cations}
        total = sum(pct.values())
        if not total > 0:
            continue
        frac = {el: v / total for el, v in pct.items()}
        ranking = match_phases(frac, _present_elements(r), phases, rules.phase_trace)
        if not ranking:
            continue
        top = ranking[0]
        best[i] = top.phase
        expected = r.get("material")
        exp = next((m for m in ranking if m.phase == expected), None)
        if exp is None or top.phase == expected:
            continue
        if not (top.mismatches < exp.mismatches or
                (top.mismatches == exp.mismatches
                 and exp.distance - top.distance > rules.phase_margin)):
            continue
        why = []
        if exp.missing:
            why.append(f"no peak of {', '.join(exp.missing)} (expected in {expected})")
        if exp.extra:
            why.append(f"{', '.join(exp.extra)} present ({expected} has none)")
        shown = ", ".join(f"{el} {frac[el]:.2f}" for el in cations if frac[el] >= 0.005)
        why.append(f"cation fractions {shown} fit {top.phase} ({materials[top.phase]}, "
                   f"distance {top.distance:.2f}) better than {expected} ({exp.distance:.2f})")
        out[i].setdefault("other_phase", []).append("; ".join(why))


def _off_stoichiometric(rows, materials, params, rules: FlagRules, out, skip=frozenset()):
    """``off_stoichiometric`` (module docstring); ``skip``: ``(row, ratio)`` pairs judged by
    the Li-ratio part of ``delithiated`` (an uncoated run's Li ratios): for those rows no
    ratio with Li in it is judged (``Mn/(Li+Mn)`` moves with Li as ``Li/(Li+Mn)`` does)."""
    from ..chemistry import Ion, parse_ratio

    li_rows = {i for i, _ in skip}
    ratios = []
    for t in params.ratios:
        r = parse_ratio(t)
        if any(isinstance(x, Ion) for x in r.terms):
            continue
        if not rules.off_stoichiometric_oxygen and "O" in {el for el, _ in
                                                          r.numerator + r.denominator}:
            continue
        ratios.append(t)
    has = {t: {el for el, _ in parse_ratio(t).numerator + parse_ratio(t).denominator}
           for t in ratios}
    mode = rules.off_stoichiometric_reference
    excluded = {i for i, o in enumerate(out) if "delithiated" in o or "other_phase" in o}
    groups: dict = {}
    for i, r in enumerate(rows):
        if _ok(r):
            groups.setdefault((r.get("material"), r.get("instrument")), []).append(i)
    for (material, instrument), idx in groups.items():
        where = f"{material or 'unknown material'} runs" + (f" on {instrument}" if instrument
                                                              else "")
        for expr in ratios:
            ref = [_num(rows[i], expr) for i in idx if i not in excluded]
            ref = [v for v in ref if v is not None]
            batch = len(ref) >= rules.min_reference_runs
            center, mad = robust_center_scale(ref) if batch else (math.nan, 0.0)
            nominal = ratio_of_formula(expr, materials[material]) \
                if material in materials else None
            for i in idx:
                v = _num(rows[i], expr)
                if v is None or (i in li_rows and "Li" in has[expr]):
                    continue
                err = _num(rows[i], f"{expr}_err") or 0.0
                if mode in ("batch", "both") and batch:
                    _ratio_z(out[i], "off_stoichiometric", expr + "_batch", expr, v, center,
                             max(mad, rules.ratio_scale_min, err),
                             f"{len(ref)} comparable {where}", rules.off_stoichiometric_z)
                if mode in ("nominal", "both") and nominal is not None:
                    sigma = math.hypot(err, mad)
                    limit = max(rules.off_stoichiometric_min, 3.0 * sigma)
                    d = v - nominal
                    _record(out[i], "off_stoichiometric", expr + "_nominal", nominal, d, limit)
                    if abs(d) > limit:
                        out[i].setdefault("off_stoichiometric", []).append(
                            f"{expr} = {_fmt(v)} is {abs(d):.3f} {'above' if d > 0 else 'below'}"
                            f" {material}'s nominal {_fmt(nominal)} (threshold "
                            f"max({rules.off_stoichiometric_min:g}, 3 sigma) = {limit:.3g})")


def _early_fracture(rows, out):
    for i, r in enumerate(rows):
        o = str(r.get("tag_outcome") or "").lower()
        if o in OUTCOMES_FRACTURED:
            out[i].setdefault("early_fracture", []).append(
                f"the manifest says so (tags.outcome = \"{r.get('tag_outcome')}\")")
        if r.get("abrupt_end") is True:
            ev = r.get("abrupt_end_evidence") or "abrupt end of the run"
            out[i].setdefault("early_fracture", []).append(f"the run ends abruptly: {ev}")


def flag_rows(rows: list, materials: dict, params, rules: FlagRules) -> list[dict]:
    """Flags of every row of the study's table.

    Parameters
    ----------
    rows : list of dict
        Table rows (metadata and values; ``status`` ``"ok"`` rows are judged).
    materials : dict of str to str
        Phase name -> formula (manifest and built-in).
    params : StudyParams
    rules : FlagRules

    Returns
    -------
    list of dict
        Per row: the numbers of every test judged on it (``flag_<flag>_<test>_reference``,
        ``_score``, ``_threshold``: the reference value, the z, or the departure from a
        nominal ratio, and the threshold ``|score|`` must pass; ``<test>`` is the metric,
        or the ratio with ``_batch`` or ``_nominal``), ``flags`` (``;``-separated, in
        :data:`FLAGS` order), ``flag_reasons`` (one sentence per test that fired,
        ``flag: reason``, joined by ``" | "``) and ``best_phase``.
    """
    out: list[dict] = [{} for _ in rows]
    best: list = [None] * len(rows)
    _delithiated(rows, params, rules, out)
    _other_phase(rows, materials, params, rules, out, best)
    _grain_phase(rows, materials, rules, out)
    judged = _li_ratio_shift(rows, params, rules, out)
    _off_stoichiometric(rows, materials, params, rules, out, judged)
    _early_fracture(rows, out)
    result = []
    for o, b in zip(out, best):
        names = [f for f in FLAGS if f in o]
        result.append({
            **o.get("_tests", {}),
            "best_phase": b,
            "flags": ";".join(names),
            "flag_reasons": " | ".join(f"{f}: {'; '.join(o[f])}." for f in names),
        })
    return result


def yield_table(rows: list) -> list[dict]:
    """Runs complete and fractured per coating (a run counts once, whatever its segments).

    A run is fractured when any of its rows carries ``early_fracture``,
    complete when it was analysed and does not, unknown when its analysis
    failed and the manifest does not say.
    """
    runs: dict = {}
    for r in rows:
        k = r["run"]
        e = runs.setdefault(k, {"coating": r.get("coating") or "none", "fractured": False,
                                "ok": True})
        if "early_fracture" in (r.get("flags") or "").split(";"):
            e["fractured"] = True
        if r.get("status") != "ok":
            e["ok"] = False
    table: dict = {}
    for e in runs.values():
        t = table.setdefault(e["coating"], {"coating": e["coating"], "runs": 0, "complete": 0,
                                            "fractured": 0, "unknown": 0})
        t["runs"] += 1
        if e["fractured"]:
            t["fractured"] += 1
        elif e["ok"]:
            t["complete"] += 1
        else:
            t["unknown"] += 1
    out = []
    for t in table.values():
        judged = t["complete"] + t["fractured"]
        t["yield"] = t["complete"] / judged if judged else None
        out.append(t)
    return sorted(out, key=lambda t: t["coating"])
