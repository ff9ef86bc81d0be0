"""Every real output a parser is tested on, checked against the one value schema (abinitio/values.py; cclib's
typecheck idea): each declared quantity a parser returns has the declared shape and unit conventions, the backend
is among its declared providers, and the Result names a known method. A parser that drifts from the schema fails
here, whichever test of its own still passes."""

from pathlib import Path

import numpy as np
import pytest

from gauss_hpc.abinitio import molcas, orca, values
from gauss_hpc.abinitio.result import METHODS

FIXTURES = Path(__file__).parent / "fixtures"

# (backend, parse, fixture) for every output fixture that parses to an OK result
OUTPUTS = [
    ("molcas", molcas.parse_casscf, "molcas/casscf_DyOPh2_cheap.log"),
    ("molcas", molcas.parse_casscf, "molcas/casscf_DyOMe2_vdzp.log"),
    ("molcas", molcas.parse_casscf, "molcas/casscf_DyF2_mltp16.log"),
    ("molcas", molcas.parse_casscf, "molcas/casscf_DyF2_mltp8x2.log"),
    ("molcas", molcas.parse_casscf, "molcas/casscf_DyF2_aniso_defaults.log"),
    ("molcas", molcas.parse_casscf, "molcas/casscf_DyF2_rassi_only.log"),
    ("molcas", molcas.parse_casscf, "molcas/casscf_ErOH2_cheap.log"),
    ("molcas", lambda path, name: molcas.parse_casscf(path, name=name, require_kramers=False),
     "molcas/casscf_TbOH2_cheap.log"),
    ("molcas", molcas.parse_loprop, "molcas/loprop_methanolate.log"),
    ("orca", orca.parse_qdpt, "orca/orca6.1_dy_acac_casscf_soc_aniso.out"),
    ("orca", orca.parse_qdpt, "orca/orca6.1_coplus_casscf_soc_gtensor_aniso.out"),
    ("orca", lambda path, name: orca.parse_qdpt(path, name=name, energies="nevpt2"),
     "orca/orca6.1_coplus_nevpt2_soc.out"),
    ("orca", orca.parse_opt, "orca/orca5.0_dvb_gopt.out"),
    ("orca", orca.parse_opt, "orca/orca6.0_dvb_gopt.out"),
]


@pytest.mark.parametrize("backend, parse, fixture", OUTPUTS, ids=[o[2] for o in OUTPUTS])
def test_parsed_values_follow_the_schema(backend, parse, fixture):
    result = parse(FIXTURES / fixture, name=Path(fixture).stem)
    assert result.ok, result.message
    assert result.method in METHODS and result.method, f"{fixture}: method {result.method!r}"
    declared = {name: q for name, q in values.QUANTITIES.items() if name in result.values}
    assert declared, f"{fixture}: no declared quantity among {sorted(result.values)}"
    n_atoms = len(result.values.get("symbols") or [])
    for name, quantity in declared.items():
        assert backend in quantity.providers, f"{backend} gives {name} but is not among its providers"
        value = result.values[name]
        if quantity.shape == ():
            assert isinstance(value, (int, float)) and np.isfinite(value), (name, value)
            continue
        array = np.asarray(value, dtype=float)
        assert array.ndim == len(quantity.shape), (name, array.shape, quantity.shape)
        if quantity.shape == ("atoms",):
            assert n_atoms == 0 or len(array) == n_atoms, (name, len(array), n_atoms)
        elif quantity.shape == ("states",):
            assert len(array) > 0 and np.nanmin(array) == pytest.approx(0.0, abs=1e-6)
        else:       # per doublet: the leading length is the ion's; the trailing ones are fixed
            assert array.shape[1:] == quantity.shape[1:], (name, array.shape, quantity.shape)
    if "kd_energies" in declared:
        kd = np.asarray(result.values["kd_energies"], float)
        assert kd[0] == 0 and (np.diff(kd) >= -1e-6).all(), kd           # ground doublet 0, then upwards
        assert np.allclose(result.values["kd_gaps"], values.kd_gaps(kd))  # the paper's dE0i, one definition
    if "g_tensors" in declared:
        g = np.asarray(result.values["g_tensors"], float)
        known = np.isfinite(g).all(axis=1)
        assert (np.diff(g[known], axis=1) >= -1e-9).all()                # gX <= gY <= gZ
