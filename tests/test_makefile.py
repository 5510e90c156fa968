"""The README's two commands: `make demo` installs only what the demo needs and says what it
is doing; `make test` adds the test tools."""

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _dry_run(target: str, tmp_path) -> str:
    if shutil.which("make") is None:
        pytest.skip("no make on this machine")
    p = subprocess.run(["make", "-n", target, f"VENV={tmp_path / 'venv'}"], cwd=REPO,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return p.stdout


def test_make_demo_installs_liprobe_without_the_test_tools(tmp_path):
    out = _dry_run("demo", tmp_path)
    assert "pip install --quiet -e .\n" in out
    assert "[test" not in out and "lint]" not in out
    # every long step is announced by a line
    assert "make: creating" in out and "make: running liprobe demo" in out
    assert "liprobe demo -o" in out


def test_make_test_adds_the_test_and_lint_tools(tmp_path):
    out = _dry_run("test", tmp_path)
    assert 'pip install --quiet -e ".[test,lint]"' in out
    assert "make: installing the test and lint tools" in out
    assert "-m pytest -q" in out
