"""Draw the ligands of the second CASSCF set (issue: numbers a chemist can trust): 40 per donor class (anionic /
neutral x O / N donor), at random from a ligands file, none of the reference set's, written as a SMILES file with
the class and the source row in the name. Reproducible: the draw depends only on the file and --seed.

    python scripts/draw_second_set.py data/ligands.h5 --out data/casscf_second_set/ligands.smi
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gauss_hpc import store  # noqa: E402
from gauss_hpc.chem.ligands import kekulized_canonical  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("ligands", type=Path)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--per-class", type=int, default=40)
    p.add_argument("--seed", type=int, default=20261206)
    p.add_argument("--exclude", type=Path, default=ROOT / "data" / "casscf_reference" / "ligands.smi")
    args = p.parse_args(argv)
    table = store.read_ligands(args.ligands)
    excluded = {kekulized_canonical(line.split("\t")[0]) for line in args.exclude.read_text().splitlines()
                if line.strip() and not line.startswith("#")}
    table = table[~table["canonical"].isin(excluded)]
    rng = np.random.default_rng(args.seed)
    lines = [f"# {args.per_class} ligands per donor class drawn at random (numpy default_rng({args.seed})) from "
             f"{args.ligands} ({len(table)} ligands after removing the reference set's); name = class_row",
             "# made by: python scripts/draw_second_set.py " + " ".join(argv if argv is not None else sys.argv[1:])]
    for charge_name, anionic in (("anion", True), ("neutral", False)):
        for element in ("O", "N"):
            pool = table[((table["charge"] < 0) == anionic) & (table["donor_element"] == element)]
            rows = np.sort(rng.choice(pool.index.to_numpy(), size=min(args.per_class, len(pool)), replace=False))
            lines += [f"{table.at[r, 'smiles']}\t{charge_name}_{element}_{r}" for r in rows]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print(f"{args.out}: {len(lines) - 2} ligands", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
