"""Building blocks of `gauss_hpc.sample`: validate (is a decoded string a usable ligand), plan (work units and
their random streams), engine (perturb, decode, validate on one rank), dedup (hash-partitioned global dedup and
novelty over MPI ranks), seeds, predict (proxy head and KD cross-mapping), metrics (MOSES-style)."""
