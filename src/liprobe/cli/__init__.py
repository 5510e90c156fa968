"""The ``liprobe`` command line.

Each command is a few lines in its own module: read, call one analysis, print
or save. Commands are imported only when run, so ``liprobe info`` starts fast.
Bad input gives one line on stderr and exit code 1; usage errors exit 2.
"""

from __future__ import annotations

import importlib

import click

from .._version import __version__
from ._common import LiprobeGroup

#: command name -> "module:function" inside liprobe.cli
COMMANDS = {
    "info": "info:info",
    "export": "export:export",
    "composition": "composition:composition",
    "fda": "fda:fda",
    "field": "field:field",
    "kingham": "kingham:kingham",
    "detector-map": "detector_map:detector_map",
    "coating": "coating:coating",
    "profile": "profile:profile",
    "isosurface": "isosurface:isosurface",
    "proxigram": "proxigram:proxigram",
    "neighbours": "neighbours:neighbours",
    "clusters": "clusters:clusters",
    "rdf": "rdf:rdf",
    "map2d": "map2d:map2d",
    "slice": "slice:slice_",
    "simulate": "simulate:simulate",
    "reconstruct": "reconstruct:reconstruct",
    "history": "history:history",
    "spectrum": "spectrum:spectrum",
    "autorange": "autorange:autorange",
    "correlation": "correlation:correlation",
    "study": "study:study",
    "report": "report:report",
    "view": "view:view",
    "demo": "demo:demo",
}


class LazyGroup(LiprobeGroup):
    """Imports a command's module only when that command is asked for."""

    def list_commands(self, ctx):
        return sorted(COMMANDS)

    def get_command(self, ctx, name):
        target = COMMANDS.get(name)
        if target is None:
            return None
        module, func = target.split(":")
        return getattr(importlib.import_module(f"{__name__}.{module}"), func)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="liprobe")
def cli():
    """liprobe: atom probe tomography of battery materials."""


def main():
    cli(prog_name="liprobe")
