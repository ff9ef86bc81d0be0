"""`gauss-hpc <stage> ...`: the same entry points as `python -m gauss_hpc.<stage>`."""

import importlib
import sys

STAGES = {
    "data": "curate monodentate ligands from QM9 or a molecule file into ligands.h5",
    "label": "proxy labels of the donor atom (xTB or OpenMolcas LoProp) into ligands.h5",
    "train": "train the semi-supervised VAE (single process, mpiexec, srun or torchrun)",
    "encode": "latent means of a ligands file under a trained (or the shipped) model, as a run directory",
    "sample": "local-perturbation sampling around seed ligands with global dedup",
    "screen": "the fast screen of a list of ligands: one command, a results.h5 with one row per ligand",
    "jobs": "ab initio job arrays: submit, status, resubmit, gather, cancel",
    "reinvent": "the expensive oracle for other generators: submit a batch through a job spec, collect its scores",
    "analyze": "figures and a report from the HDF5 files of the stages",
    "loop": "design rounds: train, sample, screen, compute, merge labels, again (resumable)",
    "demo": "the whole method end to end on the bundled data",
    "upgrade": "convert gauss_hpc HDF5 files of an older format to the current one, in place",
}


def usage() -> str:
    lines = ["usage: gauss-hpc <stage> [options]", "", "stages:"]
    lines += [f"  {name:<8} {text}" for name, text in STAGES.items()]
    return "\n".join(lines)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    stage, rest = argv[0], argv[1:]
    if stage not in STAGES:
        print(f"gauss-hpc: unknown stage {stage!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(f"gauss_hpc.{stage}")
    return module.main(rest) or 0


if __name__ == "__main__":
    sys.exit(main())
