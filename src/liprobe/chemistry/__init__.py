"""Chemistry: elements and isotopes (periodictable), ions in liprobe's grammar."""

from .elements import (
    ELECTRON_MASS_DA,
    LI_OVERRIDE,
    is_element,
    isotope_note,
    isotope_warnings,
    isotopes,
)
from .expressions import RatioExpression, parse_ratio
from .ions import (
    CHARGE_LIMIT,
    CHARGE_TOLERANCE_DA,
    MAX_CHARGE,
    MAX_ION_ATOMS,
    Ion,
    format_formula,
    infer_charge,
    isotope_pattern,
    parse_formula,
    parse_ion,
    parse_species,
)

__all__ = ["CHARGE_LIMIT", "CHARGE_TOLERANCE_DA", "ELECTRON_MASS_DA", "LI_OVERRIDE", "MAX_CHARGE",
           "MAX_ION_ATOMS", "Ion", "format_formula", "infer_charge", "is_element",
           "isotope_note", "isotope_pattern", "isotope_warnings", "isotopes",
           "RatioExpression", "parse_ratio",
           "parse_formula", "parse_ion", "parse_species"]
