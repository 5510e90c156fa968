"""What the command-line tests share: running a command in this process, strict JSON."""

from __future__ import annotations

import json

from click.testing import CliRunner

from liprobe.cli import cli


def run_cli(*args):
    """``liprobe ARGS`` in this process: (exit code, stdout, stderr)."""
    res = CliRunner().invoke(cli, list(map(str, args)))
    return res.exit_code, res.stdout, res.stderr


def strict_json(text):
    """``json.loads`` that refuses NaN and Infinity (our JSON is strict)."""
    def no_constants(c):
        raise AssertionError(f"non-strict JSON constant {c}")
    return json.loads(text, parse_constant=no_constants)
