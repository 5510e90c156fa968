"""The error hierarchy of liprobe.

Every error caused by bad input is a :class:`LiprobeError`. It carries the
file, the place in it (byte offset, record, line) and the problem, and its
``str()`` is the one line the command line prints before exiting with code 1.
"""

from __future__ import annotations

import os

__all__ = [
    "LiprobeError",
    "FormatError",
    "RangeError",
    "ColumnError",
    "AnalysisError",
]


class LiprobeError(Exception):
    """Base class of all errors raised for bad input.

    Parameters
    ----------
    problem : str
        What is wrong, in a few words.
    path : str or os.PathLike, optional
        The file concerned.
    where : str, optional
        The place in the file, e.g. ``"byte 4400"``, ``"line 12"``,
        ``"record 17"``.
    """

    def __init__(self, problem: str, path: str | os.PathLike | None = None,
                 where: str | None = None):
        self.problem = problem
        self.path = None if path is None else os.fspath(path)
        self.where = where
        super().__init__(self.message)

    @property
    def message(self) -> str:
        parts = [p for p in (self.path, self.where) if p]
        parts.append(self.problem)
        return ": ".join(parts)

    def __str__(self) -> str:  # one line, always
        return " ".join(self.message.split())


class FormatError(LiprobeError):
    """A file is missing, empty, truncated, corrupted or of another format."""


class RangeError(LiprobeError):
    """A range file or range table is inconsistent (overlaps, unknown elements)."""


class ColumnError(LiprobeError, KeyError):
    """A column was asked for that the run does not carry."""

    def __str__(self) -> str:  # KeyError would quote the message
        return LiprobeError.__str__(self)


class AnalysisError(LiprobeError):
    """An analysis cannot be done on the data given (empty ROI, no ions...)."""
