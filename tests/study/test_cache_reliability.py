"""A cache that cannot lie, and a local cluster with no open port (issue 27).

One small simulated run is studied once per module; each test works on its
own copy of that folder (the data, the manifest and ``out/cache``).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading

import numpy as np
import pytest
from click.testing import CliRunner

from liprobe.cli import cli
from liprobe.study import run_study
from liprobe.study.cache import Cache, CacheWarning, iter_records


def _record(d):
    (p,) = [p for p in (d / "out" / "cache").glob("*.json") if p.name != "files.json"]
    return p


def _study(d, *extra):
    return CliRunner().invoke(cli, ["study", str(d / "study.toml"), "-o", str(d / "out"),
                                    "--workers", "0", "--json", *extra])


def _edit(path, change):
    rec = json.loads(path.read_text())
    change(rec)
    path.write_text(json.dumps(rec))


def _first_float(values):
    return next(k for k, v in values.items() if isinstance(v, float))


def _values_missing(rec):
    del rec["result"]["values"]


def _values_list(rec):
    rec["result"]["values"] = []


def _values_empty(rec):
    rec["result"]["values"] = {}


def _number_edited(rec):
    v = rec["result"]["values"]
    k = _first_float(v)
    v[k] = v[k] * 1.01 + 1.0


def _finished_edited(rec):
    rec["finished"] = "2000-01-01T00:00:00+00:00"


def _status_failed(rec):
    rec["result"]["status"] = "failed"


#: name -> a record's new text, or a change to its JSON
BAD = {
    "list": "[]",
    "string": '"x"',
    "result 5": None,                 # {"key": K, "result": 5}: written with its own key
    "truncated": '{"key": "abc", "run": ',
    "no values": _values_missing,
    "values list": _values_list,
    "values empty": _values_empty,
    "number edited": _number_edited,
    "date edited": _finished_edited,
    "status failed": _status_failed,
}


@pytest.mark.parametrize("case", list(BAD))
def test_an_untrusted_record_is_recomputed_with_one_warning(tiny, case):
    rec = _record(tiny)
    good = json.loads(rec.read_text())
    bad = BAD[case]
    if case == "result 5":
        rec.write_text(json.dumps({"key": rec.stem, "result": 5}))
    elif isinstance(bad, str):
        rec.write_text(bad)
    else:
        _edit(rec, bad)

    res = _study(tiny)
    assert res.exit_code == 0, res.output
    assert res.exception is None
    s = json.loads(res.stdout)
    assert (s["computed"], s["cached"]) == (1, 0)
    warns = [ln for ln in res.stderr.splitlines() if ln.startswith("warning:")]
    assert len(warns) == 1, res.stderr
    assert str(rec) in warns[0] and "the run is recomputed" in warns[0]
    assert "Traceback" not in res.stderr
    # the record is whole again, with the same values, and trusted by the next run
    again = json.loads(rec.read_text())
    assert again["result"]["values"] == good["result"]["values"]
    res2 = _study(tiny)
    assert json.loads(res2.stdout)["cached"] == 1 and "warning" not in res2.stderr


def test_a_nan_in_a_record_is_not_used(tiny):
    rec = _record(tiny)
    text = rec.read_text()
    k = _first_float(json.loads(text)["result"]["values"])
    v = json.loads(text)["result"]["values"][k]
    assert text.count(json.dumps(v)) >= 1
    rec.write_text(text.replace(f'"{k}": {json.dumps(v)}', f'"{k}": NaN', 1))
    assert "NaN" in rec.read_text()
    with pytest.warns(CacheWarning, match="NaN"):
        res = run_study(tiny / "study.toml", tiny / "out", workers=0)
    assert res.computed == ["cr-5"] and res.rows[0][k] == pytest.approx(v)


def test_a_malformed_file_memo_is_harmless(tiny):
    (tiny / "out" / "cache" / "files.json").write_text("[]")
    res = _study(tiny)
    assert res.exit_code == 0 and json.loads(res.stdout)["cached"] == 1
    assert "warning" not in res.stderr


def test_a_file_changed_under_the_same_size_and_mtime_is_recomputed(tiny):
    """Masses times 1.5, the modification time put back: the content hash sees it."""
    data = tiny / "cr-5.epos"
    st = os.stat(data)
    a = np.fromfile(data, dtype=">f4").reshape(-1, 11)        # EPOS: 11 fields of 4 bytes
    before = run_study(tiny / "study.toml", tiny / "out", workers=0)
    assert before.cached == ["cr-5"]
    a[:, 3] *= 1.5                                            # m/n (Da)
    a.tofile(data)
    os.utime(data, ns=(st.st_atime_ns, st.st_mtime_ns))
    st2 = os.stat(data)
    assert (st2.st_size, st2.st_mtime_ns) == (st.st_size, st.st_mtime_ns)

    after = run_study(tiny / "study.toml", tiny / "out", workers=0)
    assert after.computed == ["cr-5"] and after.cached == []
    assert after.rows[0]["ions_ranged_roi"] != before.rows[0]["ions_ranged_roi"]
    # and each record names the content it was computed from
    hashes = {r["inputs"]["data"]["blake2b"] for r in iter_records(str(tiny / "out"))}
    assert Cache(str(tiny / "out")).digest(str(data)) in hashes and len(hashes) == 2


def test_file_hashes_are_remembered_only_within_one_cache(tmp_path):
    import hashlib

    f = tmp_path / "a.bin"
    f.write_bytes(b"abc")
    c = Cache(str(tmp_path / "out"))
    d1 = c.digest(str(f))
    assert d1 == hashlib.blake2b(b"abc", digest_size=32).hexdigest()
    f.write_bytes(b"abd")
    assert c.digest(str(f)) != d1
    assert not (tmp_path / "out" / "cache" / "files.json").exists()


@pytest.mark.timeout(60)
def test_a_fifo_or_a_device_is_refused_not_read(tmp_path):
    fifo = tmp_path / "fifo.epos"
    os.mkfifo(fifo)
    c = Cache(str(tmp_path / "out"))
    for p in (str(fifo), "/dev/zero", str(tmp_path)):
        with pytest.raises(OSError, match="not a regular file"):
            c.digest(p)


@pytest.mark.timeout(60)
def test_a_study_whose_data_is_a_fifo_fails_that_row_at_once(tiny):
    data = tiny / "cr-5.epos"
    data.unlink()
    os.mkfifo(data)
    res = _study(tiny)
    assert res.exit_code == 3, res.output
    assert "not a regular file" in res.stderr and "Traceback" not in res.stderr


def test_a_stored_record_carries_its_hashes(tiny):
    rec = json.loads(_record(tiny).read_text())
    assert len(rec["result_hash"]) == 64 and len(rec["record_hash"]) == 64
    assert len(rec["inputs"]["data"]["blake2b"]) == 64
    assert [r["key"] for r in iter_records(str(tiny / "out"))] == [rec["key"]]


# --------------------------------------------------------------------------
# no open port
# --------------------------------------------------------------------------

def _listening(proc):
    """(pid, ip) of every listening TCP socket of ``proc`` and its children."""
    out = []
    for p in [proc] + proc.children(recursive=True):
        try:
            conns = p.net_connections(kind="inet")
        except Exception:  # noqa: BLE001 - a worker that ended meanwhile
            continue
        out += [(p.pid, c.laddr.ip) for c in conns if c.status == "LISTEN"]
    return out


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("dashboard", [False, True])
def test_a_local_cluster_listens_on_loopback_only(tiny_base, tmp_path, dashboard):
    psutil = pytest.importorskip("psutil")
    seen, links = [], []
    me = psutil.Process()
    lock = threading.Lock()

    def progress(ev):            # while the cluster is up: after each result
        with lock:
            seen.append(_listening(me))

    res = run_study(tiny_base / "study.toml", tmp_path / "out", workers=1, progress=progress,
                    dashboard=links.append if dashboard else None)
    assert res.computed == ["cr-5"]
    socks = [s for snap in seen for s in snap]
    assert len({pid for pid, _ in socks}) >= 2          # the scheduler here, and a worker
    assert {ip for _, ip in socks} == {"127.0.0.1"}
    if dashboard:
        assert len(links) == 1 and links[0].startswith("http://127.0.0.1:")
    else:
        assert links == []


def test_dashboard_is_for_the_local_cluster_only(tiny_base, tmp_path):
    for extra in (["--workers", "0"], ["--scheduler", "tcp://127.0.0.1:1"]):
        res = CliRunner().invoke(cli, ["study", str(tiny_base / "study.toml"), "-o",
                                       str(tmp_path / "o"), "--dashboard", *extra])
        assert res.exit_code == 2 and "--dashboard" in res.stderr


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_study_dashboard_prints_a_loopback_address(tiny_base, tmp_path):
    res = CliRunner().invoke(cli, ["study", str(tiny_base / "study.toml"), "-o",
                                   str(tmp_path / "o"), "--workers", "1", "--dashboard"])
    assert res.exit_code == 0, res.output
    (line,) = [ln for ln in res.stderr.splitlines() if "dashboard" in ln]
    assert line.startswith("study: Dask dashboard at http://127.0.0.1:")


def test_a_record_of_the_old_layout_is_skipped_without_a_warning(tiny):
    import warnings

    rec = _record(tiny)
    d = json.loads(rec.read_text())
    d["inputs"] = {k: {"path": v["path"], "sha256": "0" * 64} for k, v in d["inputs"].items()}
    del d["result_hash"], d["record_hash"]
    rec.write_text(json.dumps(d))
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheWarning)
        assert list(iter_records(str(tiny / "out"))) == []
        assert run_study(tiny / "study.toml", tiny / "out", workers=0).computed == ["cr-5"]


def test_input_hashes_are_kept_for_the_next_study_and_redone_when_a_file_may_have_changed(
        tmp_path, monkeypatch):
    import json as _json

    from liprobe.study import cache as cache_mod

    data = tmp_path / "run.pos"
    data.write_bytes(b"\x00" * 1000)
    old = 1_000_000_000 * 1_600_000_000                    # an old change (ns): not racy
    os.utime(data, ns=(old, old))
    calls = []
    real = cache_mod.file_digest

    def counting(path):
        calls.append(path)
        return real(path)
    monkeypatch.setattr(cache_mod, "file_digest", counting)
    c = cache_mod.Cache(str(tmp_path / "out"))
    d = c.digest(str(data))
    assert d == hashlib.blake2b(b"\x00" * 1000, digest_size=32).hexdigest()
    c.save_memo()
    # st_ctime is the time of the utime call: just now, so racy; make the hash look later
    memo = _json.loads((tmp_path / "out" / "cache" / "files.json").read_text())
    assert memo["files"] == {}                        # hashed right after the change: not kept
    c._memo[str(data)] = (c._memo[str(data)][0], d, c._memo[str(data)][0][4] + 3 * 10**9)
    c._changed = True
    c.save_memo()
    memo = _json.loads((tmp_path / "out" / "cache" / "files.json").read_text())
    assert list(memo["files"]) == [str(data)]
    # the next study takes the kept hash without reading the file
    calls.clear()
    assert cache_mod.Cache(str(tmp_path / "out")).digest(str(data)) == d and calls == []
    # same size, the modification time set back: the status-change time moved, hashed again
    data.write_bytes(b"\x01" * 1000)
    os.utime(data, ns=(old, old))
    c2 = cache_mod.Cache(str(tmp_path / "out"))
    assert c2.digest(str(data)) != d and len(calls) == 1
    # a damaged or foreign memo is dropped, never trusted
    for text in ("{", '{"format": 2, "hash": "md5", "files": {}}',
                 '{"format": 2, "hash": "blake2b", "files": {"x": [1, 2, 3, 4, 5, "zz", 6]}}'):
        (tmp_path / "out" / "cache" / "files.json").write_text(text)
        assert cache_mod.Cache(str(tmp_path / "out"))._memo == {}


def test_a_full_disk_when_keeping_the_file_hashes_is_a_warning_not_a_failed_study(
        tmp_path, monkeypatch):
    """files.json only saves time: the one-line write error of a full disk (a FormatError
    from the atomic writer, not an OSError) is a CacheWarning, never the study's end."""
    import errno

    from liprobe.io import _files
    from liprobe.study import cache as cache_mod

    data = tmp_path / "run.pos"
    data.write_bytes(b"\x00" * 64)
    c = cache_mod.Cache(str(tmp_path / "out"))
    c.digest(str(data))
    c._changed = True

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(_files.os, "fsync", full)
    with pytest.warns(cache_mod.CacheWarning, match="files.json: file hashes not kept .*"
                      "No space left on device"):
        c.save_memo()
    assert not (tmp_path / "out" / "cache" / "files.json").exists()


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_dashboard_says_why_there_is_none_when_every_row_is_cached(tiny_base, tmp_path):
    args = ["study", str(tiny_base / "study.toml"), "-o", str(tmp_path / "o"), "--workers",
            "1", "--dashboard"]
    assert CliRunner().invoke(cli, args).exit_code == 0
    res = CliRunner().invoke(cli, args)                  # everything cached: no cluster
    assert res.exit_code == 0, res.output
    (line,) = [ln for ln in res.stderr.splitlines() if "dashboard" in ln]
    assert line == ("study: no Dask dashboard: every row came from the cache, nothing was "
                    "computed (no cluster started)")
