"""The chemical rules of ligand curation, on hand-picked molecules."""

import pytest
from rdkit import Chem

from gauss_hpc.chem.ligands import LigandError, kekulized_canonical, ligands_of, parse_molecule


def ligands(smiles):
    found, skipped = ligands_of(parse_molecule(smiles))
    return {(lig.smiles, lig.charge, lig.kind) for lig in found}, dict(skipped)


def donor_first(smiles):
    atom = Chem.MolFromSmiles(smiles).GetAtomWithIdx(0)
    return atom.GetSymbol(), atom.GetFormalCharge()


def test_pyridine_is_a_neutral_n_donor_without_anion():
    found, _ = ligands("c1ccncc1")
    assert found == {("n1ccccc1", 0, "neutral")}


def test_aniline_gives_neutral_amine_and_anilide():
    found, _ = ligands("Nc1ccccc1")
    assert ("Nc1ccccc1", 0, "neutral") in found
    assert ("[NH-]c1ccccc1", -1, "anion") in found


def test_phenol_gives_phenol_and_phenolate():
    found, _ = ligands("Oc1ccccc1")
    assert found == {("Oc1ccccc1", 0, "neutral"), ("[O-]c1ccccc1", -1, "anion")}


def test_acetonitrile_binds_through_nitrile_n():
    found, _ = ligands("CC#N")
    assert found == {("N#CC", 0, "neutral")}


def test_acetone_binds_through_carbonyl_o():
    found, _ = ligands("CC(C)=O")
    assert found == {("O=C(C)C", 0, "neutral")}


def test_pyrrole_n_is_no_neutral_donor_but_pyrrolide_is():
    found, skipped = ligands("c1cc[nH]c1")
    assert found == {("[n-]1cccc1", -1, "anion")}
    assert "pyrrole_n" in skipped.values()


def test_nitro_group_gives_no_ligand():
    found, skipped = ligands("C[N+](=O)[O-]")
    assert found == set()
    assert sorted(skipped.values()) == ["cationic_n", "nitro_o", "nitro_o"]


def test_amide_binds_through_o_and_deprotonates_at_n():
    found, skipped = ligands("CC(N)=O")
    assert ("O=C(C)N", 0, "neutral") in found
    assert ("[NH-]C(C)=O", -1, "anion") in found
    assert skipped == {2: "amide_n"}


def test_n_oxide_binds_through_o_and_quaternary_n_never():
    found, skipped = ligands("[O-][n+]1ccccc1")
    assert found == {("[O-][n+]1ccccc1", 0, "neutral")}
    assert ligands("C[N+](C)(C)C") == (set(), {1: "cationic_n"})


def test_furan_o_is_not_a_donor():
    assert ligands("c1ccoc1") == (set(), {3: "aromatic_o"})


def test_every_ligand_starts_with_its_donor():
    for smiles in ["OCC(=O)O", "NCCO", "CC(=O)NC", "Oc1ccncc1", "N#CCO"]:
        found, _ = ligands(smiles)
        assert found
        for lig_smiles, charge, kind in found:
            element, atom_charge = donor_first(lig_smiles)
            assert element in ("N", "O")
            assert Chem.GetFormalCharge(Chem.MolFromSmiles(lig_smiles)) == charge
            if kind == "anion":
                assert atom_charge == -1


def test_carboxylic_acid_gives_carboxylate():
    found, _ = ligands("CC(=O)O")
    assert ("[O-]C(C)=O", -1, "anion") in found


def test_kekulized_canonical_is_the_same_for_any_writing():
    assert kekulized_canonical("[O-]c1ccccc1") == kekulized_canonical("c1ccc([O-])cc1")
    assert kekulized_canonical("c1ccncc1") == "C1=CC=NC=C1"


@pytest.mark.parametrize("bad,reason", [("", "empty"), ("C1CC", "unparsable"), ("CCO.O", "fragments"),
                                        ("OC CC", "whitespace")])
def test_bad_molecules_raise_with_reason(bad, reason):
    with pytest.raises(LigandError) as err:
        parse_molecule(bad)
    assert err.value.reason == reason
