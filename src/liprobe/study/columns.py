"""Units and descriptions of the study table's columns (``runs.parquet`` keeps them).

:func:`column_info` gives each column of ``runs.csv`` / ``runs.parquet`` its
unit and a one-line description, from the column's name: the table's
columns are made from patterns (``at_pct_<El>``, ``fda_mu_<species>``,
ratios, ``tag_<name>``), so the patterns are described once here.
"""

from __future__ import annotations

import re

__all__ = ["column_info", "COLUMNS"]

#: Fixed columns: name -> (unit, description).
COLUMNS: dict[str, tuple[str, str]] = {
    "run": ("", "the run's name in the manifest"),
    "segment": ("", "index of the segment in the run's segments (empty: the whole run)"),
    "segment_name": ("", "the segment's name"),
    "segment_start": ("ion", "first ion of the segment (index, evaporation order)"),
    "segment_stop": ("ion", "end of the segment (index, exclusive; empty: the end)"),
    "material": ("", "the phase the analyst expects"),
    "coating": ("", "the coating element, or none"),
    "laser_pj": ("pJ", "laser pulse energy"),
    "particle": ("", "the particle the specimen came from"),
    "instrument": ("", "the atom probe"),
    "status": ("", "ok, or failed (see error)"),
    "error": ("", "why the row failed"),
    "format": ("", "format of the ion file"),
    "ions": ("ions", "ions in the run or segment"),
    "ions_roi": ("ions", "ions in the region of interest"),
    "ions_ranged_roi": ("ions", "ranged ions in the region of interest"),
    "li_knn_excess_pct": ("%", "share of Li among the 10 nearest counted ions of each "
                               "Li-bearing ion, less that of shuffled labels (percentage points, "
                               "ROI)"),
    "peaks_present": ("", "ions with a peak above background (;-separated)"),
    "peaks_absent": ("", "ranged ions without a peak above background (;-separated)"),
    "background_ppm_ns": ("ppm/ns", "flat background of the time-of-flight spectrum"),
    "detector_heterogeneity": ("", "heterogeneity of the detector hit map (core region)"),
    "li_map_heterogeneity": ("", "excess variance of the Li fraction of the counted ions over "
                                 "the detector's core region beyond binomial noise, in units "
                                 "of f(1-f) (0: random; segment, the detector subsample)"),
    "li_rim_core_ratio": ("", "Li fraction of the counted ions beyond 0.8 of the detector "
                              "radius over that within 0.5 (1: even; above 1: enriched rim "
                              "or depleted core; segment, the detector subsample)"),
    "li_acf_max": ("", "largest |autocorrelation| of the Li indicator over lags of 50 to "
                       "10,000 ions of the FDA's sequence (ROI, evaporation order)"),
    "li_acf_lag": ("ion", "lag of li_acf_max, in ions of the FDA's sequence"),
    "coating_geometry": ("", "the coating found in the data: shell (around the run), cap (on "
                             "its top) or none"),
    "coating_thickness_nm": ("nm", "thickness of the coating normal to the specimen's surface: "
                                   "a shell's from the cap-on-cone model fitted to its inner "
                                   "surface, a cap's along the axis (segment)"),
    "coating_thickness_nm_err": ("nm", "error of coating_thickness_nm (jackknife over slabs and "
                                       "the shank angle's error; a cap's: its crossing)"),
    "coating_slabs_found": ("", "slabs (consecutive ions) in which the coating shell was found"),
    "grain_volume_nm3": ("nm^3", "volume of the grain of another phase inside the analysed "
                                 "volume (its closed isosurface, or its voxels where the edge "
                                 "of the data cuts it; the whole segment, coating left out)"),
    "grain_ion_fraction": ("", "fraction of the segment's ions inside the grain: its share "
                               "of the analysed volume at equal atomic density"),
    "grain_depth_min_nm": ("nm", "deepest z of the grain of another phase (z <= 0 into the "
                                 "specimen)"),
    "grain_depth_max_nm": ("nm", "shallowest z of the grain of another phase (z <= 0 into the "
                                 "specimen)"),
    "abrupt_end": ("", "whether the run ended abruptly (fracture)"),
    "abrupt_end_evidence": ("", "what shows the abrupt end"),
    "voltage_jumps": ("", "jumps of the standing voltage"),
    "multi_hit_fraction": ("", "fraction of ions detected in multiple hits"),
    "best_phase": ("", "the reference phase the cations match best"),
    "flags": ("", "batch-relative flags (;-separated)"),
    "flag_reasons": ("", "one sentence per flag"),
    "reasons": ("", "why each empty value is empty"),
}

#: (pattern, unit, description with {0} for the pattern's group), first match wins.
_PATTERNS: tuple[tuple[str, str, str], ...] = (
    (r"flag_(delithiated|off_stoichiometric)_(.+)_reference", "",
     "the reference value of the {0} test on {1} (a median of reference runs, or a "
     "nominal ratio)"),
    (r"flag_(delithiated|off_stoichiometric)_(.+)_score", "",
     "the {0} test's score on {1}: a robust z, or the departure from a nominal ratio"),
    (r"flag_(delithiated|off_stoichiometric)_(.+)_threshold", "",
     "the threshold |score| must pass for {0} on {1}"),
    (r"tag_(.+)", "", "manifest tag {0}"),
    (r"at_pct_(\w+)", "at.%", "atomic percent of {0} (ROI, excluded elements left out)"),
    (r"kingham_field_(\w+)_v_nm", "V/nm", "Kingham-equivalent field of the {0} coating"),
    (r"fda_mu_shuffled_(.+)", "", "frequency distribution mu of {0} with shuffled labels"),
    (r"fda_mu_(.+)", "", "frequency distribution mu of {0} (ROI)"),
    (r"fda_dispersion_(.+)", "", "variance of {0}'s count per block over the binomial's "
     "(1: random; ROI; unlike mu, its expectation does not grow with the number of blocks)"),
    (r"fda_p_value_(.+)", "", "chi-square p-value of the frequency distribution of {0}"),
    (r"detector_mu_shuffled_(.+)", "", "detector-map fraction mu of {0}, shuffled labels"),
    (r"detector_mu_(.+)", "", "mu of the {0} fraction over the detector"),
    (r"mrp_fwhm_(.+)", "", "mass resolving power m/FWHM of the {0} peak"),
    (r"mrp_fw10_(.+)", "", "mass resolving power m/FW10%M of the {0} peak"),
    (r"mrp_fw1_(.+)", "", "mass resolving power m/FW1%M of the {0} peak (its thermal tail)"),
    (r"tail_ns_(.+)", "ns", "thermal tail of the {0} peak"),
    (r"grain_(.+/.+)", "", "ratio {0} of the ions inside the grain's isosurface, with its "
                           "counting error"),
    (r"(.+/.+)", "", "ratio {0} with its counting error"),
)

_UNIT_SUFFIX = (("_nm", "nm"), ("_pj", "pJ"), ("_pJ", "pJ"), ("_K", "K"), ("_kHz", "kHz"),
                ("_pct", "%"), ("_ns", "ns"), ("_V", "V"), ("_Pa", "Pa"))


def column_info(name: str) -> tuple[str, str]:
    """``(unit, description)`` of a column of the study's table.

    An error column ``X_err`` is one standard deviation of ``X``, in its unit;
    a tag's unit comes from its name's suffix (``temperature_K``: K), as does
    that of a column not described here (its description is then empty: a new
    column group describes its columns in :data:`COLUMNS` or the patterns).

    Examples
    --------
    >>> unit, description = column_info("at_pct_Li_err")
    >>> unit
    'at.%'
    >>> print(description)
    one standard deviation of at_pct_Li: atomic percent of Li (ROI, excluded elements left out)
    >>> column_info("tag_temperature_K")
    ('K', 'manifest tag temperature_K')
    """
    if name.endswith("_err"):
        unit, what = column_info(name[:-4])
        return unit, f"one standard deviation of {name[:-4]}: {what}"
    if name in COLUMNS:
        return COLUMNS[name]
    for pattern, unit, text in _PATTERNS:
        m = re.fullmatch(pattern, name)
        if m:
            if not unit and pattern.startswith("tag_"):
                unit = next((u for suf, u in _UNIT_SUFFIX if name.endswith(suf)), "")
            return unit, text.format(*m.groups())
    if name in ("delithiated", "off_stoichiometric", "other_phase", "early_fracture"):
        return "", f"flag {name}"
    # a column not described here yet: its unit from its name's suffix
    return next((u for suf, u in _UNIT_SUFFIX if name.endswith(suf)), ""), ""
