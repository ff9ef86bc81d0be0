"""`python -m gauss_hpc.data build --source qm9|FILE --out ligands.h5`: curate the VAE's training corpus of
monodentate ligands (donor atom first, neutral and mono-anionic; rules in gauss_hpc.chem.ligands)."""

from __future__ import annotations

import argparse
import csv
import re
import importlib.util
import json
import logging
import sys
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import pandas as pd
from tqdm import tqdm

from . import config
from . import store, textio
from .chem.ligands import LigandError, elements_of, ligands_of, parse_molecule

log = logging.getLogger("gauss_hpc.data")

MULLIKEN_LABEL = "donor_mulliken_charge"
MAX_INPUT_LENGTH = 500
QM9_MULLIKEN_METHOD = "QM9 B3LYP/6-31G(2df,p) Mulliken charge of the donor atom in the neutral parent"


@dataclass
class Molecule:
    """One input record: an id, its SMILES and, for QM9, the per-heavy-atom DFT data needed for labels."""

    parent_id: str
    smiles: str
    elements: str | None = None      # QM9 JSON-like text, atom order with heavy atoms first
    coords: str | None = None
    mulliken: str | None = None
    error: str = ""                  # the input line could not be read (textio: "encoding: line N: ...")


@dataclass
class Outcome:
    rows: list[dict] = field(default_factory=list)
    rejects: list[tuple[str, str, str]] = field(default_factory=list)   # (parent_id, input, reason: detail)
    reasons: Counter = field(default_factory=Counter)
    molecules: int = 0
    molecules_rejected: int = 0


# --- sources ------------------------------------------------------------------------------------------------

def qm9_directory() -> Path:
    """The CSV folder of the `qm9pack` wheel (read directly: its importer needs the removed pkg_resources)."""
    spec = importlib.util.find_spec("qm9pack")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("QM9 source needs the qm9pack package: pip install qm9pack (a 100 MB wheel)")
    folder = Path(list(spec.submodule_search_locations)[0]) / "data"
    if not (folder / "qm9_part1.csv").is_file():
        raise FileNotFoundError(f"qm9pack is installed but {folder}/qm9_part1.csv is missing; reinstall qm9pack")
    return folder


def read_qm9(limit: int | None = None) -> Iterator[Molecule]:
    columns = ["XYZ_file", "SMILES", "Elements", "XYZ_Ang", "Mulliken_pop"]
    seen = 0
    for part in sorted(qm9_directory().glob("qm9_part*.csv")):
        for chunk in pd.read_csv(part, usecols=columns, chunksize=20000):
            for rec in chunk.itertuples(index=False):
                if limit is not None and seen >= limit:
                    return
                seen += 1
                yield Molecule(str(rec.XYZ_file).removesuffix(".xyz"), str(rec.SMILES), rec.Elements,
                               rec.XYZ_Ang, rec.Mulliken_pop)


def qm9_atom_data(molecule: Molecule) -> tuple[list, list, list] | None:
    """(elements, coordinates, Mulliken charges) of a QM9 record, parsed in the worker that curates it."""
    try:
        return (json.loads(molecule.elements.replace("'", '"')), json.loads(molecule.coords),
                json.loads(molecule.mulliken))
    except (ValueError, AttributeError, TypeError):
        return None


def _smiles_column(header: list[str], path: Path) -> int:
    lowered = [h.strip().lower() for h in header]
    for name in ("smiles", "canonical_smiles", "smi"):
        if name in lowered:
            return lowered.index(name)
    raise ValueError(f"{path}: no SMILES column (looked for 'smiles', 'canonical_smiles', 'smi'); "
                     f"columns are {header}")


def read_csv(path: Path) -> Iterator[Molecule]:
    """Rows of a CSV with a SMILES column (one record per line); a line that is not text is a record with its
    encoding error, which curation rejects."""
    records = list(textio.lines(path))
    if not records:
        return
    header = next(csv.reader([records[0].text]))
    col = _smiles_column(header, path)
    lowered = [h.strip().lower() for h in header]
    id_col = next((lowered.index(n) for n in ("id", "name", "mol_id") if n in lowered), None)
    for line in records[1:]:
        if not line.text.strip():
            continue
        row = next(csv.reader([line.text]), [])
        smiles = row[col] if col < len(row) else ""
        parent = row[id_col] if id_col is not None and id_col < len(row) and not line.error \
            else f"{path.name}:{line.number}"
        yield Molecule(parent, smiles, error=line.error)


def read_smi(path: Path) -> Iterator[Molecule]:
    for line in textio.lines(path):
        if not line.text.strip() or line.text.startswith("#"):
            continue
        parts = line.text.split(maxsplit=1)
        name = parts[1].strip() if len(parts) > 1 and not line.error else f"{path.name}:{line.number}"
        yield Molecule(name, parts[0], error=line.error)


def read_sdf(path: Path) -> Iterator[Molecule]:
    """The records of an SD file, split at the `$$$$` lines here and decoded one by one (RDKit's supplier stops
    at a NUL byte and drops the records after it); an unreadable record is passed on as an empty SMILES, or with
    its encoding error, so it is counted and written to the rejects."""
    from rdkit import Chem, rdBase

    chunks = re.split(rb"^\$\$\$\$[^\r\n]*(?:\r\n|\r|\n)?", path.read_bytes(), flags=re.M)
    for number, raw in enumerate((c for c in chunks if c.strip()), start=1):
        record = textio.decode_line(raw, number)
        fallback = f"{path.name}:{number}"
        if record.error:
            yield Molecule(fallback, "", error=record.error.replace(f"line {number}", f"record {number}", 1))
            continue
        with rdBase.BlockLogs():
            mol = Chem.MolFromMolBlock(record.text)
        name = record.text.splitlines()[0].strip() if record.text.strip() else ""
        yield Molecule(name or fallback, Chem.MolToSmiles(mol) if mol is not None else "")


def read_source(source: str, limit: int | None = None) -> tuple[str, Iterator[Molecule]]:
    """(source name, molecules) for 'qm9' or a .csv/.smi/.txt/.sdf file."""
    if source == "qm9":
        return "qm9", read_qm9(limit)
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"source {path} does not exist (use 'qm9' or a .csv, .smi or .sdf file)")
    readers = {".csv": read_csv, ".smi": read_smi, ".txt": read_smi, ".sdf": read_sdf}
    reader = readers.get(path.suffix.lower())
    if reader is None:
        raise ValueError(f"source {path}: unknown file type {path.suffix!r}; use .csv, .smi, .txt or .sdf")
    molecules = reader(path)
    if limit is not None:
        molecules = (m for i, m in zip(range(limit), molecules))
    return path.name, molecules


# --- curation -------------------------------------------------------------------------------------------------

def heavy_atom_map_is_consistent(mol, elements, coords, tolerance: float = 1.75) -> bool:
    """QM9 lists heavy atoms in the order of its SMILES; trust a donor's Mulliken charge only when the elements
    match and every SMILES bond is a short distance in the DFT geometry."""
    n_heavy = mol.GetNumAtoms()
    if elements is None or coords is None or len(elements) < n_heavy:
        return False
    if [a.GetSymbol() for a in mol.GetAtoms()] != list(elements[:n_heavy]):
        return False
    xyz = np.asarray(coords[:n_heavy], dtype=float)
    for bond in mol.GetBonds():
        i, j = bond.GetBeginAtomIdx(), bond.GetEndAtomIdx()
        if np.linalg.norm(xyz[i] - xyz[j]) > tolerance:
            return False
    return True


def curate(molecule: Molecule, source: str, max_length: int, allowed: frozenset[str],
           charges: frozenset[int]) -> Outcome:
    """Ligands of one input molecule; never raises (a bad input becomes a reject with its reason)."""
    out = Outcome(molecules=1)

    def reject(reason: str, detail: str, text: str) -> None:
        out.rejects.append((molecule.parent_id, text, f"{reason}: {detail}"))
        out.reasons[reason] += 1

    if molecule.error:                  # the line was not text: its bytes are in the rejects, as \xNN
        reason, _, detail = molecule.error.partition(": ")
        reject(reason, detail, molecule.smiles)
        out.molecules_rejected = 1
        return out
    try:
        mol = parse_molecule(molecule.smiles, MAX_INPUT_LENGTH)
    except LigandError as exc:
        reject(exc.reason, exc.detail, molecule.smiles)
        out.molecules_rejected = 1
        return out
    bad = elements_of(mol) - allowed
    if bad:
        reject("element", f"unsupported elements {sorted(bad)} (allowed {sorted(allowed)})", molecule.smiles)
        out.molecules_rejected = 1
        return out
    ligands, _ = ligands_of(mol)
    if not ligands:
        reject("no_donor", "no N or O atom that can donate a lone pair", molecule.smiles)
        out.molecules_rejected = 1
        return out
    atom_data = qm9_atom_data(molecule) if molecule.mulliken is not None else None
    mulliken = atom_data[2] if atom_data and heavy_atom_map_is_consistent(mol, atom_data[0], atom_data[1]) \
        else None
    for lig in ligands:
        if len(lig.smiles) > max_length:
            reject("ligand_too_long", f"{len(lig.smiles)} > {max_length} characters", lig.smiles)
            continue
        if lig.charge not in charges:
            reject("ligand_charge", f"charge {lig.charge} not in {sorted(charges)}", lig.smiles)
            continue
        label = float(mulliken[lig.donor_index]) if mulliken is not None and lig.kind == "neutral" else np.nan
        out.rows.append({"smiles": lig.smiles, "canonical": lig.canonical, "charge": lig.charge,
                         "donor_element": lig.donor_element, "donor_z": lig.donor_z,
                         "donor_index": lig.donor_index, "parent_id": molecule.parent_id, "source": source,
                         MULLIKEN_LABEL: label})
    return out


def _curate_chunk(args) -> Outcome:
    chunk, source, max_length, allowed, charges = args
    total = Outcome()
    for molecule in chunk:
        one = curate(molecule, source, max_length, allowed, charges)
        total.rows += one.rows
        total.rejects += one.rejects
        total.reasons.update(one.reasons)
        total.molecules += 1
        total.molecules_rejected += one.molecules_rejected
    return total


def _chunks(items: Iterable[Molecule], size: int) -> Iterator[list[Molecule]]:
    chunk: list[Molecule] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def dedup(table: pd.DataFrame) -> pd.DataFrame:
    """One row per (ligand, donor): the donor-rooted canonical SMILES identifies both, since symmetry-equivalent
    donors give the same rooted string. The first parent wins; a Mulliken label is kept from the first parent
    that has one."""
    if table.empty:
        return table
    first_label = table.dropna(subset=[MULLIKEN_LABEL]).drop_duplicates("smiles").set_index("smiles")[MULLIKEN_LABEL]
    out = table.drop_duplicates("smiles", keep="first").reset_index(drop=True)
    out[MULLIKEN_LABEL] = out["smiles"].map(first_label).astype(float)
    return out


def make_splits(parent_ids: np.ndarray, test_fraction: float, subset_sizes: Iterable[int], seed: int):
    """Held-out test set by parent molecule (ligands of one parent never straddle train and test), and nested
    training subsets (each a prefix of one seeded permutation of the training rows) for learning curves."""
    rng = np.random.default_rng(seed)
    parents = np.unique(parent_ids)
    n_test_parents = int(round(test_fraction * len(parents)))
    test_parents = rng.choice(parents, size=n_test_parents, replace=False) if n_test_parents else []
    test = pd.Series(parent_ids).isin(set(test_parents)).to_numpy()   # np.isin is quadratic on strings
    train_rows = rng.permutation(np.flatnonzero(~test))
    sizes = sorted({int(s) for s in subset_sizes if 0 < int(s) < len(train_rows)} | {len(train_rows)})
    return test, {size: np.sort(train_rows[:size]) for size in sizes if size > 0}


def build(source: str, out: str | Path, *, limit: int | None = None, workers: int = 1,
          rejects_path: str | Path | None = None, overrides: dict | None = None,
          config_path: str | Path | None = None) -> dict:
    """Curate ligands from `source` into `out`; returns the counts (also written as attributes)."""
    cfg = config.load("data", config_path, overrides)
    out = Path(out)
    name, molecules = read_source(source, limit)
    allowed = frozenset(cfg["allowed_elements"])
    charges = frozenset(int(c) for c in cfg["charges"])
    jobs = ((chunk, name, int(cfg["max_smiles_length"]), allowed, charges) for chunk in _chunks(molecules, 500))
    rows, rejects, reasons, n_read, n_rejected = [], [], Counter(), 0, 0
    progress = tqdm(desc=f"curating {name}", unit=" mol", mininterval=0.5 if sys.stderr.isatty() else 30)
    executor = ProcessPoolExecutor(workers) if workers > 1 else None
    try:
        results = executor.map(_curate_chunk, jobs) if executor else map(_curate_chunk, jobs)
        for result in results:
            rows += result.rows
            rejects += result.rejects
            reasons.update(result.reasons)
            n_read += result.molecules
            n_rejected += result.molecules_rejected
            progress.update(result.molecules)
    finally:
        progress.close()
        if executor:
            executor.shutdown()
    rejects_path = Path(rejects_path) if rejects_path else out.with_suffix(".rejects.csv")
    write_rejects(rejects_path, rejects)
    if n_read == 0:
        raise ValueError(f"source {source}: no molecules read (empty file?)")
    table = pd.DataFrame(rows)
    if table.empty:
        raise ValueError(f"source {source}: no ligand passed curation; see {rejects_path} for the reasons")
    n_before = len(table)
    table = dedup(table)
    test, subsets = make_splits(table["parent_id"].to_numpy(), float(cfg["test_fraction"]),
                                cfg["train_subsets"], int(cfg["seed"]))
    counts = {"molecules_read": n_read,
              "molecules_rejected": n_rejected,
              "ligands_before_dedup": n_before, "duplicates": n_before - len(table), "ligands": len(table),
              "neutral": int((table["charge"] == 0).sum()), "anions": int((table["charge"] == -1).sum()),
              "n_donor": int((table["donor_element"] == "N").sum()),
              "o_donor": int((table["donor_element"] == "O").sum()),
              "test": int(test.sum()), "train": int((~test).sum())}
    counts.update({f"rejected_{k}": v for k, v in sorted(reasons.items())})
    label = table[MULLIKEN_LABEL].to_numpy()
    labels = {MULLIKEN_LABEL: (label, ~np.isnan(label), {"unit": "e", "method": QM9_MULLIKEN_METHOD})} \
        if np.isfinite(label).any() else {}
    sources = [] if source == "qm9" else [source]
    store.write_ligands(out, table, labels=labels, test_mask=test, train_subsets=subsets, counts=counts,
                        config={**cfg, "source": source, "limit": limit}, sources=sources)
    return counts


def write_rejects(path: Path, rejects: list[tuple[str, str, str]]) -> None:
    with store.atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["parent_id", "input", "reason"])
        writer.writerows(rejects)


def summary_table(counts: dict) -> str:
    width = max(len(k) for k in counts)
    return "\n".join(f"  {k:<{width}}  {v:>9,}" for k, v in counts.items())


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m gauss_hpc.data", description=__doc__)
    sub = ap.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="curate ligands from QM9 or a molecule file into an HDF5 ligand file")
    b.add_argument("--source", required=True, help="'qm9' (the qm9pack wheel) or a .csv/.smi/.txt/.sdf file")
    b.add_argument("--out", required=True, help="output ligands.h5")
    b.add_argument("--config", help="TOML file with a [data] section overriding the defaults")
    b.add_argument("--limit", type=int, help="read only the first N molecules of the source")
    b.add_argument("--workers", type=int, default=1, help="curation processes (default 1)")
    b.add_argument("--rejects", help="CSV of rejected inputs and ligands with reasons (default OUT.rejects.csv)")
    b.add_argument("--max-smiles-length", type=int, help="longest donor-first ligand SMILES kept (characters)")
    b.add_argument("--allowed-elements", nargs="+", help="elements allowed in a ligand, e.g. H C N O F")
    b.add_argument("--charges", nargs="+", type=int, help="ligand charges kept, e.g. 0 -1")
    b.add_argument("--test-fraction", type=float, help="fraction of parent molecules held out for testing")
    b.add_argument("--train-subsets", nargs="+", type=int, help="sizes of the nested training subsets")
    b.add_argument("--seed", type=int, help="seed of the split and subsets")
    return ap


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    args = parser().parse_args(argv)
    overrides = {"max_smiles_length": args.max_smiles_length, "allowed_elements": args.allowed_elements,
                 "charges": args.charges, "test_fraction": args.test_fraction,
                 "train_subsets": args.train_subsets, "seed": args.seed}
    try:
        counts = build(args.source, args.out, limit=args.limit, workers=args.workers, rejects_path=args.rejects,
                       overrides=overrides, config_path=args.config)
    except (FileNotFoundError, ValueError) as exc:
        print(f"gauss_hpc.data: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}\n{summary_table(counts)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
