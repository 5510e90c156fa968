"""File helpers shared by the format modules: opening, memory maps, atomic writes, strict JSON."""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile

import numpy as np

from ..errors import FormatError

__all__ = ["check_readable", "memmap_records", "atomic_write", "atomic_path",
           "atomic_write_text", "read_text_lines", "to_jsonable", "write_json"]


def check_readable(path) -> int:
    """Size in bytes of an existing regular file; FormatError if missing or empty."""
    p = os.fspath(path)
    if not os.path.exists(p):
        raise FormatError("no such file", p)
    if os.path.isdir(p):
        raise FormatError("is a directory, not a file", p)
    try:
        size = os.path.getsize(p)
        with open(p, "rb"):
            pass
    except OSError as e:
        raise FormatError(f"cannot be read ({e.strerror})", p) from None
    if size == 0:
        raise FormatError("file is empty", p)
    return size


def memmap_records(path, dtype: np.dtype, offset: int = 0, count: int | None = None):
    """A read-only memory map of ``count`` records of ``dtype`` from ``offset``."""
    shape = None if count is None else (count,)
    if count == 0:
        return np.zeros(0, dtype=dtype)
    return np.memmap(os.fspath(path), dtype=dtype, mode="r", offset=offset, shape=shape)


def _output_folder(p: str) -> str:
    """The folder a file ``p`` is written in; FormatError, naming ``p``, if the folder does
    not exist or ``p`` is itself a folder (checked before anything is written)."""
    d = os.path.dirname(os.path.abspath(p))
    if not os.path.isdir(d):
        raise FormatError("folder does not exist", d)
    if os.path.isdir(p):
        raise FormatError("is a folder: cannot write a file there (give a file name)", p)
    return d


@contextlib.contextmanager
def atomic_write(path, mode: str = "wb", **kwargs):
    """Open a temporary file beside ``path``; rename it onto ``path`` on success.

    A reader never sees a half-written file, and a failure leaves ``path``
    as it was.
    """
    p = os.fspath(path)
    d = _output_folder(p)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(p) + ".", suffix=".tmp", dir=d)
    try:
        with os.fdopen(fd, mode, **kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, p)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_path(path):
    """A temporary path beside ``path``, renamed onto it on success (for libraries
    that open files by name, such as h5py); as :func:`atomic_write`."""
    p = os.fspath(path)
    d = _output_folder(p)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(p) + ".", suffix=".tmp", dir=d)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, 0o644)
        os.replace(tmp, p)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write_text(path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically (:func:`atomic_write`), mode 0644."""
    with atomic_write(path, "w", encoding="utf-8") as f:
        f.write(text)


def to_jsonable(obj):
    """``obj`` in plain JSON types: numpy scalars and arrays to Python numbers and lists,
    tuples to lists, dict keys to strings, bytes decoded as Latin-1, and NaN or
    infinite floats to None (a quantity that cannot be computed is ``null``)."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return to_jsonable(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, bytes):
        return obj.decode("latin-1")
    return obj


def write_json(path, obj, indent: int = 1) -> None:
    """Write ``obj`` as strict JSON (:func:`to_jsonable`, no NaN) to ``path``, atomically."""
    atomic_write_text(path, json.dumps(to_jsonable(obj), indent=indent, allow_nan=False) + "\n")


def read_text_lines(path) -> list[str]:
    """Lines of a text file, any line ending, without the ending.

    Decoded as UTF-8, falling back to Latin-1 (files from Windows tools).
    A file containing NUL bytes is not text: FormatError.
    """
    p = os.fspath(path)
    check_readable(p)
    with open(p, "rb") as f:
        data = f.read()
    if b"\x00" in data[:65536]:
        raise FormatError("is a binary file, not a text range file", p)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    return text.splitlines()
