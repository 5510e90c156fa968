"""Mass spectra: histograms, peaks, calibration, ranging of peaks, deconvolution, multiple hits.

One subpackage for everything computed from the mass-to-charge column (and,
for multiple hits, the multiplicity): it imports the core (``errors``,
``chemistry``, ``run``, ``rangetable``, ``ranging``) and nothing else.

=========================================  ==============================================
module                                     what it computes
=========================================  ==============================================
:mod:`~liprobe.spectrum.histogram`         histograms of the mass column, normalised
                                           overlays of two spectra
:mod:`~liprobe.spectrum.peaks`             peaks, their widths (FWHM, FW10, FW1), MRP,
                                           thermal tails, the background
:mod:`~liprobe.spectrum.calibration`       a calibration check on known peaks, peak drift
:mod:`~liprobe.spectrum.autorange`         automatic ranging by whole isotope patterns
:mod:`~liprobe.spectrum.deconvolve`        ion counts of overlapping windows
:mod:`~liprobe.spectrum.multihit`          multiplicity statistics, Saxey correlation
=========================================  ==============================================

Every public name of these modules is also importable from here
(``from liprobe.spectrum import mass_histogram, analyse_peaks``).
"""

from ._shared import sorted_masses
from .autorange import ION_COLORS, Autorange, autorange
from .calibration import (
    CalibrationFit,
    PeakDrift,
    apply_calibration,
    calibration_check,
    calibration_from_pairs,
    peak_drift,
    peak_position,
)
from .deconvolve import (
    Deconvolution,
    PeakShape,
    corrected_counts,
    deconvolve,
    deconvolve_table,
    pattern_matrix,
    shape_from_peaks,
)
from .histogram import (
    MassHistogram,
    SpectrumComparison,
    compare_spectra,
    mass_histogram,
    normalization_factor,
)
from .multihit import (
    CorrelationHistogram,
    MultiplicityStats,
    correlation_histogram,
    correlation_histogram_run,
    dissociation_track,
    event_sizes,
    hit_mask,
    hit_mask_run,
    ion_pairs,
    multiplicity_stats,
    require_multiplicity,
)
from .peaks import (
    LEVELS,
    Background,
    Peak,
    PeakAnalysis,
    TimeScale,
    analyse_peaks,
    detect_peaks,
    fit_background,
    measure_peak,
    time_scale,
)

__all__ = [
    "Autorange", "Background", "CalibrationFit", "CorrelationHistogram", "Deconvolution",
    "ION_COLORS", "LEVELS", "MassHistogram", "MultiplicityStats", "Peak", "PeakAnalysis",
    "PeakDrift", "PeakShape", "SpectrumComparison", "TimeScale", "analyse_peaks",
    "apply_calibration", "autorange", "calibration_check", "calibration_from_pairs",
    "compare_spectra", "corrected_counts", "correlation_histogram",
    "correlation_histogram_run", "deconvolve",
    "deconvolve_table", "detect_peaks", "dissociation_track", "event_sizes", "fit_background",
    "hit_mask", "hit_mask_run", "ion_pairs", "mass_histogram", "measure_peak", "multiplicity_stats",
    "normalization_factor", "pattern_matrix", "peak_drift", "peak_position",
    "require_multiplicity", "shape_from_peaks", "sorted_masses", "time_scale",
]
