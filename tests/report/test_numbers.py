"""Values printed with their errors: rounded to two significant digits of the error."""

from __future__ import annotations

import math
import warnings

import pytest

from liprobe.report.numbers import LARGER_THAN_VALUE, plain, value_error


@pytest.mark.parametrize("v, e, expected", [
    (0.4970317, 0.0024, "0.4970 ± 0.0024"),      # the example
    (12345.6, 78, "12346 ± 78"),                 # error 78: units place
    (12345.6, 780, "(1.235 ± 0.078)×10⁴"),      # error 780: one exponent for both
    (13.643097, 0.0771, "13.643 ± 0.077"),
    (0.8471415, 0.000468, "0.84714 ± 0.00047"),
    (-2.5, 0.13, "-2.50 ± 0.13"),
    (1.5e-7, 2.3e-9, "(1.500 ± 0.023)×10⁻⁷"),    # an exponent, once for both
    (0.015, 0.0049, "0.0150 ± 0.0049"),
])
def test_value_is_rounded_to_two_significant_digits_of_its_error(v, e, expected):
    assert value_error(v, e) == expected


def test_an_error_larger_than_the_value_says_so():
    assert value_error(0.003, 0.011) == f"0.003 ± 0.011 {LARGER_THAN_VALUE}"
    assert value_error(-0.003, 0.011).endswith(LARGER_THAN_VALUE)
    assert value_error(0.0, 0.2) == f"0.00 ± 0.20 {LARGER_THAN_VALUE}"
    assert LARGER_THAN_VALUE not in value_error(0.02, 0.011)


def test_missing_values_and_errors():
    assert value_error(None, 0.1) == "n/a"
    assert value_error(float("nan"), 0.1) == "n/a"
    assert value_error(math.inf, 0.1) == "n/a"
    assert value_error(None, None, missing="no Li ions") == "no Li ions"
    # no error (None, NaN, 0): the value with at most four significant digits
    assert value_error(0.4970317) == "0.497"
    assert value_error(0.4971317, float("nan")) == "0.4971"
    assert value_error(0.9) == "0.9"                # not "0.9000": its precision is unknown
    assert value_error(945211, 0) == "945211"
    assert value_error(0.00012346) == "0.0001235"
    assert value_error(1.2346e-7) == "1.235e-07"
    assert value_error(123456.7) == "123457"          # the integer part whole
    assert plain(3.0) == "3" and plain(1234.567) == "1235" and plain(None) == "n/a"


def test_units_follow_the_value():
    assert value_error(13.64, 0.05, unit="V/nm") == "13.640 ± 0.050 V/nm"


def test_a_negative_heterogeneity_is_explained_not_shown_bare():
    text = value_error(-0.0021, 0.0008, column="detector_heterogeneity")
    assert text.startswith("-0.00210 ± 0.00080 (negative: an excess variance")
    assert "no heterogeneity" in text
    assert "negative" in value_error(-0.2, 0.05, column="li_map_heterogeneity")
    # a positive one, or a column whose estimator cannot be negative: no note
    assert value_error(0.0159, 0.0049, column="detector_heterogeneity") == "0.0159 ± 0.0049"
    assert value_error(-2.5, 0.13, column="O2+/O+") == "-2.50 ± 0.13"


def test_no_warning_from_the_formatting():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value_error(1.0, 0.0)           # uncertainties warns on a zero std_dev: not used
        value_error(1.0, 1e-30)
        value_error(1e30, 1e28)


def test_an_infinite_or_vanishing_error_says_so_instead_of_hiding_or_flooding():
    from liprobe.report.numbers import value_error

    assert value_error(1.0, float("inf")) == "1 (error not finite)"
    assert value_error(2.5, 1e-20) == "2.5 (error below 1e-9 of the value)"
    assert value_error(0.4970317, 1e-8) == "0.49703170 ± 0.00000001" or \
        value_error(0.4970317, 1e-8).startswith("0.4970317")
