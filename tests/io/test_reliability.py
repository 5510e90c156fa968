"""Reliability of reading and writing (issue 27): only regular files are read; atomic
writes clean up after killed writers, respect the umask and name the file on a full
disk; CSV cells cannot become spreadsheet formulas."""

import errno
import os
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

import liprobe
from liprobe.errors import FormatError, LiprobeError
from liprobe.io import _files, detect_format
from liprobe.io._files import atomic_write, atomic_write_text, csv_safe, csv_safe_frame
from liprobe.io.apt import read_apt
from liprobe.io.pos import read_epos, read_pos
from liprobe.io.rng import read_rng
from liprobe.io.rrng import read_rrng
from liprobe.study.manifest import ManifestError, load_manifest


@pytest.fixture
def fifo(tmp_path):
    p = tmp_path / "run.epos"
    os.mkfifo(p)
    return p


def _readers():
    return [liprobe.read, liprobe.read_ranges, detect_format, read_pos, read_epos, read_apt,
            read_rrng, read_rng, load_manifest]


@pytest.mark.parametrize("reader", _readers(), ids=lambda f: f.__name__)
@pytest.mark.timeout(20)
def test_every_reader_refuses_a_fifo_at_once(reader, fifo):
    # opening a FIFO with no writer blocks forever: the check must come before open()
    with pytest.raises(LiprobeError) as e:
        reader(fifo)
    msg = str(e.value)
    assert msg == f"{fifo}: not a regular file: is a FIFO"
    assert "\n" not in msg


@pytest.mark.parametrize("reader", _readers(), ids=lambda f: f.__name__)
@pytest.mark.timeout(20)
def test_every_reader_refuses_a_device_and_a_directory(reader, tmp_path):
    with pytest.raises(LiprobeError, match="^/dev/zero: not a regular file: is a device$"):
        reader("/dev/zero")
    with pytest.raises(LiprobeError, match="not a regular file: is a directory$") as e:
        reader(tmp_path)
    assert str(e.value).startswith(str(tmp_path))


def test_manifest_error_class_for_a_fifo(fifo):
    with pytest.raises(ManifestError):
        load_manifest(fifo)


def test_read_nexus_refuses_a_fifo(fifo):
    pytest.importorskip("h5py")
    from liprobe.io.nexus import read_nexus

    with pytest.raises(FormatError, match="not a regular file: is a FIFO"):
        read_nexus(fifo)


def test_symlink_to_a_regular_file_is_read(real, tmp_path):
    link = tmp_path / "link.pos"
    link.symlink_to(real / "apav_si" / "Si.pos")
    assert liprobe.read(link).n_ions == 945_211


@pytest.mark.timeout(30)
def test_cli_info_on_a_fifo_returns_at_once(fifo):
    res = subprocess.run([sys.executable, "-m", "liprobe", "info", str(fifo)],
                         capture_output=True, text=True, timeout=25)
    assert res.returncode == 1 and res.stdout == ""
    assert res.stderr.strip() == f"liprobe: error: {fifo}: not a regular file: is a FIFO"


# -- atomic writes --------------------------------------------------------------------

def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_temp_name_holds_the_writer_pid(tmp_path):
    target = tmp_path / "a.json"
    with atomic_write(target, "w") as f:
        tmps = [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]
        assert len(tmps) == 1 and tmps[0].startswith(f".a.json.{_files.writer_tag()}.")
        f.write("x")
    assert os.listdir(tmp_path) == ["a.json"]


def test_stale_temp_files_of_killed_writers_are_removed(tmp_path):
    host = _files.writer_tag().split("-", 1)[1]
    dead = f"p{_dead_pid()}-{host}"
    target = tmp_path / "runs.csv"
    stale = tmp_path / f".runs.csv.{dead}.abc123.tmp"                 # writer killed
    live = tmp_path / f".runs.csv.{_files.writer_tag()}.zzz999.tmp"   # a writer still running
    remote = tmp_path / f".runs.csv.p{_dead_pid()}-00000000.r1.tmp"   # another host's: kept
    old = tmp_path / ".runs.csv.k2j3h4.tmp"                           # no tag, 2 h old
    young = tmp_path / ".runs.csv.q8w9e0.tmp"                         # no tag, just now
    other = tmp_path / f".other.csv.{dead}.abc123.tmp"     # another file's, writer dead
    for p in (stale, live, remote, old, young, other):
        p.write_text("half")
    two_hours_ago = time.time() - 7200
    os.utime(old, (two_hours_ago, two_hours_ago))
    atomic_write_text(target, "a,b\n")
    left = sorted(os.listdir(tmp_path))
    # the first write in the folder also sweeps every dead writer's file, whatever its name
    assert left == sorted(["runs.csv", live.name, remote.name, young.name])
    assert target.read_text() == "a,b\n"


def test_a_dead_writers_temp_file_of_any_name_goes_at_the_next_write_in_its_folder(tmp_path):
    """kill -9 while writing a.pos leaves .a.pos.pPID-HOST.*.tmp; the next run writing
    anything into that folder (b.csv) removes it, once per folder and process."""
    host = _files.writer_tag().split("-", 1)[1]
    code = ("import os\n"
            "from liprobe.io._files import atomic_write\n"
            f"with atomic_write({str(tmp_path / 'a.pos')!r}, 'wb') as f:\n"
            "    f.write(b'half'); f.flush()\n"
            "    os._exit(9)\n")
    subprocess.run([sys.executable, "-c", code], check=False, timeout=60)
    (left,) = [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]
    assert left.startswith(".a.pos.p") and host in left
    _files._SWEPT.discard(os.path.abspath(tmp_path))
    atomic_write_text(tmp_path / "b.csv", "x\n")
    assert os.listdir(tmp_path) == ["b.csv"]
    # the sweep is once per folder: a later dead writer's file waits for its own name
    later = tmp_path / f".c.pos.p{_dead_pid()}-{host}.k1.tmp"
    later.write_text("half")
    atomic_write_text(tmp_path / "d.csv", "y\n")
    assert later.exists()
    atomic_write_text(tmp_path / "c.pos", "z")
    assert not later.exists()


def test_killed_writer_leaves_a_temp_file_that_the_next_write_removes(tmp_path):
    target = tmp_path / "out.txt"
    code = ("import os, sys\n"
            "from liprobe.io._files import atomic_write\n"
            f"with atomic_write({str(target)!r}, 'w') as f:\n"
            "    f.write('half'); f.flush()\n"
            "    os._exit(9)\n")
    subprocess.run([sys.executable, "-c", code], check=False, timeout=60)
    assert [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]     # kill -9 leaves one
    atomic_write_text(target, "whole\n")
    assert os.listdir(tmp_path) == ["out.txt"]


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_output_files_respect_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        atomic_write_text(tmp_path / "a.txt", "x")
        with _files.atomic_path(tmp_path / "b.bin") as p:
            with open(p, "wb") as f:
                f.write(b"x")
        liprobe.write(tmp_path / "c.pos", liprobe.Run.from_arrays(
            x=[0.0], y=[0.0], z=[0.0], mass=[1.0]))
    finally:
        os.umask(old)
    for name in ("a.txt", "b.bin", "c.pos"):
        assert (os.stat(tmp_path / name).st_mode & 0o777) == 0o666 & ~umask, name


def test_disk_full_names_the_file_in_one_line(tmp_path, monkeypatch):
    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(_files.os, "fsync", full)
    target = tmp_path / "runs.csv"
    with pytest.raises(FormatError) as e:
        atomic_write_text(target, "a,b\n")
    assert str(e.value) == f"{target}: cannot be written: No space left on device"
    assert os.listdir(tmp_path) == []          # no temp file left, no half file


def test_disk_full_on_a_real_full_device():
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    # /dev/full is not a folder we can write a temp file in: check the error path of
    # write() through the same wrapper by writing to it directly
    with pytest.raises(OSError) as e:
        with open("/dev/full", "wb") as f:
            f.write(b"x" * 10)
            f.flush()
    assert e.value.errno == errno.ENOSPC
    err = _files._write_error(e.value, "/dev/full")
    assert isinstance(err, FormatError) and "/dev/full" in str(err)


def test_other_os_errors_pass_unchanged(tmp_path, monkeypatch):
    def bad(fd):
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(_files.os, "fsync", bad)
    with pytest.raises(OSError) as e:
        atomic_write_text(tmp_path / "x", "y")
    assert e.value.errno == errno.EIO and not isinstance(e.value, LiprobeError)
    assert os.listdir(tmp_path) == []


# -- CSV injection -----------------------------------------------------------------------

@pytest.mark.parametrize("value, cell", [
    ("=1+2", "'=1+2"), ("+1", "+1"), ("-1", "-1"), ("-1+1", "'-1+1"), ("@SUM(A1)", "'@SUM(A1)"),
    ("\tx", "'\tx"), ("\rx", "'\rx"), ("run1", "run1"), ("a=b", "a=b"), ("", ""),
])
def test_csv_safe(value, cell):
    assert csv_safe(value) == cell


def test_csv_safe_frame_touches_text_only(tmp_path):
    df = pd.DataFrame({"run": ["=HYPERLINK(\"http://x\")", "ok", None],
                       "tag_site": ["-2+3", "@x", "plain"],
                       "li_at_pct": [-1.5, 2.0, np.nan]}, index=["=i", "j", "k"])
    safe = csv_safe_frame(df)
    assert list(safe["run"].iloc[:2]) == ["'=HYPERLINK(\"http://x\")", "ok"]
    assert pd.isna(safe["run"].iloc[2])
    assert list(safe["tag_site"]) == ["'-2+3", "'@x", "plain"]
    assert safe["li_at_pct"].iloc[0] == -1.5
    assert list(safe.index) == ["'=i", "j", "k"]
    assert df["run"].iloc[0].startswith("=")                  # the input is not changed
    text = safe.to_csv(index=False)
    back = pd.read_csv(pd.io.common.StringIO(text))
    assert back["run"].iloc[0] == "'=HYPERLINK(\"http://x\")"
    assert back["li_at_pct"].iloc[0] == -1.5


def test_stale_temp_cleanup_touches_only_this_names_files(tmp_path):
    """Writing ``a`` removes ``a``'s stale temporary files, never those of ``a.b.pos``
    (whose name starts with ``a.``), however old."""
    other = tmp_path / ".a.b.pos.p1-deadbeef.xyz12345.tmp"
    mine = tmp_path / ".a.p999999999-deadbeef.abcd1234.tmp"
    for f in (other, mine):
        f.write_text("x")
        os.utime(f, (time.time() - 7200, time.time() - 7200))
    atomic_write_text(tmp_path / "a", "new")
    assert other.exists() and not mine.exists()
    assert (tmp_path / "a").read_text() == "new"


def test_numbers_written_as_text_are_not_neutralised():
    for v in ("-0.5", "-0.012 +/- 0.05", "+3e-4", "-.5"):
        assert csv_safe(v) == v
    for v in ("-1+2", "-cmd", "=1", "+A1", "@SUM(A1)"):
        assert csv_safe(v) == "'" + v
