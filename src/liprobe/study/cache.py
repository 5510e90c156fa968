"""The study's cache: one JSON record per finished run, keyed by a content hash.

``OUT/cache/<key>.json`` holds a run's result with what produced it: the
BLAKE2b hash of each input file's whole content, the analysis parameters, the
liprobe version and the column groups' versions, the timings, when it
finished, the hash of the result (``result_hash``) and of the whole record
(``record_hash``). The key is a hash of the inputs' hashes and the
parameters, so a run is recomputed exactly when the content of one of its
input files or one of its parameters changes.

A record is trusted only when it passes its schema (:class:`Record`: the
right shapes, a result with ``status = "ok"`` and at least one value, no NaN
or infinity anywhere), its key is the hash of its own inputs and parameters,
and its result and content still have the hashes stored in it (a number
edited by hand fails). A record that fails is treated as missing, with
a one-line :class:`CacheWarning` naming its file: the study recomputes the run
and replaces the record; the report skips it.

Every file is written atomically (a temporary file in the same folder, then
:func:`os.replace`): a study killed at any moment leaves each record either
complete or absent, never half-written.

Only regular files are hashed (a FIFO or a device such as ``/dev/zero`` is
refused at once), each in full, once per study: within one study a file's
hash is remembered against its size and modification time, never from one
study to the next.
"""

from __future__ import annotations

import errno
import glob
import hashlib
import json
import os
import stat
import time
import warnings
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
)

from ..errors import FormatError
from ..io._files import atomic_write_text, open_regular

__all__ = ["iter_records", "file_digest", "Cache", "CacheWarning", "Record", "RECORD_FORMAT",
           "record_problem"]

#: Version of the record layout (part of the key).
RECORD_FORMAT = 2
_BLOCK = 1 << 22
#: Name of the content hash of the input files, as recorded in ``inputs``.
HASH_NAME = "blake2b"


class CacheWarning(UserWarning):
    """A cache record that cannot be trusted (it is recomputed, or skipped by the report)."""


# --------------------------------------------------------------------------
# the schema of a record
# --------------------------------------------------------------------------

_Finite = Annotated[StrictFloat, Field(allow_inf_nan=False)]
_Number = Annotated[float, Field(allow_inf_nan=False)]
_Scalar = StrictBool | StrictInt | _Finite | StrictStr | None


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class Result(_Model):
    """A finished run's result (what :func:`liprobe.study.analysis.analyse_run` returns)."""

    status: Literal["ok"]
    error: None = None
    values: Annotated[dict[str, _Scalar], Field(min_length=1)]
    reasons: dict[str, Any] = {}
    timings_s: dict[str, _Number] = {}
    artefacts: dict[str, Any] = {}


class Input(_Model):
    """One input file of a record: its path and the hash of its content."""

    path: StrictStr | None = None
    blake2b: Annotated[StrictStr, Field(min_length=16)]


class Record(_Model):
    """The schema of ``OUT/cache/<key>.json``."""

    key: StrictStr
    run: StrictStr
    segment: StrictInt | None = None
    inputs: dict[str, Input]
    params: dict[str, Any]
    finished: StrictStr
    timings_s: dict[str, _Number] = {}
    result: Result
    result_hash: StrictStr
    record_hash: StrictStr


def _canonical(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def result_hash(result: dict) -> str:
    """The hash stored beside a result (of its canonical JSON)."""
    return hashlib.blake2b(_canonical(result), digest_size=32).hexdigest()


def record_hash(rec: dict) -> str:
    """The hash of a whole record but its ``record_hash`` (timings and dates included)."""
    return result_hash({k: v for k, v in rec.items() if k != "record_hash"})


def _no_constant(name):
    raise ValueError(f"{name} is not a number JSON allows")


def _read_json(path: str):
    """A JSON file, refusing NaN and Infinity; raises OSError or ValueError."""
    with open_regular(path) as f:
        return json.load(f, parse_constant=_no_constant)


def _first_error(e: ValidationError) -> str:
    err = e.errors(include_url=False)[0]
    where = ".".join(str(p) for p in err["loc"]) or "the record"
    return f"{where}: {err['msg'].lower()}"


def record_problem(rec, key: str | None = None) -> str | None:
    """Why a parsed record cannot be trusted, in a few words, or None when it can.

    Parameters
    ----------
    rec : object
        The record as read from JSON.
    key : str, optional
        The key it must carry (its file's name).
    """
    if not isinstance(rec, dict):
        return f"not a JSON object but {type(rec).__name__}"
    try:
        Record.model_validate(rec)
    except ValidationError as e:
        return _first_error(e)
    if key is not None and rec["key"] != key:
        return f"its key {rec['key']!r} is not its file's name"
    try:
        h = result_hash(rec["result"])
        k = Cache.key({what: v["blake2b"] for what, v in rec["inputs"].items()}, rec["params"])
        rh = record_hash(rec)
    except (TypeError, ValueError):
        return "not plain JSON"
    if h != rec["result_hash"]:
        return "its result does not match its result_hash (edited?)"
    if k != rec["key"]:
        return "its inputs and parameters do not match its key (edited?)"
    if rh != rec.get("record_hash", rh):
        return "its content does not match its record_hash (edited?)"
    return None


def _warn_bad(path: str, why: str, then: str) -> None:
    warnings.warn(f"{path}: untrusted cache record ({why}); {then}", CacheWarning, stacklevel=3)


def load_record(path: str, key: str | None = None, then: str = "ignored") -> dict | None:
    """The record in ``path`` if it passes :func:`record_problem`; None if it is absent,
    and None with a :class:`CacheWarning` (saying ``then``) if it cannot be trusted."""
    try:
        rec = _read_json(path)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, RecursionError) as e:
        _warn_bad(path, f"unreadable: {' '.join(str(e).split())}", then)
        return None
    if _format_1(rec):           # written before the update: another key, left alone
        return None
    why = record_problem(rec, key)
    if why is not None:
        _warn_bad(path, why, then)
        return None
    return rec


def _format_1(rec) -> bool:
    """A record of the layout before format 2 (SHA-256 inputs, no hashes of itself): never
    used (its key differs from every key of format 2), skipped without a warning."""
    inputs = rec.get("inputs") if isinstance(rec, dict) else None
    return (isinstance(inputs, dict) and bool(inputs) and "record_hash" not in rec
            and all(isinstance(v, dict) and "sha256" in v for v in inputs.values()))


def iter_records(out: str):
    """The trusted records in ``OUT/cache`` (dicts), in file-name order.

    A record that fails :func:`record_problem` is skipped with a one-line
    :class:`CacheWarning` naming its file.
    """
    for path in sorted(glob.glob(os.path.join(os.fspath(out), "cache", "*.json"))):
        if os.path.basename(path) == MEMO_NAME:         # the file-hash memo, not a record
            continue
        key = os.path.splitext(os.path.basename(path))[0]
        rec = load_record(path, key, then="skipped")
        if rec is not None:
            yield rec


# --------------------------------------------------------------------------
# hashing input files
# --------------------------------------------------------------------------

def _open_regular(path: str) -> int:
    """A descriptor of ``path`` open for reading, which must be a regular file (a FIFO is
    opened without blocking and refused, like a device or a folder)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", path)
    except BaseException:
        os.close(fd)
        raise
    return fd


#: The file of the inputs' hashes kept between studies (:meth:`Cache.save_memo`).
MEMO_NAME = "files.json"
MEMO_FORMAT = 2
#: A hash taken sooner than this after the file's last status change is not kept (ns).
RACY_NS = 2_000_000_000


def _load_memo(path: str) -> dict:
    """The kept hashes (:meth:`Cache.save_memo`): ``{path: (signature, hash, hashed at)}``;
    empty when the file is missing, unreadable or not of this format (the study then
    hashes again; a bad entry is dropped, never trusted)."""
    try:
        with open_regular(path, "r", encoding="utf-8") as f:
            d = json.loads(f.read(1 << 26))
    except (OSError, ValueError, UnicodeDecodeError):
        return {}
    if not (isinstance(d, dict) and d.get("format") == MEMO_FORMAT
            and d.get("hash") == HASH_NAME and isinstance(d.get("files"), dict)):
        return {}
    out = {}
    for p, v in d["files"].items():
        if (isinstance(p, str) and isinstance(v, list) and len(v) == 7
                and all(isinstance(x, int) and not isinstance(x, bool) for x in v[:5])
                and isinstance(v[5], str) and len(v[5]) == 64
                and all(c in "0123456789abcdef" for c in v[5])
                and isinstance(v[6], int) and not isinstance(v[6], bool)):
            out[p] = (list(v[:5]), v[5], v[6])
    return out


def file_digest(path: str) -> str:
    """BLAKE2b (32 bytes, hex) of a regular file's whole content, read in blocks.

    Raises
    ------
    OSError
        The file cannot be read, or is not a regular file (``strerror``
        ``"not a regular file"``).
    """
    h = hashlib.blake2b(digest_size=32)
    with os.fdopen(_open_regular(path), "rb") as f:
        while b := f.read(_BLOCK):
            h.update(b)
    return h.hexdigest()


class Cache:
    """Records of finished runs under ``OUT/cache``.

    Parameters
    ----------
    out : str
        The study's output folder.
    """

    def __init__(self, out: str):
        self.dir = os.path.join(out, "cache")
        os.makedirs(self.dir, exist_ok=True)
        self.memo_path = os.path.join(self.dir, MEMO_NAME)
        self._memo: dict = _load_memo(self.memo_path)   # path -> (signature, hash, hashed at)
        self._changed = False

    def digest(self, path: str) -> str:
        """BLAKE2b of a regular file's whole content, hashed again only when the file may
        have changed.

        A hash is reused while the file's device, inode, size, modification time and
        status-change time (``st_ctime_ns``, which no user call can set back) are those it
        was hashed with, within this study or, through ``OUT/cache/files.json``
        (:meth:`save_memo`), a later one. A hash taken less than :data:`RACY_NS` after the
        file's last change is not reused by a later study: on a file system with coarse
        timestamps a second change within the same tick would not show (git's "racy" rule).

        Raises
        ------
        OSError
            The file cannot be read, or is not a regular file.
        """
        p = os.path.abspath(path)
        st = os.stat(p)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, "not a regular file", p)
        sig = [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]
        m = self._memo.get(p)
        if m is not None and m[0] == sig:
            return m[1]
        hashed_at = time.time_ns()
        d = file_digest(p)
        self._memo[p] = (sig, d, hashed_at)
        self._changed = True
        return d

    def save_memo(self) -> None:
        """Keep the file hashes for the next study (``OUT/cache/files.json``, written
        atomically; the racy ones left out, see :meth:`digest`). A failure to write it
        costs only time: the next study hashes again."""
        if not self._changed:
            return
        keep = {p: [*sig, d, at] for p, (sig, d, at) in self._memo.items()
                if at - sig[4] >= RACY_NS}
        try:
            atomic_write_text(self.memo_path, json.dumps({"format": MEMO_FORMAT,
                                                          "hash": HASH_NAME, "files": keep}))
        except OSError as e:
            warnings.warn(f"{self.memo_path}: file hashes not kept ({e.strerror or e})",
                          CacheWarning, stacklevel=2)
        except FormatError as e:          # atomic_write_text's one line (a full disk ...)
            warnings.warn(f"{self.memo_path}: file hashes not kept ({e.problem})",
                          CacheWarning, stacklevel=2)

    @staticmethod
    def key(inputs: dict, params: dict) -> str:
        """The record key: a hash of the inputs' hashes and the parameters."""
        return hashlib.sha256(_canonical({"format": RECORD_FORMAT, "inputs": inputs,
                                          "params": params})).hexdigest()[:32]

    def path(self, key: str) -> str:
        return os.path.join(self.dir, f"{key}.json")

    def load(self, key: str) -> dict | None:
        """The record of ``key``, or None: absent, or untrusted (then with a one-line
        :class:`CacheWarning` naming its file; the run is to be recomputed)."""
        return load_record(self.path(key), key, then="the run is recomputed")

    def store(self, record: dict) -> str | None:
        """Write a record atomically, with the hash of its result; returns its path, or
        None (with a :class:`CacheWarning`) when the record would not pass its schema:
        then nothing is written, and the run is computed again next time."""
        p = self.path(record["key"])
        try:
            rec = json.loads(json.dumps(record, allow_nan=False))   # as it will be read back
            rec.pop("record_hash", None)
            rec["result_hash"] = result_hash(rec["result"])
            rec["record_hash"] = record_hash(rec)
        except (TypeError, ValueError) as e:
            why = f"not plain JSON: {e}"
        else:
            why = record_problem(rec, record["key"])
        if why is not None:
            warnings.warn(f"{p}: not cached ({why})", CacheWarning, stacklevel=2)
            return None
        atomic_write_text(p, json.dumps(rec, indent=1, allow_nan=False))
        return p
