"""The per-run reporting table: what an APT paper states about each data set.

One row per row of the study's table, with the items the field asks every
APT data set to be reported with (instrument and acquisition conditions,
reconstruction, mass spectrum quality, ranging, analysis; Gault et al.,
*Atom probe tomography*, Nat. Rev. Methods Primers 1, 51 (2021), section
"Reproducibility and data deposition"):

instrument, flight path, detection efficiency (:mod:`liprobe.instruments`);
mode, base temperature, pulse frequency, detection rate; laser energy; ions
(segment, ROI, ranged in the ROI); reconstruction and its parameters; MRP at
FWHM and FW10%M on a named peak; background level; the range file and how
overlaps are handled; ROI size; the confidence of the errors (1 sigma).

Files do not hold every acquisition condition (an ``.epos`` holds none). They
are taken, in order, from the manifest's tags (``tags = { mode = "laser",
temperature_K = 60, pulse_frequency_kHz = 100, detection_rate_pct = 0.5,
reconstruction = "..." }``, table columns ``tag_<name>``), from a simulated
run's ``.truth.json`` beside its data, else reported as "not recorded".
"""

from __future__ import annotations

import math

from ..instruments import instrument as _instrument
from .groups import number
from .numbers import value_error
from .sources import read_truth, row_label

__all__ = ["reporting_rows", "RANGING_CONVENTIONS", "ERRORS", "named_peak", "roi_text"]

#: How the study's counts treat the windows of the range files (liprobe's rules).
RANGING_CONVENTIONS = (
    "Windows are half-open [lo, hi) in Da. Windows of different ions may not overlap (a range "
    "file where they do is rejected when loaded); overlapping windows of one ion are merged. "
    "Counts are the ions in the windows: no background subtraction and no deconvolution of "
    "overlapping peaks. 16 Da is counted as O+ (O2++ cannot be told from it). Molecular ions "
    "are decomposed into their atoms (NiO2+ gives one Ni and two O).")
#: The confidence of every error in the tables and figures.
ERRORS = "1 sigma, counting statistics only (binomial for fractions, Poisson-propagated ratios)"


def _tag(row, name):
    """A ``tag_<name>`` cell, looked up case-insensitively; None if absent or empty."""
    want = f"tag_{name}".lower()
    for k in row.index if hasattr(row, "index") else row:
        if str(k).lower() == want:
            v = row[k]
            if v is None or (isinstance(v, float) and math.isnan(v)):
                return None
            try:
                import pandas as pd

                if v is pd.NA:
                    return None
            except ImportError:  # pragma: no cover
                pass
            return v
    return None


def roi_text(spec: str | None) -> str:
    """``cylinder:25`` -> ``cylinder, 25 nm diameter along z, whole length``."""
    if not spec:
        return "none (all ions of the segment)"
    from ..spatial.roi import parse_roi

    try:
        d = parse_roi(spec).describe()
    except ValueError:
        return spec
    k = d["kind"]
    if k == "cylinder":
        length = (f"{d['length_nm']:g} nm long" if d.get("length_nm") is not None
                  else "whole length")
        return f"{spec}: {d['diameter_nm']:g} nm diameter, along z, {length}, centred"
    if k == "sphere":
        return f"{spec}: sphere, {d['diameter_nm']:g} nm diameter"
    if k == "box":
        return f"{spec}: box (nm)"
    if k == "core":
        return f"{spec}: inside the coating shell, {d['margin_nm']:g} nm margin"
    return spec


def named_peak(table, params) -> str | None:
    """The reference peak reported for every row: the first of the study's with most values."""
    peaks = list(getattr(params, "reference_peaks", ()) or ())
    peaks += [c[len("mrp_fwhm_"):] for c in table.columns if str(c).startswith("mrp_fwhm_")]
    best, n_best = None, 0
    for p in dict.fromkeys(peaks):
        c = f"mrp_fwhm_{p}"
        n = int(table[c].notna().sum()) if c in table else 0
        if n > n_best:
            best, n_best = p, n
    return best


def _fmt(v, spec=".3g", unit=""):
    x = number(v)
    if x is None:
        return None
    return f"{x:{spec}}{unit}"


def _reconstruction(truth, row) -> str:
    tag = _tag(row, "reconstruction")
    if tag:
        return str(tag)
    rp = truth.get("reconstruction_parameters") if isinstance(truth, dict) else None
    if rp and isinstance(rp, dict):
        parts = []
        for key, name, fmt in (("k_factor", "k", "{:g}"), ("icf", "ICF", "{:.3g}"),
                               ("evaporation_field_V_per_nm", "F", "{:.3g} V/nm"),
                               ("atomic_volume_nm3", "Omega", "{:g} nm3"),
                               ("efficiency", "eta", "{:g}"),
                               ("flight_path_mm", "L", "{:g} mm")):
            if number(rp.get(key)) is not None:      # a malformed truth file: left out
                parts.append(f"{name} " + fmt.format(number(rp[key])))
        return (f"{str(rp.get('protocol', '?')).capitalize()} projection, radius from the "
                f"{rp.get('radius', '?')}: " + ", ".join(parts) + " (simulator's truth)")
    return "positions as in the file (reconstruction parameters not recorded with it)"


def reporting_rows(table, runs=None, params=None, ranging_ids=None) -> list[dict]:
    """The reporting table, one dict per row of the study's table (ordered keys).

    Parameters
    ----------
    table : DataFrame
        The study's table.
    runs : RunFiles, optional
        To find simulated runs' truth files and the ROI of each row.
    params : StudyParams, optional
    ranging_ids : dict, optional
        Row label -> id of its range table in the report (e.g. ``"R1"``).
    """
    peak = named_peak(table, params)
    peak_name = peak
    if peak is not None:
        from ..chemistry import parse_ion

        try:
            main = max(parse_ion(peak).peaks(), key=lambda mp: mp[1])[0]
            peak_name = f"{peak} ({main:.2f} Da)"
        except ValueError:
            pass
    cache: dict = {}
    out = []
    for _, row in table.iterrows():
        label = row_label(row)
        truth = read_truth(runs, label, cache)
        tin = truth.get("inputs") if isinstance(truth, dict) else None
        tin = tin if isinstance(tin, dict) else {}
        ins_name = row.get("instrument") if isinstance(row.get("instrument"), str) else None
        try:
            ins = _instrument(ins_name) if ins_name else None
        except KeyError:
            ins = None
        mode = _tag(row, "mode")
        if mode is None and truth is not None:
            mode = "laser (simulated: no voltage pulse)"
        rate = number(_tag(row, "detection_rate_pct"))
        mh = tin.get("multihit")
        mh_rate = number(mh.get("detection_rate")) if isinstance(mh, dict) else None
        if rate is None and mh_rate is not None:
            rate = 100.0 * mh_rate
        mrp = None
        if peak is not None:
            a, b = number(row.get(f"mrp_fwhm_{peak}")), number(row.get(f"mrp_fw10_{peak}"))
            if a is not None or b is not None:
                mrp = (f"{peak_name}: {'n/a' if a is None else f'{a:.0f}'} / "
                       f"{'n/a' if b is None else f'{b:.0f}'}")
        bg = number(row.get("background_ppm_ns"))
        bge = number(row.get("background_ppm_ns_err"))
        spec = runs.specs.get(label) if runs is not None else None
        roi = spec.roi if spec is not None else getattr(params, "roi", None)
        seg = row.get("segment_name")
        ions = [number(row.get(c)) for c in ("ions", "ions_roi", "ions_ranged_roi")]
        out.append({
            "row": label + (f" ({seg})" if isinstance(seg, str) and seg else ""),
            "status": str(row.get("status") or ""),
            "material (expected)": row.get("material") if isinstance(row.get("material"), str)
            else None,
            "coating": row.get("coating") if isinstance(row.get("coating"), str) else None,
            "particle": row.get("particle") if isinstance(row.get("particle"), str) else None,
            "instrument": ins.name if ins else ins_name,
            "flight path (mm)": (f"{ins.flight_path_mm:g}" + (" (reflectron)" if ins.reflectron
                                                              else "")) if ins else None,
            "detection efficiency": f"{ins.efficiency:g}" if ins else None,
            "mode": mode,
            "base temperature (K)": _fmt(_tag(row, "temperature_K"), "g"),
            "pulse frequency (kHz)": _fmt(_tag(row, "pulse_frequency_kHz"), "g"),
            "laser energy (pJ)": _fmt(row.get("laser_pj"), "g"),
            "detection rate (%)": _fmt(rate, ".3g"),
            "ions (segment / ROI / ranged in ROI)": " / ".join(
                "n/a" if v is None else f"{int(v):,}" for v in ions),
            "reconstruction": _reconstruction(truth, row),
            "MRP at FWHM / FW10%M": mrp,
            "background (ppm/ns)": None if bg is None else value_error(bg, bge),
            "ranging": (ranging_ids or {}).get(label),
            "ROI": roi_text(roi),
            "errors": "1 sigma",
        })
    return out
