"""What every command shares: error handling, strict JSON, number parsing."""

from __future__ import annotations

import json
import os
import sys

import click

from ..errors import LiprobeError
from ..io._files import to_jsonable

__all__ = ["LiprobeGroup", "echo_json", "Number"]


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


#: Files of at least this many ions get a progress bar (on a terminal, without --quiet).
PROGRESS_MIN_IONS = 5_000_000
#: Environment variable that overrides :data:`PROGRESS_MIN_IONS` (a whole number of ions).
PROGRESS_MIN_IONS_ENV = "LIPROBE_PROGRESS_MIN_IONS"


def progress_min_ions() -> int:
    """:data:`PROGRESS_MIN_IONS`, or the value of ``LIPROBE_PROGRESS_MIN_IONS`` when set."""
    text = os.environ.get(PROGRESS_MIN_IONS_ENV, "").strip()
    if not text:
        return PROGRESS_MIN_IONS
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not (0 <= value < 1e18 and value == int(value)):       # inf and NaN too
        raise click.UsageError(f"{PROGRESS_MIN_IONS_ENV} must be a whole number of ions, "
                               f"got '{text}'")
    return int(value)


def progress_bar(n_ions: int, quiet: bool, desc: str):
    """A tqdm bar of ``n_ions`` on stderr, or None: only on a terminal, without --quiet,
    for a file of at least :func:`progress_min_ions` ions."""
    if quiet or not sys.stderr.isatty() or n_ions < progress_min_ions():
        return None
    from tqdm import tqdm

    return tqdm(total=n_ions, desc=desc, unit=" ions", unit_scale=True, file=sys.stderr,
                dynamic_ncols=True)


class LiprobeGroup(click.Group):
    """A click group that turns LiprobeError (bad input) into one line and exit 1."""

    def invoke(self, ctx):
        first = ctx._protected_args if hasattr(ctx, "_protected_args") else \
            ctx.protected_args                   # click < 8.2
        args = [*first, *ctx.args]
        try:
            return super().invoke(ctx)
        except LiprobeError as e:
            text = str(e)
            if e.path is None:                   # an analysis of FILE's ions: name FILE
                file = self._input_file(ctx, args)
                if file:
                    text = f"{file}: {text}"
            click.echo(f"liprobe: error: {text}", err=True)
            sys.exit(1)
        except KeyboardInterrupt:
            # Ctrl-C: one line and the shell's code for SIGINT, no traceback; outputs are
            # written atomically, so nothing half-written is left
            click.echo("liprobe: interrupted", err=True)
            sys.exit(130)
        except BrokenPipeError:
            # stdout closed early (``liprobe info f --json | head``): not an error
            sys.stderr.close()
            sys.exit(0)
        except OSError as e:
            # writing an output file: permission denied, disk full, folder missing
            where = f"{e.filename}: " if getattr(e, "filename", None) else ""
            click.echo(f"liprobe: error: {where}{e.strerror or e}", err=True)
            sys.exit(1)


    def _input_file(self, ctx, args) -> str | None:
        """The FILE argument of the subcommand invoked with ``args``, or None (a command
        without one, or arguments that do not parse)."""
        if not args:
            return None
        try:
            cmd = self.get_command(ctx, args[0])
            if cmd is None or not any(p.name == "file" and isinstance(p, click.Argument)
                                      for p in cmd.params):
                return None
            sub = cmd.make_context(args[0], list(args[1:]), parent=ctx,
                                   resilient_parsing=True)
        except (click.ClickException, LiprobeError, ValueError, TypeError):
            return None
        file = sub.params.get("file")
        return str(file) if file else None


def given(ctx, names: dict) -> list[str]:
    """The options of ``names`` (parameter name -> option as written) set on the command
    line, rather than left at their default."""
    from click.core import ParameterSource

    return [opt for name, opt in names.items()
            if ctx.get_parameter_source(name) not in (None, ParameterSource.DEFAULT)]


def split_list(ctx, param, value):
    """Click callback: ``--opt A,B --opt C`` -> ``("A", "B", "C")``."""
    out = []
    for v in value:
        out += [s.strip() for s in v.split(",") if s.strip()]
    return tuple(out)


def element_list(ctx, param, value):
    """Click callback: ``--opt Li,Ni --opt O`` -> ``("Li", "Ni", "O")``, each a chemical element."""
    from ..chemistry import is_element

    els = split_list(ctx, param, value)
    for el in els:
        if not is_element(el):
            raise click.BadParameter(f"'{el}' is not a chemical element")
    return els


def each_checked(parse, param_hint: str):
    """A click callback for a repeatable option: ``parse(text)`` checks every value
    before any file is read; its ValueError becomes a usage error (exit 2)."""

    def callback(ctx, param, value):
        for text in value:
            try:
                parse(text)
            except ValueError as e:
                raise click.BadParameter(str(e), param_hint=param_hint) from None
        return value

    return callback


def figure_output(ctx, param, value):
    """Click callback: ``-o`` names a figure liprobe can write (``.png`` or ``.svg``)."""
    if value is None:
        return None
    from ..plots import figure_format

    try:
        figure_format(value)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="-o") from None
    return value


def _parse_roi_option(ctx, param, value):
    if value is None:
        return None
    from ..spatial.roi import parse_roi

    center = ctx.params.get("center")
    try:
        return parse_roi(value, center)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None


def parse_xy(unit: str):
    """A click callback reading ``X,Y`` (two numbers in ``unit``) into a tuple."""

    def callback(ctx, param, value):
        if value is None:
            return None
        try:
            x, y = (float(v) for v in value.split(","))
        except ValueError:
            raise click.BadParameter(f"'{value}' is not X,Y in {unit}") from None
        return (x, y)

    return callback


_parse_center = parse_xy("nm")


def _parse_segment_option(ctx, param, value):
    if value is None:
        return None
    from ..spatial.roi import parse_segment

    try:
        return parse_segment(value)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None


def selection_options(f):
    """Add ``--roi``, ``--center`` and ``--segment`` to an analysis command."""
    f = click.option("--segment", callback=_parse_segment_option, metavar="START:STOP",
                     help="Only ions START..STOP-1 in evaporation order (e.g. one laser-energy "
                          "section).")(f)
    f = click.option("--roi", callback=_parse_roi_option, metavar="SPEC",
                     help="Region of interest: cylinder:D[:L], sphere:D@X,Y,Z, "
                          "box:X0:X1:Y0:Y1:Z0:Z1 or core[:MARGIN] (nm). D is a diameter "
                          "(cylinder:25 = cylinder:d=25); r=R gives a radius "
                          "(cylinder:r=12.5, sphere:r=5@0,0,-20).")(f)
    f = click.option("--center", callback=_parse_center, is_eager=True, metavar="X,Y",
                     help="Axis of a cylinder ROI in nm (default: the data's median x, y).")(f)
    return f


def apply_selection(run, roi=None, segment=None, ranges=None, center=None):
    """The selected run and its description (see :func:`liprobe.spatial.roi.select`).

    ``center`` is the ``--center`` given: without a cylinder ROI nothing would use it,
    so it is a usage error (a command that uses it otherwise passes None)."""
    if center is not None and (roi is None or roi.kind != "cylinder"):
        raise click.UsageError("--center sets the axis of a cylinder ROI: add --roi "
                               "cylinder:D or drop --center")
    if roi is None and segment is None:
        return run, {"ions_selected": run.n_ions}
    from ..spatial.roi import select

    return select(run, roi, segment, ranges)


def selection_text(selection: dict) -> str | None:
    """One line saying which ions were selected (None when all were)."""
    parts = []
    if "segment" in selection:
        a, b = selection["segment"]
        parts.append(f"ions {a:,} to {b - 1:,} in evaporation order")
    kind = selection.get("kind")
    if kind is not None:
        from ..spatial.roi import describe_text

        parts.append(describe_text(selection))
    if not parts:
        return None
    return (f"selection: {'; '.join(parts)}: {selection['ions_selected']:,} ions")


def echo_selection(selection: dict | None) -> None:
    """Print :func:`selection_text` when ions were selected."""
    line = selection_text(selection or {})
    if line:
        click.echo(line)


def echo_bins(xname: str, xs, count_name: str, counts, elements, percent, error,
              width: int = 13) -> None:
    """The table of a profile or proxigram: position, counts, at.% +/- error per element
    (``n/a`` for a bin without atoms)."""
    import math

    click.echo(f"  {xname:>{width}} {count_name:>9}  " +
               "  ".join(f"{el + ' at.%':>16}" for el in elements))
    for i in range(len(xs)):
        cells = []
        for el in elements:
            p, e = percent[el][i], error[el][i]
            cells.append(f"{p:8.3f} +/- {e:5.3f}" if math.isfinite(p) else f"{'n/a':>16}")
        click.echo(f"  {xs[i]:{width}.2f} {int(counts[i]):9d}  " + "  ".join(cells))
