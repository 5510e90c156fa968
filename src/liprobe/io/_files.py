"""File helpers shared by the format modules: opening, memory maps, atomic writes, strict JSON."""

from __future__ import annotations

import contextlib
import errno
import glob
import json
import math
import os
import re
import stat
import tempfile
import time

import numpy as np

from ..errors import FormatError

__all__ = ["check_regular", "check_readable", "writer_tag", "writer_is_gone",
           "remove_dead_writers_tmp", "format_bytes", "memmap_records",
           "scratch_array", "is_file_backed", "atomic_write", "atomic_path",
           "atomic_write_text", "read_text_lines", "to_jsonable", "write_json", "csv_safe",
           "csv_safe_frame"]


def format_bytes(n: float) -> str:
    """A size in bytes as people read it, in decimal units with three significant digits
    at most: ``format_bytes(2_500_000)`` is ``'2.5 MB'``, ``format_bytes(266e9)`` is
    ``'266 GB'``, ``format_bytes(512)`` is ``'512 bytes'``."""
    n = float(n)
    if abs(n) < 1000:
        return f"{n:.0f} bytes"
    for unit in ("kB", "MB", "GB", "TB", "PB"):
        n /= 1000.0
        if abs(n) < 999.5 or unit == "PB":
            return f"{n:.3g} {unit}" if abs(n) < 100 else f"{n:,.0f} {unit}"
    return f"{n:,.0f} PB"  # pragma: no cover - the loop returns


def check_regular(path, error=FormatError) -> int:
    """Size in bytes of ``path`` if it is a regular file (symbolic links followed).

    A FIFO, a socket, a device (``/dev/zero``) or a directory is refused with
    ``error`` ("not a regular file"), before anything opens it: reading one
    could block forever or never end. Only ``stat`` is called, never ``open``.
    """
    p = os.fspath(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise error("no such file", p) from None
    except OSError as e:
        raise error(f"cannot be read ({e.strerror or e})", p) from None
    if stat.S_ISDIR(st.st_mode):
        raise error("not a regular file: is a directory", p)
    if not stat.S_ISREG(st.st_mode):
        kind = ("a FIFO" if stat.S_ISFIFO(st.st_mode) else
                "a device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) else
                "a socket" if stat.S_ISSOCK(st.st_mode) else "a special file")
        raise error(f"not a regular file: is {kind}", p)
    return st.st_size


def open_regular(path, mode: str = "r", encoding: str | None = "utf-8"):
    """Open ``path`` for reading if it is a regular file, checked on the open descriptor
    (a FIFO is opened without blocking and refused, a device or a folder too): no race
    between a check and the open, no read that blocks or never ends. Raises OSError
    (``EINVAL``, "not a regular file") otherwise; a file object, closed by ``with``."""
    p = os.fspath(path)
    fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", p)
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, mode, encoding=None if "b" in mode else encoding)
    except BaseException:
        os.close(fd)
        raise


def check_readable(path) -> int:
    """Size in bytes of an existing, readable regular file; FormatError if missing,
    empty or not a regular file (:func:`check_regular`)."""
    p = os.fspath(path)
    size = check_regular(p)
    try:
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


def scratch_array(shape, dtype=np.float32, folder: str | None = None,
                  prefix: str = ".liprobe-scratch-") -> np.ndarray:
    """A writable array backed by a memory-mapped scratch file, unlinked at once.

    Its pages are file-backed (the kernel can write them out and drop them), not
    anonymous memory, so that an analysis of a run larger than RAM keeps its
    resident memory bounded. The file's name is removed as soon as it is
    mapped: nothing is left behind, whatever happens to the process.

    Parameters
    ----------
    shape : int or tuple of int
    dtype : numpy dtype
    folder : str, optional
        Where the scratch file goes (default: the system's temporary folder,
        ``TMPDIR``); it needs ``prod(shape) * itemsize`` bytes free.

    Raises
    ------
    OSError
        The folder is not writable or has no room (the message names it).
    """
    import weakref

    shape = (int(shape),) if np.ndim(shape) == 0 else tuple(int(s) for s in shape)
    dt = np.dtype(dtype)
    size = int(np.prod(shape, dtype=np.int64)) * dt.itemsize
    d = folder or tempfile.gettempdir()
    if size == 0:
        return np.zeros(shape, dt)
    try:
        free = os.statvfs(d).f_bavail * os.statvfs(d).f_frsize
    except OSError:
        free = None
    if free is not None and size > free:
        raise OSError(errno.ENOSPC, f"scratch of {format_bytes(size)} needs more room than "
                      f"the {format_bytes(free)} free (set TMPDIR to a larger disk)", d)
    fd, path = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=d)
    try:
        with os.fdopen(fd, "w+b") as f:
            f.truncate(size)
            if hasattr(os, "posix_fallocate"):
                try:        # reserve the blocks now: a full disk is an error here, not a
                    os.posix_fallocate(f.fileno(), 0, size)  # SIGBUS when a page is written
                except OSError as e:
                    if e.errno != errno.EOPNOTSUPP and e.errno != errno.EINVAL:
                        raise OSError(e.errno, f"cannot reserve {size / 1e6:,.0f} MB of "
                                      f"scratch: {e.strerror} (set TMPDIR to a larger disk)",
                                      d) from None
            mm = np.memmap(f, dtype=dt, mode="r+", shape=shape)
    except BaseException:
        os.unlink(path)
        raise
    try:
        os.unlink(path)                 # POSIX: the mapping outlives the name
    except OSError:                     # a system that keeps open files: remove it later
        weakref.finalize(mm, _remove_if_there, path)
    return mm.view(np.ndarray)


def _remove_if_there(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def is_file_backed(a) -> bool:
    """Whether the array ``a`` (or what it views) is a memory map of a file."""
    import mmap

    while a is not None:
        if isinstance(a, (np.memmap, mmap.mmap)):
            return True
        a = getattr(a, "base", None)
    return False


def _output_folder(p: str) -> str:
    """The folder a file ``p`` is written in; FormatError, naming ``p``, if the folder does
    not exist or ``p`` is itself a folder (checked before anything is written)."""
    d = os.path.dirname(os.path.abspath(p))
    if not os.path.isdir(d):
        raise FormatError("folder does not exist", d)
    if os.path.isdir(p):
        raise FormatError("is a folder: cannot write a file there (give a file name)", p)
    return d


#: Temporary files of :func:`atomic_write` older than this whose writer cannot be
#: identified are removed at the next atomic write of the same name (seconds).
STALE_TMP_AGE_S = 3600.0


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:       # EPERM: it exists, owned by someone else
        return True
    return True


def _host_id() -> str:
    """A hash of what makes a PID mean one process: the host name, the boot (Linux's
    boot_id) and the PID namespace (containers sharing a host name have their own)."""
    import socket
    import zlib

    parts = [socket.gethostname()]
    for path in ("/proc/sys/kernel/random/boot_id",):
        try:
            with open(path, encoding="ascii") as f:
                parts.append(f.read().strip())
        except OSError:
            pass
    try:
        parts.append(str(os.stat("/proc/self/ns/pid").st_ino))
    except OSError:
        pass
    return f"{zlib.crc32(chr(0).join(parts).encode()):08x}"


def writer_tag() -> str:
    """``pPID-HOST``: this process, in the names of its temporary files and folders
    (HOST: a hash of the host name, so that a folder shared between machines never
    has a live writer's files judged stale by another machine)."""
    return f"p{os.getpid()}-{_host_id()}"


def writer_is_gone(tag: str) -> bool | None:
    """Whether the writer named by ``tag`` (:func:`writer_tag`) no longer runs: True or
    False for a writer of this host, None when it cannot be told (another host, or
    not a tag)."""
    pid, _, host = tag.partition("-")
    if not (pid[:1] == "p" and pid[1:].isdigit() and host == _host_id()):
        return None
    return not _pid_alive(int(pid[1:]))


def _remove_stale_tmp(d: str, name: str) -> None:
    """Remove ``.NAME.pPID-HOST.*.tmp`` files in ``d`` left by a writer of this host that
    was killed (its PID no longer runs), and other ``.NAME.*.tmp`` files (another
    host's, or without a tag) older than :data:`STALE_TMP_AGE_S`."""
    prefix = "." + name + "."
    now = time.time()
    # exactly this name's: .NAME.pPID-HOST.XXXX.tmp, or the untagged .NAME.XXXX.tmp
    # (not .NAME.b.pos.*.tmp, another target's whose name starts with NAME.)
    own = re.compile(re.escape(prefix) + r"(?:(p\d+-[0-9a-f]{8})\.)?[a-z0-9_]+\.tmp\Z")
    for tmp in glob.glob(os.path.join(glob.escape(d), glob.escape(prefix) + "*.tmp")):
        m = own.match(os.path.basename(tmp))
        if m is None:
            continue
        tag = m.group(1) or ""
        try:
            gone = writer_is_gone(tag)
            if gone is None:
                gone = now - os.lstat(tmp).st_mtime > STALE_TMP_AGE_S
            if gone:
                os.unlink(tmp)
        except OSError:
            pass


#: Folders this process has swept of dead writers' temporary files (once each).
_SWEPT: set = set()


def _sweep_dead_writers(d: str) -> None:
    """Remove every ``.NAME.pPID-HOST.XXXX.tmp`` in ``d``, whatever its NAME, whose writer
    was a process of this host that no longer runs (killed mid-write: kill -9, a power
    cut), the first time this process writes into ``d``. Another host's files and
    untagged ones are left to :func:`_remove_stale_tmp` (by name and age)."""
    key = os.path.abspath(d)
    if key not in _SWEPT:
        _SWEPT.add(key)
        remove_dead_writers_tmp(d)


def remove_dead_writers_tmp(d: str) -> None:
    """Remove the temporary files in ``d`` of every writer of this host that no longer
    runs (``.NAME.pPID-HOST.XXXX.tmp``, any NAME)."""
    tagged = re.compile(r"\A\..+\.(p\d+-[0-9a-f]{8})\.[a-z0-9_]+\.tmp\Z")
    try:
        names = os.listdir(d)
    except OSError:
        return
    for n in names:
        m = tagged.match(n) if n.endswith(".tmp") else None
        if m and writer_is_gone(m.group(1)):
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(d, n))


def _mkstemp(p: str, d: str) -> tuple[int, str]:
    """A temporary file ``.NAME.pPID-HOST.XXXX.tmp`` beside ``p``, after removing stale
    ones (this name's, and the first time in ``d`` every dead writer's)."""
    name = os.path.basename(p)
    _remove_stale_tmp(d, name)
    _sweep_dead_writers(d)
    try:
        return tempfile.mkstemp(prefix=f".{name}.{writer_tag()}.", suffix=".tmp", dir=d)
    except OSError as e:
        raise _write_error(e, p, creating=True) from None


def _umask_mode() -> int:
    """0o666 masked by the process umask (read without changing it where possible)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def _write_error(e: OSError, p: str, creating: bool = False):
    """A one-line FormatError naming ``p`` for a failed write (disk full, quota, file
    too large, read-only file system; and permission denied when ``creating`` the
    temporary file), or ``e`` unchanged for other errors."""
    codes = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS}
    if creating:
        codes |= {errno.EACCES, errno.EPERM}
    if e.errno in codes:
        return FormatError(f"cannot be written: {e.strerror or e}", p)
    return e


@contextlib.contextmanager
def atomic_write(path, mode: str = "wb", **kwargs):
    """Open a temporary file beside ``path``; rename it onto ``path`` on success.

    A reader never sees a half-written file, and a failure leaves ``path``
    as it was. The file gets mode ``0o666`` less the umask, as ``open`` would
    give it. The temporary name holds the writer's PID and host
    (:func:`writer_tag`): temporary files of the same name left by a killed
    writer are removed at the next write. A full
    disk (ENOSPC) or a read-only folder raises a one-line FormatError naming
    ``path``.
    """
    p = os.fspath(path)
    fd, tmp = _mkstemp(p, _output_folder(p))
    with _replacing(tmp, p):
        with os.fdopen(fd, mode, **kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())


@contextlib.contextmanager
def atomic_path(path):
    """A temporary path beside ``path``, renamed onto it on success (for libraries
    that open files by name, such as h5py); as :func:`atomic_write`."""
    p = os.fspath(path)
    fd, tmp = _mkstemp(p, _output_folder(p))
    os.close(fd)
    with _replacing(tmp, p):
        yield tmp


@contextlib.contextmanager
def _replacing(tmp: str, p: str):
    """After the block, give ``tmp`` the umask's mode and rename it onto ``p``; on any
    failure remove ``tmp``, an OSError raised as a one-line error naming ``p``."""
    try:
        try:
            yield
            os.chmod(tmp, _umask_mode())
            os.replace(tmp, p)
        except OSError as e:
            err = _write_error(e, p)
            if err is e:
                raise
            raise err from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write_text(path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically (:func:`atomic_write`)."""
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
    at = data.find(b"\x00")
    if at >= 0:
        raise FormatError(f"is a binary file, not a text range file (a NUL byte at byte "
                          f"{at:,})", p)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    return text.splitlines()


#: First characters that make a spreadsheet read a CSV cell as a formula (OWASP).
_CSV_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
#: A number written as text, optionally with its error (``-0.012 +/- 0.05``).
_CSV_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
                         r"(?: \+/- [+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)?\Z")


def csv_safe(value):
    """``value`` neutralised for a CSV cell: a string starting with ``=``, ``+``,
    ``-``, ``@``, a tab or a carriage return gets a leading single quote, so that
    a spreadsheet shows it as text instead of running it as a formula (the OWASP
    CSV-injection advice). A number written as text (``-0.012``, ``-0.012 +/- 0.05``,
    ``+3e-4``) stays as it is: a spreadsheet reads it as a number, not a formula.
    Other values are returned unchanged.

    >>> csv_safe("=HYPERLINK(1)"), csv_safe("run-1"), csv_safe(-1.5), csv_safe("-0.5 +/- 0.1")
    ("'=HYPERLINK(1)", 'run-1', -1.5, '-0.5 +/- 0.1')
    """
    if (isinstance(value, str) and value.startswith(_CSV_FORMULA_START)
            and not _CSV_NUMBER.match(value)):
        return "'" + value
    return value


def csv_safe_frame(df):
    """A copy of the pandas DataFrame ``df`` whose text cells (object or string
    columns), column names and text index pass through :func:`csv_safe`; for ``to_csv`` only
    (parquet and JSON keep the raw values)."""
    def text(dtype) -> bool:        # object, or pandas' string dtypes ("str", "string")
        return getattr(dtype, "name", "") in ("object", "str", "string")

    out = df.copy()
    for c in out.columns:
        if text(out[c].dtype):
            out[c] = out[c].map(csv_safe, na_action="ignore")
    out = out.rename(columns=csv_safe)
    if out.index.nlevels == 1 and text(out.index.dtype):
        out.index = out.index.map(csv_safe)
    return out
