"""The corpus of small malformed files (issue "Reliability"): each gives its expected outcome.

``tests/io/corpus/`` holds hand-made broken ``.pos``, ``.epos``, ``.apt``, ``.rrng``,
``.rng`` files and study manifests, written by ``make_corpus.py`` (deterministic; the
files are committed), and ``expected.toml``: for each, a clean error naming a phrase, a
warning, or a file that loads (``partial``: a manifest whose run fails). Every case runs
the command line in this process (``liprobe info FILE``; a manifest, ``liprobe study
FILE -o OUT --workers 0``) and checks the exit code, that stderr holds exactly the
expected lines (one for an error, naming the file) and no traceback, and the phrase; an
error is also checked on the Python API (liprobe's error type, the same phrase).

A case marked ``defect`` crashes today (a Python exception that is not liprobe's): it
is an expected failure, strict, so that the fix shows up here.
"""

from __future__ import annotations

import importlib.util
import re
import tomllib
import traceback
import warnings
from pathlib import Path

import pytest
from click.testing import CliRunner

import liprobe
from liprobe.cli import cli
from liprobe.errors import LiprobeError
from liprobe.study.manifest import load_manifest

CORPUS = Path(__file__).resolve().parent / "corpus"
EXPECTED = tomllib.loads((CORPUS / "expected.toml").read_text(encoding="utf-8"))
OUTCOMES = ("error", "warning", "ok", "partial")
#: The whole folder stays small (it is committed).
MAX_CORPUS_BYTES = 300_000


def _load_make_corpus():
    spec = importlib.util.spec_from_file_location("_liprobe_make_corpus",
                                                  CORPUS / "make_corpus.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


make_corpus = _load_make_corpus()


def _cases() -> list:
    out = []
    for name, case in EXPECTED.items():
        marks = []
        if "defect" in case:
            marks.append(pytest.mark.xfail(strict=True, reason=case["defect"]))
        out.append(pytest.param(name, case, id=name, marks=marks))
    return out


def _path(name: str, case: dict, tmp_path) -> Path:
    if case.get("generated"):
        return make_corpus.build(name, tmp_path)
    return CORPUS / name


def _invoke(args):
    """``liprobe ARGS`` in this process (as tests/cli/_run.py does): the click result; a
    crash (an exception other than SystemExit) fails the test with its traceback."""
    res = CliRunner().invoke(cli, list(map(str, args)))
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        tb = "".join(traceback.format_exception(res.exception))
        pytest.fail(f"liprobe {' '.join(map(str, args))} crashed:\n{tb}")
    return res


def _command(path: Path, tmp_path) -> list:
    if path.suffix == ".toml":
        return ["study", path, "-o", tmp_path / "out", "--workers", "0", "-q"]
    return ["info", path]


def _api(path: Path):
    """The Python reader of ``path``, every column read (ion files are converted lazily:
    a non-finite value raises when its column is first read)."""
    if path.suffix == ".toml":
        return load_manifest(path)
    if path.suffix in (".rrng", ".rng"):
        return liprobe.read_ranges(path)
    run = liprobe.read(path)
    for c in run.columns:
        assert len(run[c]) == run.n_ions
    return run


def test_expected_table_is_well_formed():
    for name, case in EXPECTED.items():
        assert case["outcome"] in OUTCOMES, name
        assert isinstance(case["phrase"], str), name
        assert case["phrase"] or "defect" in case, f"{name}: no phrase"
        assert set(case) <= {"outcome", "phrase", "note", "defect", "generated"}, name
        if case["outcome"] == "partial":
            assert name.endswith(".toml"), name
    counts = {o: sum(c["outcome"] == o for c in EXPECTED.values()) for o in OUTCOMES}
    assert counts["error"] and counts["warning"] and counts["ok"], counts


def test_corpus_folder_is_what_make_corpus_writes():
    """Every case of expected.toml is a file of the folder (or built at test time), the
    files are byte for byte what make_corpus.py writes, and the folder stays small."""
    committed = set(make_corpus.CASES)
    assert set(EXPECTED) == committed | set(make_corpus.LARGE)
    assert {n for n, c in EXPECTED.items() if c.get("generated")} == set(make_corpus.LARGE)
    on_disk = {p.name for p in CORPUS.iterdir()
               if p.is_file() and p.name not in ("make_corpus.py", "expected.toml")}
    assert on_disk == committed
    for name, data in make_corpus.CASES.items():
        assert (CORPUS / name).read_bytes() == data, f"{name}: run make_corpus.py again"
    total = sum(p.stat().st_size for p in CORPUS.iterdir() if p.is_file())
    assert total < MAX_CORPUS_BYTES


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name, case", _cases())
def test_corpus_case_on_the_command_line(name, case, tmp_path):
    path = _path(name, case, tmp_path)
    res = _invoke(_command(path, tmp_path))
    out, err, phrase = res.stdout, res.stderr, case["phrase"]
    assert "Traceback" not in out + err
    lines = err.splitlines()
    outcome = case["outcome"]
    if outcome == "error":
        assert res.exit_code == 1, (res.exit_code, out, err)
        assert len(lines) == 1, err
        assert lines[0].startswith(f"liprobe: error: {path}"), lines[0]
        assert phrase in lines[0]
        assert out == ""
    elif outcome == "partial":
        assert res.exit_code == 3, (res.exit_code, out, err)
        failed = [ln for ln in lines if re.match(r"study: \[\d+/\d+\] \S+: failed", ln)]
        assert len(failed) == 1 and phrase in failed[0], err
        assert lines[-1].startswith("liprobe: study partial: 1 of 1 rows failed"), err
        assert len(lines) == 2, err
    else:
        assert res.exit_code == 0, (res.exit_code, out, err)
        assert err == ""
        if outcome == "warning":
            said = [ln.strip() for ln in out.splitlines() if ln.strip().startswith("warning:")]
            assert any(phrase in w for w in said), said
        else:
            assert phrase in out
            assert "warning:" not in out


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name, case", _cases())
def test_corpus_case_on_the_api(name, case, tmp_path):
    path = _path(name, case, tmp_path)
    phrase = case["phrase"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if case["outcome"] == "error":
            with pytest.raises(LiprobeError) as e:
                _api(path)
            msg = str(e.value)
            assert phrase in msg and "\n" not in msg
            return
        try:
            got = _api(path)
        except LiprobeError as e:
            if name == "epos_nan_tof.epos":     # `info` reads mass and x y z only
                assert "tof of ion 1 is not a finite number" in str(e)
                return
            raise
    if case["outcome"] == "partial":
        problems = [r.problem for r in got.runs if r.problem]
        # a missing, folder or wrong-format data file is found when the run is analysed
        assert not problems or phrase in problems[0]
    elif case["outcome"] == "warning":
        assert any(phrase in w for w in got.warnings), got.warnings
    elif name.endswith((".rrng", ".rng")):
        assert not got.warnings
