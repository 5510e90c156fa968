"""The ``liprobe`` command line.

Each command is a few lines: read, call one analysis, print or save. Bad
input gives one line on stderr and exit code 1; usage errors exit 2.
"""

from __future__ import annotations

import click

from .. import __version__
from ._common import LiprobeGroup
from .composition import composition
from .info import info


@click.group(cls=LiprobeGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="liprobe")
def cli():
    """liprobe: atom probe tomography of battery materials."""


cli.add_command(info)
cli.add_command(composition)


def main():
    cli(prog_name="liprobe")
