"""Parts of the report a chemist reads (used by gauss_hpc.analyze): molecule drawings (molecules.py), interactive
maps and the 3D complex view (interactive.py), and the KD1 of every generated ligand gathered from the stage
files (kd.py)."""
