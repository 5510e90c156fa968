"""Ratio expressions in liprobe's ion grammar.

``Li/(Li+Ni+Co+Mn)`` is a ratio of atom counts (elements, after molecular
ions are decomposed); ``O2+/O+`` and ``Mn++/Mn+`` are ratios of ion counts.
Terms may be mixed: ``(O+ + O2+)/O+``. A ``+`` right after a formula and
followed by another term is a sum, so ``Li+Ni`` is Li atoms plus Ni atoms and
``Li++Ni`` is Li+ ions plus Ni atoms; spaces make any expression
unambiguous (``Li+ + Ni``).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from .ions import Ion, parse_formula

__all__ = ["RatioExpression", "parse_ratio"]

_TOKENS = re.compile(r"\s*(?:([A-Z][A-Za-z0-9]*)(\+*)|(\+)|(/)|(\()|(\)))")


@dataclass(frozen=True)
class RatioExpression:
    """A ratio of two sums of terms; each term an element (str) or an :class:`Ion`.

    ``numerator`` and ``denominator`` map each term to how many times it is
    written (almost always 1).
    """

    text: str
    numerator: tuple[tuple[Ion | str, int], ...]
    denominator: tuple[tuple[Ion | str, int], ...]

    @property
    def terms(self) -> tuple[Ion | str, ...]:
        seen: dict[Ion | str, None] = {}
        for t, _ in self.numerator + self.denominator:
            seen.setdefault(t, None)
        return tuple(seen)


def _term(formula: str, charge: int, text: str) -> Ion | str:
    try:
        atoms = parse_formula(formula)
    except ValueError as e:
        raise ValueError(f"in ratio '{text}': {e}") from None
    if charge:
        return Ion(atoms, charge)
    if len(atoms) != 1 or atoms[0][1] != 1:
        raise ValueError(f"in ratio '{text}': '{formula}' is neither an element nor an ion "
                         f"(write ions with one '+' per charge, e.g. {formula}+)")
    return atoms[0][0]


def _parse_sum(tokens: list[tuple[str, ...]], i: int,
               text: str) -> tuple[Counter[Ion | str], int]:
    """Parse ``term (+ term)*`` or ``( ... )`` from tokens[i]; return (Counter, next index)."""
    terms: Counter[Ion | str] = Counter()
    paren = i < len(tokens) and tokens[i] == ("(",)
    if paren:
        i += 1
    expect_term = True
    while i < len(tokens):
        tok = tokens[i]
        if expect_term:
            if tok[0] != "term":
                raise ValueError(f"ratio '{text}': expected an element or ion at '{_show(tok)}'")
            _, formula, plus = tok
            nxt = tokens[i + 1] if i + 1 < len(tokens) else None
            # a trailing '+' run followed by another term: its last '+' is the sum
            if plus and nxt is not None and nxt[0] in ("term", "("):
                terms[_term(formula, len(plus) - 1, text)] += 1
                i += 1
                continue
            terms[_term(formula, len(plus), text)] += 1
            i += 1
            expect_term = False
        else:
            if tok == ("+",):
                i += 1
                expect_term = True
            else:
                break
    if expect_term:
        raise ValueError(f"ratio '{text}': a term is missing")
    if paren:
        if i >= len(tokens) or tokens[i] != (")",):
            raise ValueError(f"ratio '{text}': missing ')'")
        i += 1
    return terms, i


def _show(tok) -> str:
    return tok[1] + tok[2] if tok[0] == "term" else tok[0]


def parse_ratio(text: str) -> RatioExpression:
    """Parse ``NUM/DEN`` where each side is a term or a parenthesised sum of terms.

    Raises
    ------
    ValueError
        With the expression and what is wrong in it.
    """
    tokens: list[tuple[str, ...]] = []  # ("term", formula, pluses) or one of + / ( )
    pos = 0
    s = text.strip()
    while pos < len(s):
        m = _TOKENS.match(s, pos)
        if not m or m.end() == pos:
            raise ValueError(f"ratio '{text}': cannot read '{s[pos:]}'")
        if m.group(1):
            tokens.append(("term", m.group(1), m.group(2)))
        elif m.group(3):
            tokens.append(("+",))
        elif m.group(4):
            tokens.append(("/",))
        elif m.group(5):
            tokens.append(("(",))
        else:
            tokens.append((")",))
        pos = m.end()
        while pos < len(s) and s[pos].isspace():
            pos += 1
    # a '+' run directly followed by a term token means "charge + sum" only when
    # written without a space; with a space the run is all charge and '+' stands alone
    num, i = _parse_sum(tokens, 0, text)
    if i >= len(tokens) or tokens[i] != ("/",):
        raise ValueError(f"ratio '{text}': expected 'numerator/denominator'")
    den, i = _parse_sum(tokens, i + 1, text)
    if i != len(tokens):
        raise ValueError(f"ratio '{text}': unexpected '{_show(tokens[i])}'")
    return RatioExpression(text.strip(), tuple(num.items()), tuple(den.items()))
