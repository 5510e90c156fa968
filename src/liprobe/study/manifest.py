"""The study manifest: one TOML file naming the runs and how to analyse them.

The format is DESIGN.md's; ``examples/study.toml`` documents every key. A
manifest has three parts:

``[study]``
    Parameters shared by every run: ``name``, ``roi``, ``exclude``,
    ``ratios``, ``field_proxies``, ``fda``, ``detector``, ``coating_profile``,
    ``reference_peaks``, ``peak_presence_sigma`` and the flag thresholds
    ``[study.flags]`` (:class:`FlagRules`).
``[materials.NAME]``
    ``formula`` of each phase a run may be expected to be, and against which
    runs are matched (``other_phase``).
``[[runs]]``
    One per run: ``data``, ``ranges`` or ``autorange``, metadata
    (``material``, ``coating``, ``laser_pj``, ``particle``, ``instrument``,
    ``tags``), an optional ``roi`` and optional ``segments``.

Paths are relative to the manifest's folder. An error in ``[study]``,
``[materials]`` or the TOML itself stops the study (:class:`ManifestError`,
naming the line and the key); an error inside one ``[[runs]]`` entry fails
that run only (its :attr:`RunSpec.problem`), so the other runs still complete.
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from dataclasses import dataclass, field, fields, replace

from ..errors import LiprobeError
from ..fda import MAX_SHUFFLES
from ..io._files import check_regular
from ._tomlpos import key_lines, locate

__all__ = ["ManifestError", "FdaConfig", "DetectorConfig", "CoatingProfileConfig", "FlagRules",
           "StudyParams", "RunSpec", "Manifest", "load_manifest", "parse_manifest",
           "OUTCOMES_FRACTURED", "OUTCOMES_COMPLETE", "run_name_problem"]

#: ``tags.outcome`` values that mean the specimen fractured early / ran to its end.
OUTCOMES_FRACTURED = ("fractured", "early_fracture", "fracture")
OUTCOMES_COMPLETE = ("complete", "completed")


class ManifestError(LiprobeError):
    """The manifest cannot be used (TOML syntax, a bad key or value in ``[study]``...)."""


# --------------------------------------------------------------------------
# the parsed manifest
# --------------------------------------------------------------------------

@dataclass(frozen=True)
class FdaConfig:
    """``[study] fda``: frequency distribution analysis of each species (see :mod:`liprobe.fda`)."""

    species: tuple = ()
    block: int = 100
    shuffles: int = 20
    seed: int = 0
    normalization: str = "solute"


@dataclass(frozen=True)
class DetectorConfig:
    """``[study] detector``: detector heterogeneity (see :mod:`liprobe.spatial.detector`).

    ``core`` is the detector area the heterogeneity is taken over: a fraction
    of the detector radius, the same for every run (default 0.4), or
    ``"coating"``: inside each coated run's coating ring, as ``liprobe
    detector-map`` does by default. A fixed fraction is the default because
    the heterogeneity grows with the area taken (the projection's radial
    fall-off counts too): with ``"coating"`` a coated run is judged inside its
    ring (about 0.45 of the radius for a 5 nm shell on a 30 nm apex) and an
    uncoated one over 0.8 of the radius, and the uncoated runs would look
    heterogeneous for that alone.
    """

    species: str | None = None
    core: float | str = 0.4
    bins: int = 128
    grid_bins: int = 32
    sample: int = 100_000
    seed: int = 0


@dataclass(frozen=True)
class CoatingProfileConfig:
    """``[study] coating_profile``: the coating shell (see :mod:`liprobe.spatial.coating`)."""

    ions_per_slab: int = 40_000
    ring_nm: float = 0.5


@dataclass(frozen=True)
class FlagRules:
    """``[study.flags]``: thresholds of the batch-relative flags (see :mod:`liprobe.study.flags`).

    Attributes
    ----------
    min_reference_runs : int
        Fewest runs a batch median is taken over (else the flag falls back
        or is not judged, with a reason).
    delithiated_z : float
        Robust z (above the coated runs' median) from which detector
        heterogeneity, Li's FDA dispersion or the detector Li mu is "far above".
    mu_scale_min : float
        Smallest spread (absolute) of mu.
    dispersion_scale_min : float
        Smallest spread (absolute) of the FDA dispersion.
    heterogeneity_scale_min : float
        Smallest spread of the heterogeneity, relative to the coated median.
    off_stoichiometric_z : float
        Robust z of a ratio from which it is off the batch's band.
    off_stoichiometric_reference : str
        What ``off_stoichiometric`` compares a ratio with: ``"nominal"`` (the
        material's formula), ``"batch"`` (the runs of the same material and
        instrument) or ``"both"`` (either fires; the default).
    off_stoichiometric_min : float
        Smallest departure (absolute) from the nominal ratio that counts:
        ``max(off_stoichiometric_min, 3 sigma)``, sigma combining the run's
        counting error and the batch's spread.
    off_stoichiometric_oxygen : bool
        Judge ratios with O in them too (default off: O is lost in laser-pulsed
        oxides, a known bias, not a composition).
    ratio_scale_min : float
        Smallest spread of a ratio (absolute): APT biases are ~1e-2, far
        above counting errors (~1e-3), so a band narrower than this would
        flag ordinary runs.
    phase_trace : float
        Cation fraction from which an element the expected phase lacks counts.
    phase_margin : float
        How much closer (cation distance) another phase must be to be named
        when the peaks alone do not decide.
    """

    min_reference_runs: int = 3
    delithiated_z: float = 5.0
    mu_scale_min: float = 0.02
    dispersion_scale_min: float = 0.1
    heterogeneity_scale_min: float = 0.1
    off_stoichiometric_z: float = 3.5
    off_stoichiometric_reference: str = "both"
    off_stoichiometric_min: float = 0.03
    off_stoichiometric_oxygen: bool = False
    ratio_scale_min: float = 0.01
    phase_trace: float = 0.02
    phase_margin: float = 0.1


@dataclass(frozen=True)
class StudyParams:
    """What every run's analysis needs: the parameters of ``[study]`` (picklable)."""

    roi: str | None = "cylinder:25"
    exclude: tuple = ()
    ratios: tuple = ()
    field_proxies: tuple = ("O2+/O+",)
    fda: FdaConfig = field(default_factory=FdaConfig)
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    coating_profile: CoatingProfileConfig = field(default_factory=CoatingProfileConfig)
    reference_peaks: tuple = ()
    peak_presence_sigma: float = 5.0

    def to_dict(self) -> dict:
        """Plain JSON types (for the cache key and records)."""
        def conv(v):
            if hasattr(v, "__dataclass_fields__"):
                return {f.name: conv(getattr(v, f.name)) for f in fields(v)}
            if isinstance(v, tuple):
                return [conv(x) for x in v]
            return v
        return conv(self)


@dataclass(frozen=True)
class RunSpec:
    """One row of the study: a run, or one segment of a run (picklable).

    Attributes
    ----------
    run : str
        The run's name (``[[runs]] name``).
    entry : int
        Index of the run's ``[[runs]]`` entry in the manifest.
    segment : int or None
        Index of the segment in the run's ``segments``, None for a whole run.
    start, stop : int or None
        Ion indices of the segment (``stop`` None: to the end).
    data, ranges : str or None
        Absolute paths.
    autorange : tuple of str or None
        Elements to range automatically instead of ``ranges``.
    roi : str or None
        The ROI of this run (its own ``roi`` or the study's).
    coating : str
        The coating element, or ``"none"``.
    material : str or None
        The phase the analyst expects.
    metadata : tuple of (str, value)
        Table columns from the manifest (``material``, ``laser_pj``, ``tag_*``...).
    line : int or None
        Line of the run in the manifest.
    problem : str or None
        Why this run cannot be analysed (a bad key or value in its entry).
    """

    run: str
    entry: int = 0
    segment: int | None = None
    start: int | None = None
    stop: int | None = None
    data: str | None = None
    ranges: str | None = None
    autorange: tuple | None = None
    roi: str | None = None
    coating: str = "none"
    material: str | None = None
    metadata: tuple = ()
    line: int | None = None
    data_line: int | None = None
    ranges_line: int | None = None
    problem: str | None = None

    @property
    def label(self) -> str:
        return self.run if self.segment is None else f"{self.run}[{self.segment}]"

    @property
    def coated(self) -> bool:
        return self.coating.lower() != "none"

    def meta(self) -> dict:
        return dict(self.metadata)

    def analysis_dict(self) -> dict:
        """What of the spec changes the analysis (for the cache key): not the metadata."""
        return {"segment": [self.start, self.stop], "roi": self.roi, "coating": self.coating,
                "autorange": list(self.autorange) if self.autorange else None}


@dataclass(frozen=True)
class Manifest:
    """A parsed study manifest."""

    path: str
    name: str
    params: StudyParams
    rules: FlagRules
    materials: dict
    runs: tuple
    lines: dict = field(default_factory=dict, repr=False, compare=False)

    def line_of(self, *path) -> int | None:
        return locate(self.lines, path)


# --------------------------------------------------------------------------
# parsing
# --------------------------------------------------------------------------

_STUDY_KEYS = ("name", "roi", "exclude", "ratios", "field_proxies", "fda", "detector",
               "coating_profile", "reference_peaks", "peak_presence_sigma", "flags")
_RUN_KEYS = ("name", "data", "ranges", "autorange", "material", "coating", "laser_pj",
             "particle", "instrument", "roi", "segments", "tags")
_SEGMENT_KEYS = ("start", "stop", "laser_pj", "name")
_MATERIAL_KEYS = ("formula",)


class _Bad(Exception):
    """A problem at a key path (turned into ManifestError or a run's problem)."""

    def __init__(self, path: tuple, problem: str):
        super().__init__(problem)
        self.path = path
        self.problem = problem


def _key_name(path: tuple) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def _where(lines, path) -> str | None:
    line = locate(lines, path)
    return None if line is None else f"line {line}"


def _type(v) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "an array", dict: "a table"}.get(type(v), type(v).__name__)


def _expect_str(v, path):
    if not isinstance(v, str):
        raise _Bad(path, f"must be a string, not {_type(v)}")
    return v


def _expect_int(v, path, lo=None, hi=None):
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    if isinstance(v, bool) or not isinstance(v, int):
        raise _Bad(path, f"must be an integer, not {_type(v)}")
    if lo is not None and v < lo:
        raise _Bad(path, f"must be at least {lo} (got {v})")
    if hi is not None and v > hi:
        raise _Bad(path, f"must be at most {hi:,} (got {v:,})")
    return v


def _expect_number(v, path, lo=None, positive=False):
    if isinstance(v, float) and not math.isfinite(v):
        raise _Bad(path, f"must be a finite number, not {v}")
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise _Bad(path, f"must be a number, not {_type(v)}")
    if isinstance(v, int) and not -1e300 < v < 1e300:     # float(v) would overflow
        raise _Bad(path, f"must be a finite number, not an integer of {len(str(abs(v)))} "
                         "digits")
    if positive and not v > 0:
        raise _Bad(path, f"must be positive (got {v})")
    if lo is not None and v < lo:
        raise _Bad(path, f"must be at least {lo} (got {v})")
    return float(v) if isinstance(v, float) else v


def _expect_list(v, path, item):
    if isinstance(v, str):
        v = [v]
    if not isinstance(v, list):
        raise _Bad(path, f"must be an array, not {_type(v)}")
    return tuple(item(x, path + (i,)) for i, x in enumerate(v))


def _expect_table(v, path, known):
    if not isinstance(v, dict):
        raise _Bad(path, f"must be a table, not {_type(v)}")
    for k in v:
        if k not in known:
            raise _Bad(path + (k,), f"unknown key (known: {', '.join(known)})")
    return v


def _roi(v, path):
    from ..spatial.roi import parse_roi

    try:
        parse_roi(_expect_str(v, path))
    except ValueError as e:
        raise _Bad(path, str(e)) from None
    return v


def _element(v, path):
    from ..chemistry import is_element

    if not is_element(_expect_str(v, path)):
        raise _Bad(path, f"'{v}' is not a chemical element")
    return v


def _atom_ratio(v, path):
    from ..chemistry import parse_ratio

    try:
        return parse_ratio(_expect_str(v, path)).text
    except ValueError as e:
        raise _Bad(path, str(e)) from None


def _ion_ratio(v, path):
    from ..field import parse_ion_ratio

    try:
        return parse_ion_ratio(_expect_str(v, path)).text
    except ValueError as e:
        raise _Bad(path, str(e)) from None


def _species(v, path):
    from ..chemistry import parse_species

    try:
        parse_species(_expect_str(v, path))
    except ValueError as e:
        raise _Bad(path, str(e)) from None
    return v.strip()


def _ion(v, path):
    from ..chemistry import parse_ion

    try:
        return parse_ion(_expect_str(v, path)).name
    except ValueError as e:
        raise _Bad(path, str(e)) from None


def _parse_study(d: dict) -> tuple[str, StudyParams, FlagRules]:
    p = ("study",)
    _expect_table(d, p, _STUDY_KEYS)
    name = _expect_str(d.get("name", ""), p + ("name",))
    kw: dict = {}
    if "roi" in d:
        kw["roi"] = None if d["roi"] in ("", "none") else _roi(d["roi"], p + ("roi",))
    if "exclude" in d:
        kw["exclude"] = _expect_list(d["exclude"], p + ("exclude",), _element)
    if "ratios" in d:
        kw["ratios"] = _expect_list(d["ratios"], p + ("ratios",), _atom_ratio)
    if "field_proxies" in d:
        kw["field_proxies"] = _expect_list(d["field_proxies"], p + ("field_proxies",), _ion_ratio)
    if "fda" in d:
        f = _expect_table(d["fda"], p + ("fda",), [x.name for x in fields(FdaConfig)])
        fk = {}
        if "species" in f:
            fk["species"] = _expect_list(f["species"], p + ("fda", "species"), _species)
        if "block" in f:
            fk["block"] = _expect_int(f["block"], p + ("fda", "block"), 1)
        if "shuffles" in f:
            fk["shuffles"] = _expect_int(f["shuffles"], p + ("fda", "shuffles"), 1, MAX_SHUFFLES)
        if "seed" in f:
            fk["seed"] = _expect_int(f["seed"], p + ("fda", "seed"), 0)
        if "normalization" in f:
            v = _expect_str(f["normalization"], p + ("fda", "normalization"))
            if v not in ("solute", "blocks", "ions"):
                raise _Bad(p + ("fda", "normalization"), "must be 'solute', 'blocks' or 'ions'")
            fk["normalization"] = v
        kw["fda"] = FdaConfig(**fk)
    if "detector" in d:
        f = _expect_table(d["detector"], p + ("detector",),
                          [x.name for x in fields(DetectorConfig)])
        fk = {}
        if "species" in f:
            fk["species"] = _species(f["species"], p + ("detector", "species"))
        for k, lo in (("bins", 1), ("grid_bins", 4), ("sample", 1), ("seed", 0)):
            if k in f:
                fk[k] = _expect_int(f[k], p + ("detector", k), lo)
        if "core" in f:
            c = f["core"]
            if c != "coating" and (isinstance(c, bool) or not isinstance(c, (int, float))
                                   or not 0 < c <= 1):
                raise _Bad(p + ("detector", "core"), "must be a fraction of the detector "
                                                     "radius in (0, 1] or \"coating\"")
            fk["core"] = c if c == "coating" else float(c)
        kw["detector"] = DetectorConfig(**fk)
    if "coating_profile" in d:
        f = _expect_table(d["coating_profile"], p + ("coating_profile",),
                          [x.name for x in fields(CoatingProfileConfig)])
        fk = {}
        if "ions_per_slab" in f:
            fk["ions_per_slab"] = _expect_int(f["ions_per_slab"],
                                              p + ("coating_profile", "ions_per_slab"), 1)
        if "ring_nm" in f:
            fk["ring_nm"] = _expect_number(f["ring_nm"], p + ("coating_profile", "ring_nm"),
                                           positive=True)
        kw["coating_profile"] = CoatingProfileConfig(**fk)
    if "reference_peaks" in d:
        kw["reference_peaks"] = _expect_list(d["reference_peaks"], p + ("reference_peaks",), _ion)
    if "peak_presence_sigma" in d:
        kw["peak_presence_sigma"] = _expect_number(d["peak_presence_sigma"],
                                                   p + ("peak_presence_sigma",), positive=True)
    rules = FlagRules()
    if "flags" in d:
        known = [x.name for x in fields(FlagRules)]
        f = _expect_table(d["flags"], p + ("flags",), known)
        rk = {}
        for k, v in f.items():
            if k == "min_reference_runs":
                rk[k] = _expect_int(v, p + ("flags", k), 1)
            elif k == "off_stoichiometric_reference":
                if _expect_str(v, p + ("flags", k)) not in ("nominal", "batch", "both"):
                    raise _Bad(p + ("flags", k), f"must be \"nominal\", \"batch\" or "
                                                 f"\"both\" (got {v!r})")
                rk[k] = v
            elif k == "off_stoichiometric_oxygen":
                if not isinstance(v, bool):
                    raise _Bad(p + ("flags", k), f"must be true or false, not {_type(v)}")
                rk[k] = v
            else:
                rk[k] = _expect_number(v, p + ("flags", k), lo=0)
        rules = FlagRules(**rk)
    return name, StudyParams(**kw), rules


def _parse_materials(d) -> dict:
    from .phases import builtin_phases, parse_stoichiometry

    out = dict(builtin_phases())
    if not isinstance(d, dict):
        raise _Bad(("materials",), f"must be a table of [materials.NAME], not {_type(d)}")
    for name, m in d.items():
        p = ("materials", name)
        _expect_table(m, p, _MATERIAL_KEYS)
        if "formula" not in m:
            raise _Bad(p, "needs a formula (e.g. formula = \"LiNi0.8Co0.1Mn0.1O2\")")
        f = _expect_str(m["formula"], p + ("formula",))
        try:
            parse_stoichiometry(f)
        except ValueError as e:
            raise _Bad(p + ("formula",), str(e)) from None
        out[name] = f
    return out


def _resolve(base: str, v, path) -> str:
    p = _expect_str(v, path)
    if not p.strip():
        raise _Bad(path, "is empty")
    return os.path.normpath(os.path.join(base, os.path.expanduser(p)))


def _parse_run(i: int, r, base: str, params: StudyParams, materials: dict, lines: dict
               ) -> list[RunSpec]:
    p = ("runs", i)
    name = r.get("name") if isinstance(r, dict) else None
    if not isinstance(name, str) or not name.strip():
        data = r.get("data") if isinstance(r, dict) else None
        name = (os.path.splitext(os.path.basename(data))[0] if isinstance(data, str) and data
                else f"run{i + 1}")
    spec = RunSpec(run=name, entry=i, line=locate(lines, p))
    try:
        _expect_table(r, p, _RUN_KEYS)
        if "name" in r:
            _expect_str(r["name"], p + ("name",))
        if "data" not in r:
            raise _Bad(p, "needs data = \"path/to/run.epos\"")
        data = _resolve(base, r["data"], p + ("data",))
        if ("ranges" in r) == ("autorange" in r):
            raise _Bad(p, "needs exactly one of ranges = \"FILE.rrng\" or autorange = "
                          "[\"Li\", \"Ni\", ...]")
        ranges = _resolve(base, r["ranges"], p + ("ranges",)) if "ranges" in r else None
        auto = (_expect_list(r["autorange"], p + ("autorange",), _element)
                if "autorange" in r else None)
        if auto is not None and not auto:
            raise _Bad(p + ("autorange",), "names no element")
        meta: dict = {}
        material = None
        if "material" in r:
            material = _expect_str(r["material"], p + ("material",))
            if material not in materials:
                raise _Bad(p + ("material",), f"unknown material '{material}' (declare it as "
                           f"[materials.{material}] with a formula; known: "
                           f"{', '.join(materials)})")
        meta["material"] = material
        coating = "none"
        if "coating" in r:
            coating = _expect_str(r["coating"], p + ("coating",))
            if coating.lower() != "none":
                _element(coating, p + ("coating",))
            else:
                coating = "none"
        meta["coating"] = coating
        meta["laser_pj"] = (float(_expect_number(r["laser_pj"], p + ("laser_pj",), lo=0))
                            if "laser_pj" in r else None)
        meta["particle"] = _expect_str(r["particle"], p + ("particle",)) if "particle" in r \
            else None
        meta["instrument"] = (_expect_str(r["instrument"], p + ("instrument",))
                              if "instrument" in r else None)
        roi = params.roi
        if "roi" in r:
            roi = None if r["roi"] in ("", "none") else _roi(r["roi"], p + ("roi",))
        tags = {}
        if "tags" in r:
            t = r["tags"]
            if not isinstance(t, dict):
                raise _Bad(p + ("tags",), f"must be a table, not {_type(t)}")
            for k, v in t.items():
                if not isinstance(v, (str, int, float, bool)):
                    raise _Bad(p + ("tags", k), f"must be a string, number or boolean, "
                                                f"not {_type(v)}")
                if not re.fullmatch(r"[A-Za-z0-9_]+", k):
                    raise _Bad(p + ("tags", k), "tag names are letters, digits and _")
                tags[k] = v
            if "outcome" in tags:
                o = str(tags["outcome"]).lower()
                if o not in OUTCOMES_FRACTURED + OUTCOMES_COMPLETE:
                    raise _Bad(p + ("tags", "outcome"),
                               f"'{tags['outcome']}' is not an outcome (write one of "
                               f"{', '.join(OUTCOMES_COMPLETE + OUTCOMES_FRACTURED)})")
        for k, v in tags.items():
            meta[f"tag_{k}"] = v
        spec = replace(spec, data=data, ranges=ranges, autorange=auto, roi=roi, coating=coating,
                       material=material, data_line=locate(lines, p + ("data",)),
                       ranges_line=locate(lines, p + (("ranges",) if ranges else
                                                      ("autorange",))))
        if "segments" not in r:
            return [replace(spec, metadata=tuple(meta.items()))]
        segs = r["segments"]
        if not isinstance(segs, list) or not segs:
            raise _Bad(p + ("segments",), "must be a non-empty array of tables "
                                          "({ start = 0, stop = 400000, laser_pj = 5 })")
        out = []
        for k, s in enumerate(segs):
            sp = p + ("segments", k)
            _expect_table(s, sp, _SEGMENT_KEYS)
            start = _expect_int(s.get("start", 0), sp + ("start",), 0)
            stop = _expect_int(s["stop"], sp + ("stop",), 0) if "stop" in s else None
            if stop is not None and stop <= start:
                raise _Bad(sp + ("stop",), f"must be greater than start ({start})")
            m = dict(meta)
            if "laser_pj" in s:
                m["laser_pj"] = float(_expect_number(s["laser_pj"], sp + ("laser_pj",), lo=0))
            m["segment_name"] = _expect_str(s["name"], sp + ("name",)) if "name" in s else None
            m["segment_start"] = start
            m["segment_stop"] = stop
            out.append(replace(spec, segment=k, start=start, stop=stop,
                               metadata=tuple(m.items()), line=locate(lines, sp)))
        return out
    except _Bad as e:
        where = _where(lines, e.path)
        msg = f"{where}: " if where else ""
        return [replace(spec, problem=f"{msg}key {_key_name(e.path)}: {e.problem}")]


def run_name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a run (None if it can): run names become file names in
    the output folder (``OUT/<run>.nxs``), so they hold no path separator and are not
    ``.`` or ``..``."""
    if "/" in name or "\\" in name or (os.altsep and os.altsep in name):
        return "has a path separator (a run name becomes a file name in the output folder)"
    if name.strip() in (".", "..") or name.startswith(".."):
        return "starts with '..' (a run name becomes a file name in the output folder)"
    if "\x00" in name:
        return "has a NUL character"
    return None


def parse_manifest(text: str, path: str = "study.toml") -> Manifest:
    """Parse a manifest's text; relative paths are taken from ``path``'s folder.

    Raises
    ------
    ManifestError
        TOML syntax, or a bad key or value outside ``[[runs]]``, naming the
        line and the key. Problems inside one ``[[runs]]`` entry are kept in
        that run's :attr:`RunSpec.problem`.
    """
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        msg = str(e)
        m = re.search(r"\(at line (\d+), column (\d+)\)", msg)
        where = f"line {m.group(1)}" if m else None
        problem = re.sub(r"\s*\(at line \d+, column \d+\)", "", msg) if m else msg
        raise ManifestError(f"not valid TOML: {problem}", path, where) from None
    except RecursionError:
        raise ManifestError("not a study manifest: arrays or tables nested too deep", path
                            ) from None
    except ValueError as e:        # an integer of more than 4,300 digits (Python's limit)
        what = ("an integer of more than 4,300 digits" if "digits" in str(e)
                else " ".join(str(e).split()))
        raise ManifestError(f"not a study manifest: {what}", path) from None
    lines = key_lines(text)
    base = os.path.dirname(os.path.abspath(path))
    try:
        for k in doc:
            if k not in ("study", "materials", "runs"):
                raise _Bad((k,), "unknown key (a manifest has [study], [materials.NAME] and "
                                 "[[runs]])")
        name, params, rules = _parse_study(doc.get("study", {}))
        materials = _parse_materials(doc.get("materials", {}))
        runs = doc.get("runs")
        if not isinstance(runs, list) or not runs:
            raise _Bad(("runs",), "the manifest has no [[runs]]")
    except _Bad as e:
        raise ManifestError(f"key {_key_name(e.path)}: {e.problem}", path,
                            _where(lines, e.path)) from None
    specs: list[RunSpec] = []
    seen: dict[str, int] = {}
    for i, r in enumerate(runs):
        for s in _parse_run(i, r, base, params, materials, lines):
            specs.append(s)
        nm = specs[-1].run
        why = run_name_problem(nm)
        if why is not None:
            raise ManifestError(f"key runs[{i}].name: run name '{nm}' {why}", path,
                                _where(lines, ("runs", i, "name")) or _where(lines, ("runs", i)))
        if nm in seen:
            raise ManifestError(f"key runs[{i}].name: run name '{nm}' is used twice "
                                f"(also runs[{seen[nm]}])", path,
                                _where(lines, ("runs", i, "name")) or _where(lines, ("runs", i)))
        seen[nm] = i
    return Manifest(path=os.path.abspath(path), name=name or os.path.splitext(
        os.path.basename(path))[0], params=params, rules=rules, materials=materials,
        runs=tuple(specs), lines=lines)


def load_manifest(path) -> Manifest:
    """Read and parse a manifest file (see :func:`parse_manifest`).

    Raises
    ------
    ManifestError
        The file cannot be read, or is not a usable manifest.
    """
    p = os.fspath(path)
    if os.path.exists(p):       # a missing file: "cannot read the manifest" below
        check_regular(p, ManifestError)     # a FIFO or a device would never end
    try:
        with open(p, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise ManifestError(f"cannot read the manifest ({e.strerror or e})", p) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ManifestError(f"not UTF-8 text (byte {e.start})", p) from None
    return parse_manifest(text, p)
