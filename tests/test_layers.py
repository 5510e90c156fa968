"""The package's layers, checked on the source: data flows one way.

Every import in ``src/liprobe`` is read from the syntax tree (imports inside
functions and ``if TYPE_CHECKING:`` blocks included) and checked against the
layer order written in the README:

    core -> io -> analyses (spectrum | spatial | field | fda | history)
         -> plots | simulate -> study -> report -> cli

A module may import its own component and any component of a lower layer;
never a higher layer, never another component of its own layer (siblings are
independent), never the package root (``from .. import _version`` is fine:
that is a module). There is no import cycle between modules.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
ROOT = "liprobe"

#: Lowest first. Each layer is a tuple of independent components (a module, or a
#: package with everything under it).
LAYERS: tuple[tuple[str, ...], ...] = (
    # core
    ("liprobe._version", "liprobe.errors", "liprobe._jit"),
    ("liprobe.chemistry", "liprobe.instruments", "liprobe.stats", "liprobe.run"),
    ("liprobe.rangetable", "liprobe.kingham"),
    ("liprobe.ranging",),
    ("liprobe.composition",),
    # io
    ("liprobe.io",),
    # analyses
    ("liprobe.spectrum", "liprobe.spatial", "liprobe.field", "liprobe.fda", "liprobe.history"),
    # figures of one analysis, and the simulator
    ("liprobe.plots", "liprobe.simulate"),
    ("liprobe.study",),
    ("liprobe.report",),
    ("liprobe.cli",),
    ("liprobe.__main__",),
)


def _short(module: str) -> str:
    return module[len(ROOT) + 1:] if module.startswith(ROOT + ".") else module


def source_modules(src: Path = SRC) -> dict[str, Path]:
    """``{"liprobe.spectrum.peaks": path}`` for every module of the package."""
    out = {}
    for p in sorted((src / ROOT).rglob("*.py")):
        parts = p.relative_to(src).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


def imports_of(module: str, path: Path, known: set[str]) -> set[str]:
    """The liprobe modules that ``module`` imports anywhere in its file."""
    is_package = path.name == "__init__.py"
    package = module if is_package else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == ROOT)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != ROOT:
                continue
            # ``from pkg import sub``: the submodule; ``from mod import name``: the module
            subs = [f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in known]
            found.update(subs if len(subs) == len(node.names) else subs + [target])
    found.discard(module)
    return found


def _component(module: str) -> tuple[int, str] | None:
    for level, layer in enumerate(LAYERS):
        for comp in layer:
            if module == comp or module.startswith(comp + "."):
                return level, comp
    return None


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
    """One sentence per import that goes against :data:`LAYERS`."""
    problems = []
    for module in sorted(graph):
        if module == ROOT:
            continue
        here = _component(module)
        if here is None:
            problems.append(f"{_short(module)} is in no layer: add it to LAYERS in "
                            "tests/test_layers.py and to the README's layout")
            continue
        for target in sorted(graph[module]):
            if target == ROOT:
                problems.append(f"{_short(module)} imports the package root 'liprobe' "
                                "(import the module it needs, e.g. liprobe._version)")
                continue
            there = _component(target)
            if there is None or there[1] == here[1]:
                continue
            if there[0] > here[0]:
                problems.append(f"{_short(module)} imports {_short(target)} "
                                f"({_short(there[1])} is above {_short(here[1])})")
            elif there[0] == here[0]:
                problems.append(f"{_short(module)} imports {_short(target)} "
                                f"({_short(there[1])} and {_short(here[1])} are independent "
                                "components of one layer)")
    return problems


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Cycles of the module graph (one per strongly connected component with >1 module)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:        # Tarjan; the package is small enough for recursion
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


@pytest.fixture(scope="module")
def graph():
    mods = source_modules()
    known = set(mods)
    return {m: imports_of(m, p, known) for m, p in mods.items()}


def test_every_import_follows_the_layers(graph):
    problems = layer_violations(graph)
    assert not problems, "imports against the layers:\n  " + "\n  ".join(problems)


def test_there_is_no_import_cycle(graph):
    cycles = import_cycles(graph)
    assert not cycles, "import cycles:\n  " + "\n  ".join(
        " <-> ".join(_short(m) for m in c) for c in cycles)


def readme_layout_rows(readme: str) -> list[list[str]]:
    """The components named in each row of the README's layout table, in order."""
    known = {_short(c) for layer in LAYERS for c in layer}
    lines = readme[readme.index("## Layout"):].splitlines()
    table = [ln for ln in lines if ln.startswith("| ")]
    rows = []
    for line in table[1:]:                      # the header row is not a layer
        names = []
        for n in re.findall(r"`([\w.]+)/?`", line):
            if n in known and n not in names:
                names.append(n)
        rows.append(names)
    return rows


def test_the_readme_layout_table_is_the_layer_order():
    rows = readme_layout_rows((SRC.parent / "README.md").read_text(encoding="utf-8"))
    written = [n for row in rows for n in row]
    level = {_short(c): i for i, layer in enumerate(LAYERS) for c in layer}
    assert sorted(written) == sorted(level), \
        f"the README's layout names {sorted(written)}, LAYERS {sorted(level)}"
    order = [level[n] for n in written]
    assert order == sorted(order), "the README's layout table lists the components as\n  " + \
        " ".join(written) + "\nout of the order of tests/test_layers.py's LAYERS"
    row_of = {n: i for i, row in enumerate(rows) for n in row}
    for layer in LAYERS:
        assert len({row_of[_short(c)] for c in layer}) == 1, \
            f"the README splits the layer {[_short(c) for c in layer]} over several rows"


# -- the checker itself fails where it must ------------------------------------

def test_an_upward_import_is_named_with_both_modules(graph):
    g = {k: set(v) for k, v in graph.items()}
    g["liprobe.study.engine"].add("liprobe.cli._common")
    assert layer_violations(g) == ["study.engine imports cli._common (cli is above study)"]


def test_a_sibling_import_and_a_root_import_are_named(graph):
    g = {k: set(v) for k, v in graph.items()}
    g["liprobe.spectrum.peaks"].add("liprobe.spatial.roi")
    g["liprobe.report.build"].add("liprobe")
    assert layer_violations(g) == [
        "report.build imports the package root 'liprobe' (import the module it needs, "
        "e.g. liprobe._version)",
        "spectrum.peaks imports spatial.roi (spatial and spectrum are independent components "
        "of one layer)",
    ]


def test_a_module_in_no_layer_is_named(graph):
    g = {k: set(v) for k, v in graph.items()}
    g["liprobe.newthing"] = set()
    assert layer_violations(g) == ["newthing is in no layer: add it to LAYERS in "
                                   "tests/test_layers.py and to the README's layout"]


def test_imports_inside_functions_and_from_the_root_are_seen(tmp_path):
    pkg = tmp_path / ROOT
    (pkg / "study").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "_version.py").write_text("__version__ = '0'\n")
    (pkg / "study" / "__init__.py").write_text("")
    (pkg / "study" / "engine.py").write_text(
        "from .. import _version\n"
        "def f():\n    from ..cli._common import to_jsonable\n"
        "def g():\n    from .. import __version__\n")
    (pkg / "cli").mkdir()
    (pkg / "cli" / "__init__.py").write_text("")
    (pkg / "cli" / "_common.py").write_text("")
    mods = source_modules(tmp_path)
    found = imports_of("liprobe.study.engine", mods["liprobe.study.engine"], set(mods))
    assert found == {"liprobe._version", "liprobe.cli._common", "liprobe"}


def test_a_cycle_is_found():
    g = {"liprobe.a": {"liprobe.b"}, "liprobe.b": {"liprobe.c"}, "liprobe.c": {"liprobe.a"},
         "liprobe.d": {"liprobe.a"}}
    assert import_cycles(g) == [["liprobe.a", "liprobe.b", "liprobe.c"]]
