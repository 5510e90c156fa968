"""What every command shares: error handling, strict JSON, number parsing."""

from __future__ import annotations

import json
import math
import sys

import click
import numpy as np

from ..errors import LiprobeError

__all__ = ["LiprobeGroup", "echo_json", "to_jsonable", "Number"]


def to_jsonable(obj):
    """Convert numpy scalars/arrays and tuples to plain JSON types; NaN/inf become None."""
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


def echo_json(obj) -> None:
    """Print one strict JSON object (no NaN) on stdout."""
    click.echo(json.dumps(to_jsonable(obj), allow_nan=False, indent=2))


class Number(click.ParamType):
    """A number that accepts ``2e6`` for integer options."""

    name = "number"

    def __init__(self, integer: bool = False):
        self.integer = integer

    def convert(self, value, param, ctx):
        if isinstance(value, (int, float)):
            v = value
        else:
            try:
                v = float(value)
            except ValueError:
                self.fail(f"'{value}' is not a number", param, ctx)
        if self.integer:
            if not float(v).is_integer():
                self.fail(f"'{value}' is not a whole number", param, ctx)
            return int(v)
        return float(v)


class LiprobeGroup(click.Group):
    """A click group that turns LiprobeError (bad input) into one line and exit 1."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except LiprobeError as e:
            click.echo(f"liprobe: error: {e}", err=True)
            sys.exit(1)
        except OSError as e:
            # writing an output file: permission denied, disk full, folder missing
            where = f"{e.filename}: " if getattr(e, "filename", None) else ""
            click.echo(f"liprobe: error: {where}{e.strerror or e}", err=True)
            sys.exit(1)
