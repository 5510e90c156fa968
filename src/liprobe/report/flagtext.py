"""The sentences and the tests behind each flag of a study's row, for the report's flags
table and the results table's hover text (shared by :mod:`liprobe.report.build` and
:mod:`liprobe.report.table_html`)."""

from __future__ import annotations

from .groups import flag_set, number

__all__ = ["flag_tests", "flag_sentences"]


def _fmt3(v) -> str:
    return "n/a" if v is None else f"{v:.3g}"


def flag_tests(row) -> list[dict]:
    """Per flag of a table row, its test furthest past the threshold.

    Each item: ``flag``, ``test`` (None for a flag without test columns),
    ``metric`` (the column tested), ``value`` (the row's metric) and ``error`` (its
    1-sigma error, None if the table has none), ``reference``, ``score`` (a z, or a departure
    from a nominal ratio), ``threshold``, ``more`` (other tests that fired) and
    ``sentence`` (one short sentence; for flags without test columns, their
    first reason from ``flag_reasons``).
    """
    out = []
    reasons = {}
    for part in str(row.get("flag_reasons") or "").split(" | "):
        name, _, text = part.partition(": ")
        if name:
            reasons[name] = text.split("; ")[0].rstrip(".")
    for flag in sorted(flag_set(row.get("flags"))):
        best, fired = None, 0
        prefix = f"flag_{flag}_"
        for col in row.keys():
            if not (isinstance(col, str) and col.startswith(prefix) and col.endswith("_score")):
                continue
            test = col[len(prefix):-len("_score")]
            score = number(row.get(col))
            thr = number(row.get(f"{prefix}{test}_threshold"))
            if score is None or thr is None or not thr > 0 or not abs(score) > thr:
                continue
            fired += 1
            if best is None or abs(score) / thr > best[0]:
                best = (abs(score) / thr, test, score, thr,
                        number(row.get(f"{prefix}{test}_reference")))
        if best is None:
            out.append({"flag": flag, "test": None, "metric": None, "value": None,
                        "error": None, "reference": None,
                        "score": None, "threshold": None, "more": 0,
                        "sentence": f"{flag}: {reasons.get(flag, 'no reason recorded')}."})
            continue
        _, test, score, thr, ref = best
        nominal = test.endswith("_nominal")
        metric = test.rsplit("_", 1)[0] if nominal or test.endswith("_batch") else test
        against = "its nominal" if nominal else "the reference runs'"
        what = "departs by" if nominal else "z"
        more = f" (and {fired - 1} more test{'s' if fired > 2 else ''})" if fired > 1 else ""
        value = number(row.get(metric))
        out.append({"flag": flag, "test": test, "metric": metric, "value": value,
                    "error": number(row.get(f"{metric}_err")), "reference": ref,
                    "score": score, "threshold": thr, "more": fired - 1,
                    "sentence": f"{flag}: {metric} {_fmt3(value)} against {against} "
                                f"{_fmt3(ref)}, {what} {_fmt3(score)} past {_fmt3(thr)}{more}."})
    return out


def flag_sentences(row) -> list[str]:
    """One short sentence per flag of a table row (:func:`flag_tests`): for
    ``delithiated`` and ``off_stoichiometric`` the test whose ``|score| / threshold`` is
    largest among those that fired (its value, reference, score and threshold, from the
    row's ``flag_<flag>_<test>_*`` columns, and how many other tests fired), for the other
    flags their first reason."""
    return [t["sentence"] for t in flag_tests(row)]
