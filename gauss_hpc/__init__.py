"""gauss_hpc: generative design of coordination compounds (GAUSS method) on HPC clusters."""

__version__ = "0.1.0"
