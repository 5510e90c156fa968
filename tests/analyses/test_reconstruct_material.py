"""`reconstruct --material`: a preset, any element, any formula with its values."""

import math

import pytest
from click.testing import CliRunner

from liprobe.cli import cli
from liprobe.instruments import material_for, material_values
from liprobe.spatial.reconstruct import ReconstructionParameters


@pytest.mark.parametrize("el, a_nm, atoms", [("Al", 0.40495, 4), ("Ni", 0.35240, 4),
                                             ("W", 0.31652, 2)])
def test_an_elements_atomic_volume_is_its_cells(el, a_nm, atoms):
    # Omega from density and molar mass against the cubic cell a^3 / atoms (fcc Al and Ni,
    # bcc W; lattice constants at room temperature, CRC Handbook)
    m = material_for(el, evaporation_field_V_per_nm=57.0 if el == "W" else None)
    assert m.atomic_volume_nm3 == pytest.approx(a_nm ** 3 / atoms, rel=0.01)
    if el != "W":
        assert m.evaporation_field_V_per_nm == {"Al": 19.0, "Ni": 35.0}[el]


def test_presets_formulas_and_what_is_missing():
    assert material_for("nmc811").atomic_volume_nm3 == 0.00845
    assert material_for("NMC811", 0.009).atomic_volume_nm3 == 0.009
    m = material_for("Al2O3", 0.0085, 30.0)
    assert (m.name, m.atomic_volume_nm3, m.evaporation_field_V_per_nm) == ("Al2O3", 0.0085, 30.0)
    with pytest.raises(KeyError, match="atomic volume .* and its evaporation field"):
        material_for("Al2O3")
    with pytest.raises(KeyError, match="no evaporation field of W tabulated"):
        material_for("W")
    p = ReconstructionParameters.preset("LEAP 5000 XS", "Al")
    assert p.material == "Al" and math.isclose(p.atomic_volume_nm3, 0.0166, rel_tol=0.01)


def test_the_cli_names_what_a_formula_needs():
    res = CliRunner().invoke(cli, ["reconstruct", "missing.epos", "--material", "Al2O3",
                                   "-o", "out.pos"])
    assert res.exit_code == 2
    assert "material 'Al2O3' is not a preset" in res.output and "Traceback" not in res.output


def test_without_need_field_the_field_may_stay_unknown():
    import periodictable

    si = periodictable.elements.symbol("Si")
    m = material_values("Si", need_field=False)
    assert m.evaporation_field_V_per_nm is None
    assert m.atomic_volume_nm3 == pytest.approx(si.mass / (si.density * 6.02214076e23) * 1e21)
    # Si: diamond cubic, a = 0.54310 nm, 8 atoms
    assert m.atomic_volume_nm3 == pytest.approx(0.54310 ** 3 / 8, rel=0.01)
    assert material_values("Al", need_field=False).evaporation_field_V_per_nm == 19.0
    f = material_values("Al2O3", 0.0085, need_field=False)
    assert (f.atomic_volume_nm3, f.evaporation_field_V_per_nm) == (0.0085, None)
    with pytest.raises(KeyError, match="give its atomic volume") as e:
        material_values("Al2O3", need_field=False)
    assert "evaporation field" not in str(e.value)
    with pytest.raises(KeyError, match="no evaporation field of Si tabulated"):
        material_for("Si")
