#!/usr/bin/env bash
# Create (or reuse) the virtual environment and install gauss_hpc with everything its tests and demo need.
#   - torch: keep any importable build (clusters bring their own CUDA build); otherwise torch==2.13.0, the CPU
#     build available here (a bare `torch` would pull a multi-GB CUDA wheel).
#   - molSimplify without TensorFlow (--no-deps plus the dependencies it really uses).
#   - mpi4py with the MPICH wheels.
#   - Debian packages the tests use (openmolcas, slurm-wlm, munge, chromium for the report's browser test) when root
#     with apt; otherwise say what is skipped.
# Environment: VENV (default .venv), PYTHON (default python3), GAUSS_SKIP_APT=1 to skip Debian packages.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
STAMP="$VENV/.gauss_hpc_installed"

say() { printf '[install] %s\n' "$*"; }

install_debian() {
  local wanted=(openmolcas slurm-wlm munge chromium)
  local missing=()
  for pkg in "${wanted[@]}"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  if [ ${#missing[@]} -eq 0 ]; then say "Debian packages present: ${wanted[*]}"; return; fi
  if [ "${GAUSS_SKIP_APT:-0}" = 1 ]; then
    say "SKIPPED Debian packages ${missing[*]} (GAUSS_SKIP_APT=1): OpenMolcas, Slurm and browser tests will be skipped"; return
  fi
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    say "SKIPPED Debian packages ${missing[*]}: not root or no apt-get. Install them (or load modules) to run"
    say "        the OpenMolcas, Slurm and report browser tests; those tests will be skipped and say so."
    return
  fi
  say "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null || say "apt-get update failed; trying the install anyway"
  apt-get install -y -qq "${missing[@]}" >/dev/null
}

install_python() {
  if [ ! -x "$VENV/bin/python" ]; then
    say "creating virtual environment $VENV"
    "$PYTHON" -m venv "$VENV"
  fi
  local py="$VENV/bin/python"
  "$py" -m pip install -q --upgrade pip
  if "$py" -c "import torch" 2>/dev/null; then
    say "keeping the installed torch $("$py" -c 'import torch; print(torch.__version__)')"
  else
    say "installing torch==2.13.0 (CPU build)"
    "$py" -m pip install -q torch==2.13.0
  fi
  say "installing the Python stack"
  "$py" -m pip install -q numpy pandas h5py rdkit pysmiles submitit tqdm jinja2 scipy scikit-learn matplotlib \
      pytest pytest-timeout mpi4py mpich tblite dftd4 qm9pack orjson \
      openbabel-wheel networkx pyyaml importlib-resources plotly playwright pyscf geometric pyscf-dispersion \
      mkdocs "mkdocstrings[python]"
  say "installing molSimplify without TensorFlow (--no-deps)"
  "$py" -m pip install -q --no-deps molsimplify
  "$py" -m pip install -q --no-deps -e .
}

if [ -f "$STAMP" ] && [ "$STAMP" -nt setup.cfg ] && [ "$STAMP" -nt scripts/install.sh ]; then
  say "environment $VENV is up to date"
else
  install_debian
  install_python
  touch "$STAMP"
fi
