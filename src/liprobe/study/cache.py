"""The study's cache: one JSON record per finished run, keyed by a content hash.

``OUT/cache/<key>.json`` holds a run's result with what produced it: the
SHA-256 of its input files, the analysis parameters, the liprobe version and
the column groups' versions, the timings and when it finished. The key is the
SHA-256 of all of these but the result, so a run is recomputed exactly when
one of its inputs or parameters changes, and a record already written is
never rewritten for the same key.

Every file is written atomically (a temporary file in the same folder, then
:func:`os.replace`): a study killed at any moment leaves each record either
complete or absent, never half-written.

Hashing a large file costs a pass over it; ``OUT/cache/files.json`` remembers
each file's hash next to its size and modification time, so an unchanged
file is hashed once.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os

from ..io._files import atomic_write_text

__all__ = ["iter_records", "file_sha256", "Cache", "RECORD_FORMAT"]

#: Version of the record layout (part of the key).
RECORD_FORMAT = 1
_BLOCK = 1 << 22


def iter_records(out: str):
    """The readable JSON records in ``OUT/cache`` (dicts; the file-hash memo left out)."""
    for path in sorted(glob.glob(os.path.join(os.fspath(out), "cache", "*.json"))):
        if os.path.basename(path) == "files.json":
            continue
        try:
            with open(path, encoding="utf-8") as f:
                rec = json.load(f)
        except (OSError, ValueError):
            continue
        if isinstance(rec, dict):
            yield rec


def file_sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(_BLOCK)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def _canonical(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


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
        self._memo_path = os.path.join(self.dir, "files.json")
        try:
            with open(self._memo_path, encoding="utf-8") as f:
                self._memo = json.load(f)
        except (OSError, ValueError):
            self._memo = {}
        self._memo_dirty = False

    def digest(self, path: str) -> str:
        """SHA-256 of a file's content (remembered against its size and mtime).

        Raises
        ------
        OSError
            The file cannot be read.
        """
        p = os.path.abspath(path)
        st = os.stat(p)
        m = self._memo.get(p)
        if m and m.get("size") == st.st_size and m.get("mtime_ns") == st.st_mtime_ns:
            return m["sha256"]
        d = file_sha256(p)
        self._memo[p] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": d}
        self._memo_dirty = True
        return d

    def save_memo(self) -> None:
        if self._memo_dirty:
            atomic_write_text(self._memo_path, json.dumps(self._memo, indent=1, sort_keys=True))
            self._memo_dirty = False

    @staticmethod
    def key(inputs: dict, params: dict) -> str:
        """The record key: SHA-256 of the inputs' hashes and the parameters."""
        return hashlib.sha256(_canonical({"format": RECORD_FORMAT, "inputs": inputs,
                                          "params": params})).hexdigest()[:32]

    def path(self, key: str) -> str:
        return os.path.join(self.dir, f"{key}.json")

    def load(self, key: str) -> dict | None:
        """The record of ``key``, or None (absent or unreadable)."""
        try:
            with open(self.path(key), encoding="utf-8") as f:
                rec = json.load(f)
        except (OSError, ValueError):
            return None
        if rec.get("key") != key or "result" not in rec:
            return None
        return rec

    def store(self, record: dict) -> str:
        """Write a record atomically; returns its path."""
        p = self.path(record["key"])
        atomic_write_text(p, json.dumps(record, indent=1, allow_nan=False))
        return p
