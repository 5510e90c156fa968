"""Readers and writers of APT files, one module per format.

``read(path)`` and ``read_ranges(path)`` recognise the format from the
content; the extension is only a hint (files are renamed, and upper-case
``.RRNG``/``.RNG`` are common).
"""

from __future__ import annotations

import os
import re
import warnings

import numpy as np

from ..errors import FormatError
from ..rangetable import RangeTable
from ..run import Run
from ._files import check_readable

__all__ = ["read", "read_ranges", "write", "write_ranges", "detect_format",
           "ION_FORMATS", "RANGE_FORMATS"]

ION_FORMATS = ("pos", "epos", "apt", "nxs")
RANGE_FORMATS = ("rrng", "rng")
#: The HDF5 signature at the start of a NeXus file.
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def _plausible_records(path, size: int, dtype: np.dtype) -> bool:
    """Whether the first records of a file look like ``dtype`` records."""
    from .pos import EPOS_DTYPE

    n = min(size // dtype.itemsize, 4096)
    if n == 0 or size % dtype.itemsize:
        return False
    a = np.fromfile(path, dtype=dtype, count=n)
    with np.errstate(all="ignore"):
        for name in ("x", "y", "z", "mass"):
            v = a[name].astype(np.float64)
            if not np.isfinite(v).all() or (np.abs(v) > 1e6).any():
                return False
        if not ((a["mass"] >= 0) & (a["mass"] < 1e4)).all():
            return False
        if dtype is EPOS_DTYPE:
            mult = a["multiplicity"].astype(np.int64)
            pd = a["pulse_delta"].astype(np.int64)
            if not (((mult >= 0) & (mult < 4096)).all() and (pd >= 0).all()):
                return False
    return True


def _looks_like_text(head: bytes) -> bool:
    if not head or b"\x00" in head:
        return False
    printable = sum(32 <= b < 127 or b in (9, 10, 13) for b in head)
    return printable / len(head) > 0.95


#: How far into a text file :func:`detect_format` looks for an ``.rrng`` section
#: (a range file may open with pages of comments).
_SECTION_SCAN_BYTES = 16 << 20
_RRNG_SECTION = re.compile(rb"^[ \t]*\[[ \t]*(?:ions|ranges)[ \t]*\]", re.IGNORECASE | re.MULTILINE)


def _first_nul(path) -> int:
    """The offset of the first NUL byte in the file's first 16 MB, or -1."""
    with open(path, "rb") as f:
        return f.read(_SECTION_SCAN_BYTES).find(b"\x00")


def _rrng_section_further(path) -> bool:
    """Whether a text file holds an ``[Ions]`` or ``[Ranges]`` line in its first 16 MB."""
    with open(path, "rb") as f:
        data = f.read(_SECTION_SCAN_BYTES)
    return b"\x00" not in data and _RRNG_SECTION.search(data) is not None


def _looks_utf16(head: bytes) -> bool:
    """Whether ``head`` reads as UTF-16 text without its byte-order mark: every other
    byte NUL, the rest printable ASCII."""
    for odd in (0, 1):
        zeros, text = head[odd::2], head[1 - odd::2]
        if len(zeros) > 8 and zeros.count(0) >= 0.9 * len(zeros) and all(
                32 <= b < 127 or b in (9, 10, 13) for b in text):
            return True
    return False


def detect_format(path) -> str:
    """The format of a file from its content: one of ION_FORMATS or RANGE_FORMATS.

    ``.apt`` by its ``APT\\0`` signature; ``.nxs`` (NeXus NXapm) by the HDF5
    signature; ``.rrng`` by its ``[Ions]``/``[Ranges]``
    sections; ``.rng`` by a first line of two integers; ``.pos`` and ``.epos``
    by record size and plausible values (finite positions, masses between 0
    and 10^4 Da, ``.epos`` multiplicities between 0 and 4096). The extension
    decides only between formats that the content allows equally.

    Raises
    ------
    FormatError
        For a missing or empty file, or one that is none of these formats.
    """
    p = os.fspath(path)
    size = check_readable(p)
    with open(p, "rb") as f:
        head = f.read(4096)
    ext = os.path.splitext(p)[1].lower().lstrip(".")
    if head.startswith(b"APT\x00"):
        return "apt"
    if head.startswith(_HDF5_SIGNATURE):
        return "nxs"    # read_nexus says so if it is HDF5 but not NXapm
    if b"\x00" not in head:
        text = head.decode("latin-1").lstrip("\ufeff\xef\xbb\xbf")
        low = text.lower()
        if "[ions]" in low or "[ranges]" in low or (
                size > len(head) and _looks_like_text(head) and _rrng_section_further(p)):
            return "rrng"
        first = next((ln.split() for ln in text.splitlines() if ln.strip()), [])
        if len(first) == 2 and all(t.isdigit() for t in first):
            return "rng"
        if "environment file" in low:
            raise FormatError("is a GPM .env environment file, which liprobe does not read "
                              "(convert it to .rrng)", p)
    from .pos import EPOS_DTYPE, POS_DTYPE, whole_records

    if ext in ("pos", "epos") and _looks_like_text(head):
        raise FormatError(f"is a text file, not a binary .{ext} file", p, "byte 0")
    ok = [fmt for fmt, dt in (("pos", POS_DTYPE), ("epos", EPOS_DTYPE))
          if _plausible_records(p, size, dt)]
    if ext in ("pos", "epos"):
        other = "epos" if ext == "pos" else "pos"
        if ext not in ok and other in ok:
            return other  # the extension lies
        whole_records(p, size, (POS_DTYPE if ext == "pos" else EPOS_DTYPE).itemsize, ext)
        return ext  # values are checked when read (non-finite masses raise then)
    if ok:
        # no usable extension: a file that is plausible as both is a .pos unless
        # its .epos multiplicity/pulse fields are plausible too; prefer .epos then
        return "epos" if "epos" in ok else "pos"
    if ext == "apt":
        raise FormatError("not an AP Suite .apt file: it does not start with the 'APT\\0' "
                          "signature", p, "byte 0")
    if ext in RANGE_FORMATS:
        if head[:2] in (b"\xff\xfe", b"\xfe\xff") or (b"\x00" in head and _looks_utf16(head)):
            raise FormatError(f"not a .{ext} range file as liprobe reads them: it is saved "
                              "as UTF-16; save it as UTF-8 or ASCII", p, "byte 0")
        at = _first_nul(p) if _looks_like_text(head) or b"\x00" in head else -1
        if at >= 0:
            raise FormatError(f"not a .{ext} range file: it holds a NUL byte (at byte "
                              f"{at:,}), so it is not text", p)
        raise FormatError(f"not a .{ext} range file: no [Ions]/[Ranges] sections nor an "
                          "'ions ranges' count line", p, "line 1")
    raise FormatError("unrecognised format: not .pos, .epos, .apt, .rrng or .rng", p)


def read(path, format: str | None = None) -> Run:
    """Read an ion file (``.pos``, ``.epos``, ``.apt``, NeXus ``.nxs``) as a :class:`~liprobe.Run`.

    The file is memory-mapped; columns are read when asked for.

    Parameters
    ----------
    path : str or path-like
    format : {"pos", "epos", "apt", "nxs"}, optional
        Skip detection and read as this format.

    Returns
    -------
    Run

    Raises
    ------
    FormatError
        A missing, empty, truncated or unrecognised file, or a range file.

    Examples
    --------
    >>> import os, tempfile
    >>> import liprobe
    >>> tmp = tempfile.TemporaryDirectory()
    >>> path = os.path.join(tmp.name, "tiny.pos")
    >>> liprobe.write(path, liprobe.Run.from_arrays(
    ...     x=[0.0, 1.0, 2.0], y=[0.0, 0.0, 0.5], z=[-1.0, -2.0, -3.0], mass=[7.0, 16.0, 32.0]))
    >>> os.path.getsize(path)             # 3 ions of 16 bytes
    48
    >>> run = liprobe.read(path)
    >>> run.format, run.n_ions, run.columns
    ('pos', 3, ('x', 'y', 'z', 'mass'))
    >>> run["mass"]
    array([ 7., 16., 32.], dtype=float32)
    >>> os.rename(path, os.path.join(tmp.name, "tiny.dat"))
    >>> liprobe.read(os.path.join(tmp.name, "tiny.dat")).format   # told by the content
    'pos'
    >>> tmp.cleanup()
    """
    fmt = format or detect_format(path)
    if fmt == "pos":
        from .pos import read_pos
        return read_pos(path)
    if fmt == "epos":
        from .pos import read_epos
        return read_epos(path)
    if fmt == "apt":
        from .apt import read_apt
        return read_apt(path)
    if fmt == "nxs":
        from .nexus import read_nexus
        return read_nexus(path)
    if fmt in RANGE_FORMATS:
        raise FormatError(f"is a .{fmt} range file, not an ion file (.pos, .epos, .apt, .nxs)",
                          path)
    raise FormatError(f"unknown ion file format '{fmt}'", path)


def read_ranges(path, format: str | None = None) -> RangeTable:
    """Read a range file (``.rrng``, ``.rng``) as a :class:`~liprobe.RangeTable`.

    A NeXus NXapm file (``.nxs``) gives the ranging definitions it holds.

    Parameters
    ----------
    path : str or path-like
    format : {"rrng", "rng", "nxs"}, optional
        Skip detection and read as this format.

    Returns
    -------
    RangeTable

    Raises
    ------
    FormatError
        A missing, empty or unrecognised file, or an ion file.
    RangeError
        Overlapping windows of different ions, or a bad window.

    Examples
    --------
    >>> import os, tempfile
    >>> import liprobe
    >>> tmp = tempfile.TemporaryDirectory()
    >>> path = os.path.join(tmp.name, "tiny.rrng")
    >>> with open(path, "w") as f:
    ...     _ = f.write('''[Ions]
    ... Number=2
    ... Ion1=Li
    ... Ion2=O
    ... [Ranges]
    ... Number=3
    ... Range1=6.90 7.20 Vol:0.01 Li:1 Color:FF0000
    ... Range2=15.90 16.20 Vol:0.01 O:1 Color:0000FF
    ... Range3=31.80 32.20 Vol:0.02 O:2 Color:00FFFF
    ... ''')
    >>> table = liprobe.read_ranges(path)
    >>> [ion.name for ion in table.ions]      # charges inferred from the windows
    ['Li+', 'O+', 'O2+']
    >>> table.elements
    ('Li', 'O')
    >>> r = table.ranges[2]
    >>> r.lo, r.hi, r.volume, r.color
    (31.8, 32.2, 0.02, '#00FFFF')
    >>> tmp.cleanup()
    """
    fmt = format or detect_format(path)
    if fmt == "rrng":
        from .rrng import read_rrng
        return read_rrng(path)
    if fmt == "rng":
        from .rng import read_rng
        return read_rng(path)
    if fmt == "nxs":
        from .nexus import read_nexus_ranges
        return read_nexus_ranges(path)
    if fmt in ION_FORMATS:
        raise FormatError(f"is a .{fmt} ion file, not a range file (.rrng, .rng, "
                          "or a NeXus .nxs with ranging definitions)", path)
    raise FormatError(f"unknown range file format '{fmt}'", path)


def _format_from_extension(path, allowed) -> str:
    ext = os.path.splitext(os.fspath(path))[1].lower().lstrip(".")
    if ext not in allowed:
        raise FormatError(f"cannot tell the format to write from the extension '.{ext}' "
                          f"(use one of: {', '.join('.' + a for a in allowed)})", path)
    return ext


def write(path, run: Run, format: str | None = None):
    """Write a run as ``.pos``, ``.epos``, ``.apt`` or ``.nxs`` (by ``format`` or the extension).

    The records go to a temporary file in the same folder, renamed to ``path``
    once complete: a failed write leaves nothing behind. Columns are written
    a chunk at a time (memory stays bounded).

    Parameters
    ----------
    path : str or path-like
    run : Run
        ``.pos`` needs ``x y z mass``; ``.epos`` all eleven columns; ``.apt``
        (AP Suite 6) writes each column under its AP Suite section name
        (:func:`liprobe.io.apt.write_apt`); ``.nxs`` is NeXus NXapm without
        ranges (:func:`liprobe.io.nexus.write_nexus` adds them).
    format : {"pos", "epos", "apt", "nxs"}, optional
        Default: from the extension of ``path``.

    Returns
    -------
    NexusExport or None
        For ``.nxs``, the export's report
        (:class:`liprobe.io.nexus.NexusExport`); the fields NXapm requires
        that nothing gave are also named in a ``UserWarning``. None for the
        other formats.

    Raises
    ------
    FormatError
        No format from the extension, or a column the format needs is missing.

    Examples
    --------
    >>> import os, tempfile
    >>> import liprobe
    >>> tmp = tempfile.TemporaryDirectory()
    >>> run = liprobe.Run.from_arrays(x=[0.5, 1.5], y=[0.0, 0.0], z=[-1.0, -1.1],
    ...                               mass=[7.02, 16.0])
    >>> liprobe.write(os.path.join(tmp.name, "copy.pos"), run)
    >>> os.path.getsize(os.path.join(tmp.name, "copy.pos"))     # 2 ions x 16 bytes
    32
    >>> liprobe.read(os.path.join(tmp.name, "copy.pos"))["x"]
    array([0.5, 1.5], dtype=float32)
    >>> liprobe.write(os.path.join(tmp.name, "copy.epos"), run)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    liprobe.errors.FormatError: ...copy.epos: cannot write .epos: the run has no column 'tof', ...
    >>> sorted(os.listdir(tmp.name))     # nothing half-written was left behind
    ['copy.pos']
    >>> liprobe.write(os.path.join(tmp.name, "copy.apt"), run)   # AP Suite sections
    >>> [s["name"] for s in liprobe.read(os.path.join(tmp.name, "copy.apt")).meta["sections"]]
    ['Position', 'Mass']
    >>> tmp.cleanup()
    """
    fmt = format or _format_from_extension(path, ("pos", "epos", "apt", "nxs"))
    from .pos import write_epos, write_pos

    if fmt == "pos":
        write_pos(path, run)
    elif fmt == "epos":
        write_epos(path, run)
    elif fmt == "apt":
        from .apt import write_apt
        write_apt(path, run)
    elif fmt == "nxs":
        from .nexus import write_nexus
        report = write_nexus(path, run)
        if report.missing:
            warnings.warn(
                f"{os.fspath(path)}: {len(report.missing)} field(s) NXapm requires are not in "
                "the file, as nothing gives them: "
                + "; ".join(m.path.rsplit("/", 1)[-1] for m in report.missing)
                + " (the returned report has the reasons; liprobe.io.nexus.write_nexus takes "
                  "ranges and metadata)", UserWarning, stacklevel=2)
        return report
    else:
        raise FormatError(f"liprobe writes .pos, .epos, .apt and .nxs ion files, not .{fmt}",
                          path)


def write_ranges(path, table: RangeTable, format: str | None = None) -> None:
    """Write a range table as ``.rrng`` or ``.rng`` (by ``format`` or the extension), atomically.

    ``.rrng`` keeps everything (:func:`liprobe.io.rrng.write_rrng`); ``.rng``
    has no volumes nor charges (:func:`liprobe.io.rng.write_rng`).
    """
    fmt = format or _format_from_extension(path, ("rrng", "rng"))
    if fmt == "rrng":
        from .rrng import write_rrng
        write_rrng(path, table)
    elif fmt == "rng":
        from .rng import write_rng
        write_rng(path, table)
    else:
        raise FormatError(f"liprobe writes .rrng and .rng range files, not .{fmt}", path)
