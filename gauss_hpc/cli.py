"""`gauss-hpc <stage> ...`: the same entry points as `python -m gauss_hpc.<stage>`; and the flags every stage
spells the same way (`--ligands`, `--config`, `--quiet`, `--seed`), with the older spellings accepted for one
release with a warning."""

import argparse
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


class _Deprecated(argparse.Action):
    """An older spelling of a flag: stores into the new flag's destination and says on stderr what to write."""

    def __init__(self, option_strings, dest, new: str, flag: bool = False, **kwargs):
        self.new = new
        if flag:
            kwargs.update(nargs=0, const=True)
        self.flag = flag
        super().__init__(option_strings, dest, help=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"{parser.prog}: warning: {option_string} is deprecated and goes in the next release; write "
              f"{self.new}", file=sys.stderr)
        setattr(namespace, self.dest, True if self.flag else values)


def deprecated(parser: argparse.ArgumentParser, old: str, new: str, dest: str, flag: bool = False,
               **kwargs) -> None:
    """Accept `old` for one release as `new` (same destination, hidden from --help, a warning when used)."""
    parser.add_argument(old, dest=dest, action=_Deprecated, new=new, flag=flag, default=argparse.SUPPRESS, **kwargs)


def add_quiet(parser: argparse.ArgumentParser, help: str = "no progress bar") -> None:
    """`--quiet` (dest `quiet`), every stage's switch for the progress bar; `--no-progress` was its older name."""
    parser.add_argument("--quiet", action="store_true", help=help)
    deprecated(parser, "--no-progress", "--quiet", "quiet", flag=True)


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
