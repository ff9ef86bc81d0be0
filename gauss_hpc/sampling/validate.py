"""Is a decoded string a usable monodentate ligand? RDKit validity plus the chemistry the complexes need: the
donor atom (N or O) comes first, the ligand is neutral or a mono-anion whose negative charge sits on the donor,
one fragment, no radicals. Every rejection has a named reason so invalid attempts can be counted by cause.

The rules for "does this N/O donate" are those of the dataset (`gauss_hpc.chem.ligands`), so a sample passes
exactly when the data stage would have accepted it as a training ligand written donor first.
"""

from __future__ import annotations

from dataclasses import dataclass

from rdkit import Chem

from gauss_hpc.chem.ligands import (DONOR_ELEMENTS, LigandError, kekulized_canonical, neutral_donor_rejection,
                                    parse_molecule)

# Every reason an attempt can be rejected, in a fixed order so per-reason count columns are stable across runs.
#   empty, unparsable, fragments, too_long: the string itself (parse_molecule's tags)
#   padding_inside: the decoder put the pad token (a space) before the end; RDKit would read the rest as a name
#   radical: an atom with unpaired electrons (decoded bracket atoms can leave a valence open)
#   first_atom_not_n_or_o: the first atom, which binds the metal, is not N or O
#   net_charge: total formal charge not 0 or -1 (a monodentate ligand of [Dy(H2O)5L2]+ is neutral or anionic)
#   anion_site_not_first: a mono-anion whose negative charge is not on the first atom (the donor is not first)
#   aromatic_o, nitro_o, pyrrole_n, amide_n, cationic_n, cationic_o: the first atom has no lone pair to donate
#   unkekulizable: RDKit parses it, but the aromatic system it perceives has no Kekulé form (no novelty key)
REASONS = ("empty", "padding_inside", "unparsable", "fragments", "too_long", "radical", "first_atom_not_n_or_o", "net_charge",
           "anion_site_not_first", "aromatic_o", "nitro_o", "pyrrole_n", "amide_n", "cationic_n", "cationic_o",
           "unkekulizable")
ALLOWED_CHARGES = (0, -1)


@dataclass(frozen=True)
class Verdict:
    smiles: str
    canonical: str | None       # kekulized canonical SMILES (the novelty key) when valid
    reason: str | None          # one of REASONS when invalid
    charge: int = 0

    @property
    def valid(self) -> bool:
        return self.reason is None


def check_ligand(smiles: str, max_length: int = 200) -> Verdict:
    """The verdict on one donor-first SMILES string."""
    if smiles and (smiles != smiles.strip() or any(ch.isspace() for ch in smiles)):
        return Verdict(smiles, None, "padding_inside")
    try:
        mol = parse_molecule(smiles, max_length=max_length)
    except LigandError as exc:
        return Verdict(smiles, None, exc.reason)
    if any(atom.GetNumRadicalElectrons() for atom in mol.GetAtoms()):
        return Verdict(smiles, None, "radical")
    donor = mol.GetAtomWithIdx(0)       # RDKit keeps the atom order of the string: atom 0 is written first
    if donor.GetSymbol() not in DONOR_ELEMENTS:
        return Verdict(smiles, None, "first_atom_not_n_or_o")
    charge = Chem.GetFormalCharge(mol)
    if charge not in ALLOWED_CHARGES:
        return Verdict(smiles, None, "net_charge", charge)
    if charge == -1 and donor.GetFormalCharge() != -1:
        return Verdict(smiles, None, "anion_site_not_first", charge)
    rejection = neutral_donor_rejection(donor)
    if rejection is not None:
        return Verdict(smiles, None, rejection if rejection in REASONS else "first_atom_not_n_or_o", charge)
    try:
        return Verdict(smiles, kekulized_canonical(mol), None, charge)
    except LigandError as exc:
        return Verdict(smiles, None, exc.reason, charge)


class Validator:
    """`check_ligand` with a memo: at small σ most attempts decode to a handful of strings, so RDKit runs once
    per distinct string. The memo is bounded so a long run cannot grow it without limit."""

    def __init__(self, max_length: int = 200, max_entries: int = 1_000_000):
        self.max_length = max_length
        self.max_entries = max_entries
        self._memo: dict[str, Verdict] = {}

    def __call__(self, smiles: str) -> Verdict:
        verdict = self._memo.get(smiles)
        if verdict is None:
            verdict = check_ligand(smiles, self.max_length)
            if len(self._memo) >= self.max_entries:
                self._memo.clear()
            self._memo[smiles] = verdict
        return verdict
