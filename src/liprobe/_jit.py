"""Numba set-up for liprobe's kernels.

Kernels are compiled once and cached (``cache=True``). So that the cache also
works when the package is installed read-only, ``NUMBA_CACHE_DIR`` defaults
to a user cache folder (``$XDG_CACHE_HOME/liprobe/numba``, else
``~/.cache/liprobe/numba``) unless the user has set it. Import this module
before numba, and only from modules that need kernels (numba is a heavy
import: ``liprobe info`` never loads it).

Side effect, on purpose and documented in the README: numba reads its
configuration from the ``NUMBA_*`` environment variables when it is imported,
and reads all of them again (dropping values set on ``numba.config``)
whenever one of them has changed since. The environment is therefore the one
place where the cache folder stays chosen. When ``NUMBA_CACHE_DIR`` is unset,
the first import of this module sets it in ``os.environ`` for the whole
process (and the processes it starts), and numba code of other packages in
the same process caches there too. Set ``NUMBA_CACHE_DIR`` yourself to choose
another folder. If numba was imported before liprobe, the folder takes effect
at numba's next compilation, when it notices the changed variable.
"""

from __future__ import annotations

import os


def _default_cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "liprobe", "numba")


if "NUMBA_CACHE_DIR" not in os.environ:
    _dir = _default_cache_dir()
    try:
        os.makedirs(_dir, exist_ok=True)
        os.environ["NUMBA_CACHE_DIR"] = _dir
    except OSError:  # no writable home: numba falls back to its own rules
        pass

import numba  # noqa: E402

njit = numba.njit
prange = numba.prange
get_num_threads = numba.get_num_threads

__all__ = ["njit", "prange", "get_num_threads", "numba"]
