"""Real cheap CASSCF of two other lanthanides for the parser fixtures (issue: beyond Dy): the DFT-tier geometry of
[Y(H2O)5(OH)2]+ (campaigns/dft_reference, BP86-D3(BJ)/def2-SVP) with Er(III) (Kramers, 4I15/2, prolate) and
Tb(III) (non-Kramers, 7F6, oblate) in place of the metal, computed with molcas.kd_energies and CHEAP_CASSCF
(ANO-RCC-MB ligands, ANO-RCC-VDZP metal, the ground term's roots: Er 13 quartets, Tb 7 septets). The logs and
inputs are kept in OUT for tests/fixtures/molcas; one JSON line per ion is printed.

    python scripts/casscf_other_ions.py OUT [--metals Er Tb] [--cores 1]
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from gauss_hpc.abinitio import molcas
from gauss_hpc.chem.complexes import Complex, swap_metal


def dft_geometry(campaign: Path, ligand: str) -> Complex:
    for shard in (campaign / "shards").glob("*.json"):
        record = json.loads(shard.read_text())
        if record.get("name") != ligand:
            continue
        for step in record["steps"]:
            if step["step"] == "dft_relax" and step["status"] == "ok":
                return Complex.from_dict(step["values"]["complex"])
    sys.exit(f"{campaign}: no finished DFT geometry of {ligand!r}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", type=Path)
    p.add_argument("--metals", nargs="+", default=["Er", "Tb"])
    p.add_argument("--campaign", type=Path, default=Path("campaigns/dft_reference"))
    p.add_argument("--ligand", default="hydroxide")
    p.add_argument("--cores", type=int, default=1)
    args = p.parse_args()
    base = dft_geometry(args.campaign, args.ligand)
    for metal in args.metals:
        cx = swap_metal(base, metal, name=f"{metal}_{args.ligand}")
        workdir = args.out / cx.name
        result = molcas.kd_energies(cx, workdir=workdir, cores=args.cores, memory_mb=3000, keep_scratch=True,
                                    **molcas.CHEAP_CASSCF)
        v = result.values
        print(json.dumps({"metal": metal, "status": result.status, "message": result.message,
                          "seconds": round(result.wall_seconds, 1), "kramers": v.get("kramers", True),
                          "kd_energies": np.round(v.get("kd_energies", []), 2).tolist(),
                          "tunnel_splittings": np.round(v.get("tunnel_splittings", []), 3).tolist(),
                          "g_tensors": np.round(v.get("g_tensors", []), 4).tolist()}), flush=True)


if __name__ == "__main__":
    main()
