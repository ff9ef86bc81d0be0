"""The local single-node Slurm cluster for tests: start it once per machine when we can, say why when we can't.

    from tests.slurm_cluster import ensure_cluster, require_cluster
    if ensure_cluster(): ...            # True when `sinfo` answers (started slurm/start_cluster.sh if needed)
    require_cluster()                   # inside a test: skip loudly with the reason when no Slurm is reachable

The cluster is left running for the other tests and engineers (slurm/stop_cluster.sh stops it). Concurrent
callers (pytest-xdist workers, other test sessions) are serialised by the lock file of start_cluster.sh.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
START_SCRIPT = ROOT / "slurm" / "start_cluster.sh"
STATE_DIR = Path(os.environ.get("GAUSS_SLURM_DIR", "/tmp/gauss_slurm"))
LOCAL_CONF = STATE_DIR / "slurm.conf"

_state: dict = {}


def _sinfo_ok(env: dict | None = None) -> tuple[bool, str]:
    if shutil.which("sinfo") is None:
        return False, "sinfo not found (Debian package slurm-client/slurm-wlm not installed)"
    try:
        proc = subprocess.run(["sinfo", "-h", "-N", "-o", "%T"], capture_output=True, text=True, timeout=20,
                              env=env)
    except subprocess.TimeoutExpired:
        return False, "sinfo did not answer within 20 s"
    state = proc.stdout.strip().split("\n")[0].strip("*~#!%$@^-") if proc.stdout.strip() else ""
    if proc.returncode != 0:
        return False, f"sinfo failed: {proc.stderr.strip() or proc.returncode}"
    if state not in ("idle", "mixed", "allocated", "completing"):
        return False, f"the Slurm node is {state or 'missing'}"
    return True, f"sinfo answers (node {state})"


def _use_local_conf_if_up() -> bool:
    """Our cluster's config, when /etc/slurm/slurm.conf does not lead to a working Slurm."""
    if not LOCAL_CONF.is_file():
        return False
    env = dict(os.environ, SLURM_CONF=str(LOCAL_CONF))
    ok, _ = _sinfo_ok(env)
    if ok:
        os.environ["SLURM_CONF"] = str(LOCAL_CONF)
    return ok


def ensure_cluster(timeout: float = 180) -> bool:
    """Whether a Slurm cluster answers; starts the local one (root + Debian packages) at most once per process.
    The reason is in `cluster_reason()`."""
    if "ok" in _state:
        return _state["ok"]
    ok, why = _sinfo_ok()
    if not ok and _use_local_conf_if_up():
        ok, why = True, f"local cluster up (SLURM_CONF={LOCAL_CONF})"
    if not ok:
        if os.geteuid() != 0:
            why = f"no Slurm reachable ({why}) and not root, so slurm/start_cluster.sh cannot start one"
        elif shutil.which("slurmctld") is None or shutil.which("munged") is None:
            why = f"no Slurm reachable ({why}); slurmctld/munged missing: apt-get install slurm-wlm munge"
        else:
            proc = subprocess.run(["bash", str(START_SCRIPT)], capture_output=True, text=True, timeout=timeout)
            if proc.returncode == 0 and (_sinfo_ok()[0] or _use_local_conf_if_up()):
                if LOCAL_CONF.is_file() and not _sinfo_ok()[0]:
                    os.environ["SLURM_CONF"] = str(LOCAL_CONF)
                ok, why = True, "started the local cluster with slurm/start_cluster.sh"
            else:
                why = f"slurm/start_cluster.sh failed: {(proc.stdout + proc.stderr).strip()[-800:]}"
    _state.update(ok=ok, reason=why)
    return ok


def cluster_reason() -> str:
    """Why `ensure_cluster()` answered what it did."""
    ensure_cluster()
    return _state["reason"]


def require_cluster() -> None:
    """Skip the calling test, loudly, when no Slurm cluster is reachable."""
    import pytest

    if not ensure_cluster():
        pytest.skip(f"NO SLURM: {cluster_reason()}")
