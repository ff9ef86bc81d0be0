"""Assembly of [Dy(H2O)5L2] complexes with molSimplify in-process, and ligand geometries from SMILES."""

import numpy as np
import pytest

from gauss_hpc.chem.complexes import (REASONS, AssemblyError, Complex, assemble, assemble_detailed, assemble_many,
                                      check_geometry, ligand_blocks, metal_multiplicity, swap_metal)
from gauss_hpc.chem.geometry import ligand_geometry

# (SMILES with the donor first, donor element, ligand charge): O-, N-, neutral O, neutral N; aromatic and aliphatic
LIGANDS = [
    ("[O-]C", "O", -1), ("[O-]c1ccccc1", "O", -1), ("[O-]C(C)=O", "O", -1), ("[O-]C(C)(C)C", "O", -1),
    ("[NH-]C", "N", -1), ("[n-]1cccc1", "N", -1),
    ("OC", "O", 0), ("O=C(C)C", "O", 0), ("O1CCCC1", "O", 0),
    ("n1ccccc1", "N", 0), ("N#CC", "N", 0), ("N1CCCC1", "N", 0),
]


@pytest.mark.parametrize("smiles,donor,lig_charge", LIGANDS)
def test_assembly_binds_the_first_atom_with_sane_geometry(smiles, donor, lig_charge):
    cx = assemble(smiles)
    n_ligand = len(ligand_geometry(smiles)[0])
    assert cx.metal == "Dy" and cx.metal_index == 0
    assert len(cx.symbols) == 1 + 5 * 3 + 2 * n_ligand
    assert cx.charge == 3 + 2 * lig_charge
    assert cx.multiplicity == 6                                   # Dy(III) 4f9 sextet
    assert cx.ligand_smiles == [smiles, smiles]
    metal = cx.coords[0]
    for i in cx.equatorial_donors:
        assert cx.symbols[i] == "O"
        assert np.linalg.norm(cx.coords[i] - metal) == pytest.approx(2.40, abs=0.05)
    for i in cx.axial_donors:
        assert cx.symbols[i] == donor
        assert 2.2 < np.linalg.norm(cx.coords[i] - metal) < 2.6
    # the donor (first atom of each ligand block) is the ligand atom closest to the metal
    for block in ligand_blocks(cx):
        dist = np.linalg.norm(cx.coords[block] - metal, axis=1)
        assert np.argmin(dist) == 0
    # the two axial donors are trans, along the axis perpendicular to the water plane
    a, b = (cx.coords[i] - metal for i in cx.axial_donors)
    assert np.degrees(np.arccos(a @ b / np.linalg.norm(a) / np.linalg.norm(b))) == pytest.approx(180, abs=2)
    # no two atoms of different ligands overlap
    pair = np.linalg.norm(cx.coords[:, None] - cx.coords[None], axis=-1)
    owner = np.zeros(len(cx.symbols), int)
    for k, block in enumerate(ligand_blocks(cx), start=1):
        owner[block] = k
    assert pair[(owner[:, None] != owner[None]) & (owner[:, None] > 0) & (owner[None] > 0)].min() > 1.4
    xyz = cx.to_xyz().splitlines()
    assert int(xyz[0]) == len(cx.symbols) and xyz[2].split()[0] == "Dy"


def test_mixed_axial_ligands_distances_and_name():
    cx = assemble(["[O-]C", "n1ccccc1"], metal_donor_distance={"axial": 2.25, "equatorial": 2.45})
    assert cx.charge == 3 - 1 + 0
    assert [cx.symbols[i] for i in cx.axial_donors] == ["O", "N"]
    assert cx.ligand_smiles == ["[O-]C", "n1ccccc1"]
    metal = cx.coords[0]
    assert [np.linalg.norm(cx.coords[i] - metal) for i in cx.axial_donors] == pytest.approx([2.25, 2.25], abs=1e-9)
    assert np.linalg.norm(cx.coords[cx.equatorial_donors] - metal, axis=1) == pytest.approx([2.45] * 5, abs=1e-9)
    again = assemble(["[O-]C", "n1ccccc1"], metal_donor_distance={"axial": 2.25, "equatorial": 2.45})
    assert cx.name == again.name and np.array_equal(cx.coords, again.coords)   # reproducible
    assert cx.name.replace("_", "").isalnum()                                  # file-system safe
    by_element = assemble("n1ccccc1", metal_donor_distance={"N": 2.55})
    assert np.linalg.norm(by_element.coords[by_element.axial_donors[0]] - by_element.coords[0]) == pytest.approx(2.55)


def test_swap_metal_dy_to_y_and_gd():
    cx = assemble("[O-]C")
    y = swap_metal(cx, "Y")
    assert y.metal == "Y" and y.multiplicity == 1 and y.charge == cx.charge
    assert np.array_equal(y.coords, cx.coords) and y.axial_donors == cx.axial_donors
    assert cx.metal == "Dy"                                          # the original is untouched
    assert swap_metal(cx, "Gd").multiplicity == 8
    assert metal_multiplicity("Dy") == 6 and metal_multiplicity("Lu") == 1 and metal_multiplicity("Er") == 4
    with pytest.raises(AssemblyError, match="Fe"):
        swap_metal(cx, "Fe")
    assert Complex.from_dict(y.to_dict()).to_xyz() == y.to_xyz()


def test_bad_inputs_name_the_ligand_and_the_problem():
    with pytest.raises(AssemblyError, match=r"C1CC.*not a valid SMILES") as error:
        assemble("C1CC")
    assert error.value.reason == "invalid_input"
    with pytest.raises(AssemblyError, match="geometry 'xyz'"):
        assemble("[O-]C", geometry="xyz")
    with pytest.raises(AssemblyError, match="2 axial sites"):
        assemble(["[O-]C"] * 3)
    with pytest.raises(AssemblyError, match="outside 1.5-4.0"):
        assemble("[O-]C", metal_donor_distance=5.0)
    with pytest.raises(AssemblyError, match="relax 'fast'"):
        assemble("[O-]C", relax="fast")
    # five tert-butoxides do not fit around the equator (re-orienting the axial ligands cannot help); 2,6-lutidine's
    # methyls hit the waters in molSimplify's geometry
    with pytest.raises(AssemblyError, match="clash.*on the conformer path; before it direct: clash; rotated: clash") \
            as error:
        assemble("[O-]C", equatorial="[O-]C(C)(C)C", relax="rotate")
    assert error.value.reason == "clash"
    with pytest.raises(AssemblyError, match=r"clash between equatorial ligand .* and axial ligand 'n1c\(C\)cccc1C'"):
        assemble("n1c(C)cccc1C", relax="none")


def _internal_distances(cx, block):
    return np.linalg.norm(cx.coords[block][:, None] - cx.coords[block][None], axis=-1)


def test_a_branched_ligand_that_clashed_is_turned_rigidly_into_a_sane_geometry():
    # a random QM9 ligand: in molSimplify's geometry an H of its ethyl branch is 1.83 A from a water O
    smiles = "OC1CC2OC12CC"
    with pytest.raises(AssemblyError, match="clash between equatorial ligand .* and axial ligand") as error:
        assemble(smiles, relax="none")
    assert error.value.reason == "clash"
    built = assemble_detailed(smiles)
    cx = built.complex
    assert built.path == "rotated" and [(p, e.reason) for p, e in built.rejected] == [("direct", "clash")]
    check_geometry(cx)
    direct = assemble(smiles, relax="none", clash_scale=0.0)          # the same geometry, not checked for clashes
    blocks = ligand_blocks(cx)
    assert np.array_equal(cx.coords[:blocks[5].start], direct.coords[:blocks[5].start])   # metal and waters stay
    metal = cx.coords[0]
    for block in blocks[5:]:                                          # each axial ligand moved as a rigid body
        assert np.allclose(_internal_distances(cx, block), _internal_distances(direct, block), atol=1e-9)
        assert np.linalg.norm(cx.coords[block.start] - metal) == pytest.approx(2.40, abs=0.05)
        bond = cx.coords[block.start + 1] - cx.coords[block.start]     # O-C of the alcohol
        to_metal = metal - cx.coords[block.start]
        assert np.degrees(np.arccos(bond @ to_metal / np.linalg.norm(bond) / np.linalg.norm(to_metal))) > 95
        heavy = [j for j in range(block.start + 1, block.stop) if cx.symbols[j] != "H"]
        assert np.linalg.norm(cx.coords[heavy] - metal, axis=1).min() > 2.7
    a, b = (cx.coords[i] - metal for i in cx.axial_donors)
    assert np.degrees(np.arccos(a @ b / np.linalg.norm(a) / np.linalg.norm(b))) == pytest.approx(180, abs=2)
    assert np.array_equal(assemble(smiles).coords, cx.coords)       # reproducible


def test_a_ligand_whose_own_conformer_folds_onto_the_metal_is_placed_as_another():
    # random QM9 ligand: molSimplify's conformer curls the ester arm back over the imine N, an N 1.54 A from Dy
    smiles = "N(C)=C(N)C(=O)COC"
    built = assemble_detailed(smiles)
    assert built.path == "conformer"
    assert [(p, e.reason) for p, e in built.rejected] == [("direct", "wrong_donor"), ("rotated", "wrong_donor")]
    cx = built.complex
    check_geometry(cx)
    symbols, coords, _ = ligand_geometry(smiles)
    bonds = np.linalg.norm(coords[:, None] - coords[None], axis=-1) < 1.7
    metal = cx.coords[0]
    for block in ligand_blocks(cx)[5:]:                               # the same molecule, its donor bound
        assert np.array_equal(_internal_distances(cx, block) < 1.7, bonds)
        assert np.linalg.norm(cx.coords[block.start] - metal) == pytest.approx(2.40, abs=0.05)
        heavy = [j for j in range(block.start + 1, block.stop) if cx.symbols[j] != "H"]
        assert np.linalg.norm(cx.coords[heavy] - metal, axis=1).min() > 2.7


def test_amidate_keeps_its_nh():
    # molSimplify takes an H off donors matching its deprotonation patterns unless told to keep them
    cx = assemble("[NH-]C(=O)C", relax="none")
    assert cx.charge == 1 and cx.symbols.count("H") == 5 * 2 + 2 * 4


def test_assemble_step_reports_the_path_and_the_failure_class(tmp_path):
    from gauss_hpc.abinitio import molsimplify as steps
    from gauss_hpc.jobs.steps import check_params

    check_params("assemble", "molsimplify", "", {"relax": "rotate", "relax_max_steps": 50})
    with pytest.raises(ValueError, match="relaxer"):       # wired by the step, never given in a spec
        check_params("assemble", "molsimplify", "", {"relaxer": "x"})
    ok = steps.assemble("OC1CC2OC12CC", tmp_path, name="branched", relax="rotate")
    assert ok.ok and ok.values["assembly_path"] == "rotated"
    assert (tmp_path / "complex.xyz").read_text().startswith(f"{ok.values['n_atoms']}\n")
    bad = steps.assemble("n1c(C)cccc1C", tmp_path, name="lutidine", relax="none")
    assert bad.status == "invalid_input" and bad.values["assembly_failure"] == "clash"
    assert "n1c(C)cccc1C" in bad.message


def test_xtb_relaxation_cut_short_fails_with_its_class(tmp_path):
    """The xTB path runs on what the rigid paths leave: with clash_scale 1.0 neighbouring waters (2.82 A apart)
    clash whatever the axial ligands do; two L-BFGS steps do not converge, the class says so and the step's
    status invites a resubmission."""
    from gauss_hpc.abinitio import molsimplify as steps

    res = steps.assemble("[O-]C", tmp_path, name="cut_short", relax="xtb", relax_max_steps=2, clash_scale=1.0)
    assert res.status == "geometry_not_converged" and res.values["assembly_failure"] == "xtb_not_converged"
    assert "not converged in 2 steps" in res.message
    assert "before it direct: clash; rotated: clash; conformer: clash" in res.message


def _rotated_axial_ligand(cx, degrees):
    """Copy of cx with the last axial ligand turned about an axis through its donor, perpendicular to M-donor."""
    out = Complex.from_dict(cx.to_dict())
    block = ligand_blocks(out)[-1]
    donor = out.coords[block.start]
    axis = np.cross(donor - out.coords[0], [1.0, 0.0, 0.0])
    axis /= np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    t = np.radians(degrees)
    rot = np.eye(3) + np.sin(t) * k + (1 - np.cos(t)) * k @ k
    out.coords[block] = (out.coords[block] - donor) @ rot.T + donor
    return out


def test_geometry_checks_catch_wrong_atom_bound_and_clashes():
    cx = assemble("[O-]c1ccccc1")
    check_geometry(cx)
    with pytest.raises(AssemblyError, match=r"axial ligand '\[O-\]c1ccccc1'.*bound instead"):
        check_geometry(_rotated_axial_ligand(cx, 180))      # ring carbon points at the metal
    pushed = Complex.from_dict(cx.to_dict())                # axial ligand pushed onto a water
    block = ligand_blocks(pushed)[-1]
    pushed.coords[block] += 0.6 * (pushed.coords[pushed.equatorial_donors[0]] - pushed.coords[block.start])
    with pytest.raises(AssemblyError, match=r"clash between equatorial ligand at atom 1 and axial ligand"):
        check_geometry(pushed)


def test_ligand_geometry_donor_first_and_errors():
    symbols, coords, charge = ligand_geometry("[O-]c1ccccc1", seed=3)
    assert symbols[0] == "O" and symbols.count("H") == 5 and charge == -1
    assert coords.shape == (12, 3) and np.isfinite(coords).all()
    assert np.linalg.norm(coords[0] - coords[1]) == pytest.approx(1.30, abs=0.1)   # C-O of a phenolate
    again = ligand_geometry("[O-]c1ccccc1", seed=3)[1]
    assert np.allclose(coords, again)                                           # reproducible
    for bad in ("C1CC", "", "c1cc"):
        with pytest.raises(ValueError, match="ligand SMILES"):
            ligand_geometry(bad)


def test_assemble_many_keeps_order_and_isolates_failures():
    ligands = ["[O-]C", "C1CC", ["[O-]C", "n1ccccc1"], "N#CC"]
    serial = assemble_many(ligands)
    assert [type(x).__name__ for x in serial] == ["Complex", "AssemblyError", "Complex", "Complex"]
    assert "C1CC" in str(serial[1]) and serial[1].reason in REASONS
    parallel = assemble_many(ligands, workers=2)
    assert [type(x).__name__ for x in parallel] == [type(x).__name__ for x in serial]
    assert parallel[1].reason == serial[1].reason == "invalid_input"          # the class survives the process pool
    for a, b in zip(serial, parallel):
        if isinstance(a, Complex):
            assert a.symbols == b.symbols and np.allclose(a.coords, b.coords, atol=1e-6)


def test_assembly_leaves_numpy_error_handling_as_it_was():
    """molSimplify sets NumPy to raise on every floating-point warning; after an assembly the process must be as
    before (a later crystal field on an axial complex failed with 'underflow encountered in matmul')."""
    before = np.geterr()
    assemble("[O-]C")
    assert np.geterr() == before
