"""Monodentate ligands from molecules: which N/O atoms donate, the donor-first SMILES, the novelty key.

Chemical rules (each rejection has a named reason, tested in tests/test_ligands.py):

Neutral ligands — the molecule as it is, written with the donor atom first — from every N or O whose lone pair
is available for a metal:
  O  hydroxyl, ether, carbonyl, N-oxide O (pyridine N-oxide, a strong Ln donor)      -> donor
  O  aromatic (furan-type): its lone pairs are part of or orthogonal to a weak π system -> "aromatic_o"
  O  of a nitro group (charge-separated, poor donor)                                   -> "nitro_o"
  N  amine, aniline, imine, nitrile, azo, hydrazine, pyridine-type aromatic N           -> donor
  N  pyrrole-type aromatic N (N-H or three ring/substituent bonds): lone pair in π       -> "pyrrole_n"
  N  amide / urea / carbamate N (bonded to C=O): lone pair conjugated with C=O          -> "amide_n"
  N  cationic or quaternary N (nitro N, N-oxide N, ammonium): no lone pair              -> "cationic_n"
Mono-anions — from every O-H and N-H of an uncharged atom, one proton removed, the deprotonated atom first:
  alkoxides, phenolates, carboxylates, enolates, amides R2N-, anilides, pyrrolides, amidates.
Stereochemistry is dropped (the VAE alphabet has no @, / or \\); ligands differing only in stereo merge.

Two SMILES are kept per ligand: `smiles`, the RDKit canonical SMILES rooted at the donor (the VAE's training
string, donor first) and `canonical`, the kekulized canonical SMILES of the whole ligand (the paper's novelty key).
"""

from __future__ import annotations

from dataclasses import dataclass

from rdkit import Chem, RDLogger

RDLogger.DisableLog("rdApp.*")

DONOR_ELEMENTS = ("N", "O")


class LigandError(ValueError):
    """An input molecule or ligand that cannot be used; `reason` is a short machine-readable tag."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Ligand:
    smiles: str            # donor atom first
    canonical: str         # kekulized canonical SMILES (novelty key)
    charge: int
    donor_element: str
    donor_z: int
    donor_index: int       # atom index of the donor in the parent molecule (as parsed)
    kind: str              # "neutral" or "anion"


def parse_molecule(smiles: str, max_length: int = 200) -> Chem.Mol:
    """A sanitized RDKit molecule, or LigandError("empty" / "whitespace" / "too_long" / "unparsable" /
    "fragments")."""
    text = (smiles or "").strip()
    if not text:
        raise LigandError("empty", "empty SMILES")
    if any(ch.isspace() for ch in text):
        # RDKit would read the text after a space as the molecule's name and silently drop it
        raise LigandError("whitespace", f"{text!r} contains whitespace")
    if len(text) > max_length:
        raise LigandError("too_long", f"input SMILES of {len(text)} characters (limit {max_length})")
    mol = Chem.MolFromSmiles(text)
    if mol is None:
        raise LigandError("unparsable", f"RDKit cannot parse {text!r}")
    if len(Chem.GetMolFrags(mol)) > 1:
        raise LigandError("fragments", f"{text!r} has several disconnected fragments")
    return mol


def _kekulized(mol: Chem.Mol) -> Chem.Mol:
    """A Kekulé copy of a sanitized molecule. RDKit parses some strings whose aromatic system, once perceived, has
    no Kekulé form (the decoded furan `Oc1=c(=C=O)cc(C)o1`, for one): an unusable ligand, not a crash."""
    mol = Chem.Mol(mol)
    try:
        Chem.Kekulize(mol, clearAromaticFlags=True)
    except Chem.KekulizeException as exc:
        raise LigandError("unkekulizable", f"{Chem.MolToSmiles(mol)!r}: {exc}") from None
    return mol


# Longest SMILES string read as a ligand anywhere: RDKit's canonical writer recurses once per atom of a chain and
# overflows the C stack (a segmentation fault, no exception) near 10^4 atoms; no monodentate ligand comes near.
MAX_SMILES_LENGTH = 1000


def _from_smiles(smiles: str) -> Chem.Mol | None:
    if len(smiles) > MAX_SMILES_LENGTH:
        raise LigandError("too_long", f"SMILES of {len(smiles)} characters (limit {MAX_SMILES_LENGTH})")
    return Chem.MolFromSmiles(smiles)


def kekulized_canonical(mol_or_smiles: Chem.Mol | str) -> str:
    """The novelty key of the paper: canonical SMILES in Kekulé form, no stereo."""
    mol = _from_smiles(mol_or_smiles) if isinstance(mol_or_smiles, str) else mol_or_smiles
    if mol is None:
        raise LigandError("unparsable", f"RDKit cannot parse {mol_or_smiles!r}")
    return Chem.MolToSmiles(_kekulized(mol), kekuleSmiles=True, isomericSmiles=False)


def ligand_key(smiles: str) -> str:
    """The identity of a ligand, donor included: its kekulized canonical SMILES written from the donor (atom 0 of a
    donor-first SMILES). The novelty key alone names the molecule, which can bind through several atoms."""
    mol = _from_smiles(smiles)
    if mol is None:
        raise LigandError("unparsable", f"RDKit cannot parse {smiles!r}")
    return Chem.MolToSmiles(_kekulized(mol), kekuleSmiles=True, isomericSmiles=False, rootedAtAtom=0)


def identity_or_empty(smiles: str, *, donor: bool = False) -> str:
    """A ligand's identity for matching rows of files: the novelty key (molecule), or with `donor` the ligand key
    (molecule and donor); "" where RDKit cannot read the SMILES, whose own step says why."""
    try:
        return ligand_key(smiles) if donor else kekulized_canonical(smiles)
    except LigandError:
        return ""


def rooted_smiles(mol: Chem.Mol, atom_index: int) -> str:
    """Canonical SMILES written from `atom_index` (the donor goes first)."""
    return Chem.MolToSmiles(mol, rootedAtAtom=int(atom_index), isomericSmiles=False)


def _is_nitro_o(atom: Chem.Atom) -> bool:
    n = atom.GetNeighbors()
    if len(n) != 1 or n[0].GetSymbol() != "N" or n[0].GetFormalCharge() != 1:
        return False
    return sum(1 for x in n[0].GetNeighbors() if x.GetSymbol() == "O") >= 2


def _is_amide_n(atom: Chem.Atom) -> bool:
    for nb in atom.GetNeighbors():
        for bond in nb.GetBonds():
            other = bond.GetOtherAtom(nb)
            if (other.GetIdx() != atom.GetIdx() and other.GetSymbol() in ("O", "S")
                    and bond.GetBondType() == Chem.BondType.DOUBLE and nb.GetSymbol() in ("C", "S", "P")):
                return True
    return False


def neutral_donor_rejection(atom: Chem.Atom) -> str | None:
    """None if the atom of an (as-is) molecule donates a lone pair, else the reason it does not."""
    symbol, charge = atom.GetSymbol(), atom.GetFormalCharge()
    if symbol == "O":
        if _is_nitro_o(atom):
            return "nitro_o"
        if atom.GetIsAromatic():
            return "aromatic_o"
        return None if charge <= 0 else "cationic_o"
    if symbol == "N":
        if charge > 0:
            return "cationic_n"
        if charge < 0:
            return None
        if atom.GetIsAromatic() and (atom.GetTotalNumHs() > 0 or atom.GetDegree() == 3):
            return "pyrrole_n"
        if _is_amide_n(atom):
            return "amide_n"
        return None
    return "not_n_or_o"


def _ligand(mol: Chem.Mol, donor: int, kind: str) -> Ligand:
    atom = mol.GetAtomWithIdx(donor)
    return Ligand(smiles=rooted_smiles(mol, donor), canonical=kekulized_canonical(mol),
                  charge=Chem.GetFormalCharge(mol), donor_element=atom.GetSymbol(),
                  donor_z=atom.GetAtomicNum(), donor_index=donor, kind=kind)


def deprotonated(mol: Chem.Mol, atom_index: int) -> Chem.Mol:
    """The molecule with one H removed from `atom_index` and a −1 charge there."""
    rw = Chem.RWMol(mol)
    atom = rw.GetAtomWithIdx(atom_index)
    n_hydrogens = atom.GetTotalNumHs()
    atom.SetFormalCharge(atom.GetFormalCharge() - 1)
    atom.SetNoImplicit(True)
    atom.SetNumExplicitHs(n_hydrogens - 1)
    out = rw.GetMol()
    try:
        Chem.SanitizeMol(out)
    except Exception as exc:  # RDKit raises several sanitization exception types
        raise LigandError("deprotonation_failed", f"atom {atom_index}: {exc}") from None
    return out


def ligands_of(mol: Chem.Mol) -> tuple[list[Ligand], list[tuple[int, str]]]:
    """All neutral and mono-anionic donor ligands of a molecule, and (atom index, reason) of N/O atoms that
    gave no neutral ligand."""
    ligands: list[Ligand] = []
    skipped: list[tuple[int, str]] = []
    for atom in mol.GetAtoms():
        if atom.GetSymbol() not in DONOR_ELEMENTS:
            continue
        idx = atom.GetIdx()
        reason = neutral_donor_rejection(atom)
        if reason is None:
            ligands.append(_ligand(mol, idx, "neutral"))
        else:
            skipped.append((idx, reason))
        if atom.GetFormalCharge() == 0 and atom.GetTotalNumHs() > 0:
            try:
                ligands.append(_ligand(deprotonated(mol, idx), idx, "anion"))
            except LigandError as exc:
                skipped.append((idx, exc.reason))
    return ligands, skipped


def elements_of(mol: Chem.Mol) -> set[str]:
    return {a.GetSymbol() for a in Chem.AddHs(mol).GetAtoms()}
