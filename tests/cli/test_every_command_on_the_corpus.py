"""Every analysis command on every malformed ion file of the corpus (tests/io/corpus):
it finishes, and a refusal is one line naming the file (issue 27). The commands' own
analyses raise errors about arrays, which know no file: the command line names FILE."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from click.testing import CliRunner

from liprobe.cli import cli

CORPUS = Path(__file__).parents[1] / "io" / "corpus"
ION_FILES = sorted(p.name for p in CORPUS.iterdir() if p.suffix in (".pos", ".epos", ".apt"))

#: (command, its arguments after FILE); {r} is a range file, {o} an output folder
COMMANDS = [
    ("info", []), ("spectrum", ["-r", "{r}"]), ("composition", ["-r", "{r}"]),
    ("correlation", []), ("history", []), ("detector-map", ["-o", "{o}/dm.png"]),
    ("reconstruct", ["--atomic-volume", "0.01", "--radius", "shank:10:20", "-o", "{o}/r.pos"]),
    ("profile", ["-r", "{r}"]), ("fda", ["-r", "{r}", "--species", "Li"]), ("autorange", []),
    ("coating", ["-r", "{r}"]), ("field", ["-r", "{r}"]), ("export", ["-o", "{o}/x.apt"]),
    ("kingham", ["-r", "{r}"]), ("neighbours", ["-r", "{r}", "--from", "Li", "--to", "O"]),
    ("map2d", ["-r", "{r}", "--species", "Li"]),
]

RRNG = """[Ions]
Number=3
Ion1=Li
Ion2=O
Ion3=Cr
[Ranges]
Number=4
Range1=6.9 7.2 Vol:0.013 Li:1 Color:FF0000
Range2=15.9 16.1 Vol:0.015 O:1 Color:0000FF
Range3=25.9 26.1 Vol:0.012 Cr:1 Color:00FF00
Range4=51.9 52.1 Vol:0.012 Cr:1 Color:00FF00
"""


@pytest.fixture(scope="module")
def ranges(tmp_path_factory):
    p = tmp_path_factory.mktemp("corpus-ranges") / "li-o.rrng"
    p.write_text(RRNG)
    return p


@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", ION_FILES)
def test_every_command_finishes_and_a_refusal_names_the_file(name, ranges, tmp_path):
    path = CORPUS / name
    bad = []
    for cmd, extra in COMMANDS:
        args = [cmd, str(path)] + [a.format(r=ranges, o=tmp_path) for a in extra]
        with warnings.catch_warnings():
            warnings.simplefilter("error")               # a Python warning is a failure
            res = CliRunner().invoke(cli, args)
        if res.exception is not None and not isinstance(res.exception, SystemExit):
            bad.append(f"{cmd}: {type(res.exception).__name__}: {res.exception}")
            continue
        errors = [ln for ln in res.stderr.splitlines() if not ln.startswith("warning:")]
        if res.exit_code == 1:
            named = tuple(f"liprobe: error: {f}" for f in (path, ranges, tmp_path))
            if len(errors) != 1 or not errors[0].startswith(named):
                bad.append(f"{cmd}: {res.stderr!r}")
        elif res.exit_code not in (0, 2):
            bad.append(f"{cmd}: exit {res.exit_code}: {res.stderr!r}")
        assert "Traceback" not in res.stderr, (cmd, res.stderr)
        assert "Warning:" not in res.stderr, (cmd, res.stderr)    # no Python warning
    assert not bad, "\n".join(bad)
