"""liprobe: atom probe tomography of battery materials.

A flat public API for notebooks::

    import liprobe
    run = liprobe.read("run.epos")          # memory-mapped Run of named columns
    ranges = liprobe.read_ranges("run.rrng")  # RangeTable of Ions
"""

from .chemistry import Ion, parse_ion, parse_species
from .errors import AnalysisError, ColumnError, FormatError, LiprobeError, RangeError
from .io import detect_format, read, read_ranges, write, write_ranges
from .io.pos import write_epos, write_pos
from .rangetable import Range, RangeTable
from .run import Run

__version__ = "0.1.0"

__all__ = [
    "AnalysisError", "ColumnError", "FormatError", "Ion", "LiprobeError", "Range",
    "RangeError", "RangeTable", "Run", "detect_format", "parse_ion", "parse_species",
    "read", "read_ranges", "write", "write_epos", "write_pos", "write_ranges",
]
