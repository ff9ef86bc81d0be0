"""Physical constants and element facts the backends share, each written once (CODATA 2018)."""

HARTREE_TO_CM = 219474.6313632          # 1 Eh in cm-1
BOHR_TO_ANGSTROM = 0.529177210903       # 1 a0 in Angstrom
KRAMERS_TOLERANCE_CM = 0.5              # the largest split (cm-1) two spin-orbit states of one Kramers doublet may
                                        # show in a program's printout (ORCA prints 0.01 cm-1, numerics < 1e-3)
LANTHANIDES = ("La", "Ce", "Pr", "Nd", "Pm", "Sm", "Eu", "Gd", "Tb", "Dy", "Ho", "Er", "Tm", "Yb", "Lu")
