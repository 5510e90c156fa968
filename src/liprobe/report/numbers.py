"""Values printed with their errors: rounded to the error's two significant digits.

:func:`value_error` is how the report prints every value that carries a 1-sigma
error (tables, captions, the scorecard). The rounding is the ``uncertainties``
package's (``format(ufloat(v, e), ".2uP")``): the error keeps two significant
digits and the value is rounded to the same decimal place::

    value_error(0.4970317, 0.0024)   # '0.4970 ± 0.0024'
    value_error(12345.6, 78)         # '12346 ± 78'
    value_error(1.5e-7, 2.3e-9)      # '(1.500 ± 0.023)×10⁻⁷'
    value_error(0.003, 0.011)        # '0.003 ± 0.011 (error larger than the value)'
    value_error(float("nan"), 0.1)   # 'n/a'
    value_error(0.4970317)           # '0.497' (no error: four significant digits at most)

A value whose estimator can be negative (an excess variance such as
``detector_heterogeneity``) is printed with a note when it is below zero
(:func:`heterogeneity_note`), never bare.
"""

from __future__ import annotations

import math

from .groups import number

__all__ = ["value_error", "plain", "NEGATIVE_ESTIMATORS", "heterogeneity_note",
           "LARGER_THAN_VALUE", "is_negative_estimator"]

#: What follows a value whose error is at least as large as its magnitude.
LARGER_THAN_VALUE = "(error larger than the value)"

#: Columns whose estimator can be negative: an excess variance (the observed variance
#: less the variance that counting noise alone gives) is below zero when the data are
#: more even than random labels would make them.
NEGATIVE_ESTIMATORS = ("detector_heterogeneity", "li_map_heterogeneity")


def plain(v, digits: int = 4) -> str:
    """A value without an error: at most ``digits`` significant digits (trailing zeros
    dropped: its precision is not known), in fixed point between 1e-3 and 1e6 (the
    integer part whole; an integral value below 1e15 as an integer), else in exponent
    form; "n/a" for None or NaN."""
    x = number(v)
    if x is None:
        return "n/a"
    if x == int(x) and abs(x) < 1e15:
        return str(int(x))
    text = f"{x:.{digits}g}"
    if "e" in text and 1e-3 <= abs(x) < 1e6:
        decimals = max(digits - 1 - math.floor(math.log10(abs(x))), 0)
        text = f"{x:.{decimals}f}"
    return text


def is_negative_estimator(column: str | None) -> bool:
    """Whether ``column`` holds an estimator that can be negative (:data:`NEGATIVE_ESTIMATORS`)."""
    return bool(column) and any(str(column).startswith(c) for c in NEGATIVE_ESTIMATORS)


def heterogeneity_note(value) -> str | None:
    """The note printed beside a negative excess-variance estimate (None if it is not
    negative): the estimator subtracts the counting noise's variance, so a map more even
    than random labels gives a value below zero, read as no heterogeneity."""
    x = number(value)
    if x is None or x >= 0:
        return None
    return "(negative: an excess variance below counting noise, read as no heterogeneity)"


def value_error(v, e=None, unit: str = "", missing: str = "n/a", column: str | None = None
                ) -> str:
    """``v`` with its 1-sigma error ``e``, rounded to the error's two significant digits.

    Parameters
    ----------
    v : float or None
        The value; None, NaN or text give ``missing``.
    e : float or None
        Its 1-sigma error; None, NaN, zero or a negative number: the value alone, with
        at most four significant digits (:func:`plain`).
    unit : str
        Appended after a space (``"0.4970 ± 0.0024 V/nm"``).
    missing : str
        What a missing value prints as (a reason, say); default "n/a".
    column : str, optional
        The table column the value comes from: a negative value of an estimator that can
        be negative (:data:`NEGATIVE_ESTIMATORS`) is followed by
        :func:`heterogeneity_note`.

    Returns
    -------
    str
        ``"0.4970 ± 0.0024"``; ``"(1.500 ± 0.023)×10⁻⁷"`` where ``uncertainties``
        chooses an exponent; ``"0.003 ± 0.011 (error larger than the value)"`` when
        ``|v| <= e``.
    """
    from uncertainties import ufloat

    x = number(v)
    if x is None:
        return missing
    err = number(e)
    tail = f" {unit}" if unit else ""
    if err is None and e is not None and isinstance(e, (int, float)) and math.isinf(e):
        text = plain(x) + tail + " (error not finite)"
    elif err is None or err <= 0:
        text = plain(x) + tail
    elif err < 1e-9 * abs(x):           # rounding to the error would print 10+ digits
        text = plain(x, digits=10) + tail + " (error below 1e-9 of the value)"
    else:
        s = format(ufloat(x, err), ".2uP").replace("±", " ± ")
        text = s + tail
        if abs(x) <= err:
            text += " " + LARGER_THAN_VALUE
    if is_negative_estimator(column):
        note = heterogeneity_note(x)
        if note:
            text += " " + note
    return text
