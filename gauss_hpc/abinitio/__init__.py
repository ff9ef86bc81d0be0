"""One module per backend (xtb, crystal_field, molcas, orca). Each turns an input (a ligand or a complex) into a
`Result` and never raises for a bad input or a failed calculation: the failure is the Result's status."""

from .result import Result, Status

__all__ = ["Result", "Status"]
