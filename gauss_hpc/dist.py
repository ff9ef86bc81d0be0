"""Where am I running? One code path for srun, mpiexec/mpirun, torchrun and a single process.

`detect(env)` reads the launcher's environment (pure, testable); `init()` sets up the torch process group and
returns a `DistContext`, the only thing the training loop knows about the launch.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
import re
import shutil
import socket
import subprocess
from dataclasses import dataclass
from typing import Mapping

import torch
import torch.distributed as torch_dist

log = logging.getLogger(__name__)

DEFAULT_PORT_BASE = 15000


@dataclass(frozen=True)
class Launch:
    launcher: str           # "single", "srun", "mpiexec" or "torchrun"
    rank: int
    world_size: int
    local_rank: int
    master_addr: str | None = None
    master_port: int | None = None


def _int(env: Mapping[str, str], *names: str) -> int | None:
    for name in names:
        if env.get(name, "") != "":
            return int(env[name])
    return None


def expand_nodelist(nodelist: str) -> list[str]:
    """Hostnames of a Slurm node list ("node[01-03,07],gpu5"): `scontrol show hostnames` when available, a
    small parser of the same syntax otherwise."""
    scontrol = shutil.which("scontrol")
    if scontrol:
        try:
            out = subprocess.run([scontrol, "show", "hostnames", nodelist], capture_output=True, text=True,
                                 timeout=20, check=True).stdout.split()
            if out:
                return out
        except (subprocess.SubprocessError, OSError):
            pass
    hosts = []
    for prefix, ranges, plain in re.findall(r"([^,\[]+)\[([^\]]+)\]|([^,\[\]]+)", nodelist):
        if plain:
            hosts.append(plain)
            continue
        for part in ranges.split(","):
            lo, _, hi = part.partition("-")
            for number in range(int(lo), int(hi or lo) + 1):
                hosts.append(f"{prefix}{number:0{len(lo)}d}")
    return hosts


def _slurm_master(env: Mapping[str, str]) -> tuple[str, int]:
    nodes = env.get("SLURM_STEP_NODELIST") or env.get("SLURM_JOB_NODELIST") or env.get("SLURM_NODELIST", "")
    n_nodes = _int(env, "SLURM_STEP_NUM_NODES", "SLURM_NNODES") or 1
    # On one node the loopback address always works, even where the node name does not resolve.
    addr = "127.0.0.1" if n_nodes == 1 or not nodes else expand_nodelist(nodes)[0]
    # The port is derived from job and step ids, so every rank computes the same one without communicating,
    # and two steps of one job on a node do not collide.
    job = _int(env, "SLURM_JOB_ID", "SLURM_JOBID") or 0
    step = _int(env, "SLURM_STEP_ID", "SLURM_STEPID") or 0
    port = int(env.get("MASTER_PORT") or DEFAULT_PORT_BASE + (job * 7 + step) % 20000)
    return env.get("MASTER_ADDR") or addr, port


def detect(env: Mapping[str, str] | None = None) -> Launch:
    """The launch environment. torchrun first (it sets everything), then a Slurm job step, then MPI, then a
    single process. A Slurm *batch* shell (no step id) is treated as a single process, not as srun."""
    env = os.environ if env is None else env
    if env.get("TORCHELASTIC_RUN_ID") or (env.get("RANK") and env.get("WORLD_SIZE") and env.get("MASTER_ADDR")):
        return Launch("torchrun", int(env["RANK"]), int(env["WORLD_SIZE"]), _int(env, "LOCAL_RANK") or 0,
                      env.get("MASTER_ADDR"), _int(env, "MASTER_PORT"))
    if env.get("SLURM_STEP_ID") is not None and env.get("SLURM_PROCID") is not None:
        world = _int(env, "SLURM_STEP_NUM_TASKS", "SLURM_NTASKS") or 1
        addr, port = _slurm_master(env)
        return Launch("srun", int(env["SLURM_PROCID"]), world, _int(env, "SLURM_LOCALID") or 0, addr, port)
    rank = _int(env, "PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK")
    size = _int(env, "PMI_SIZE", "OMPI_COMM_WORLD_SIZE")
    if rank is not None and size is not None:
        local = _int(env, "MPI_LOCALRANKID", "OMPI_COMM_WORLD_LOCAL_RANK") or 0
        return Launch("mpiexec", rank, size, local)  # master chosen at init by rank 0, shared with mpi4py
    return Launch("single", 0, 1, 0)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("", 0))
        return sock.getsockname()[1]


def _mpi_rendezvous(launch: Launch) -> Launch:
    """Rank 0 picks a free port and its address; mpi4py broadcasts them to every rank."""
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    if comm.Get_size() != launch.world_size:
        raise RuntimeError(f"mpi4py sees {comm.Get_size()} ranks but the launcher set {launch.world_size}: "
                           f"is mpi4py built against the MPI that runs this job (mpiexec of the same env)?")
    hostname = socket.gethostname()
    hosts = comm.allgather(hostname)
    local_rank = hosts[:launch.rank].count(hostname)
    info = None
    if launch.rank == 0:
        addr = "127.0.0.1" if len(set(hosts)) == 1 else socket.getfqdn()
        info = (os.environ.get("MASTER_ADDR") or addr, int(os.environ.get("MASTER_PORT") or _free_port()))
    addr, port = comm.bcast(info, root=0)
    return Launch("mpiexec", launch.rank, launch.world_size, local_rank, addr, port)


@dataclass
class DistContext:
    launch: Launch
    backend: str | None     # None for a single process (no process group)
    device: torch.device

    @property
    def rank(self) -> int:
        return self.launch.rank

    @property
    def world_size(self) -> int:
        return self.launch.world_size

    @property
    def is_main(self) -> bool:
        return self.launch.rank == 0

    @property
    def distributed(self) -> bool:
        return self.backend is not None

    def all_reduce_sum(self, values: torch.Tensor) -> torch.Tensor:
        """Sum over ranks (in float64 on the communication device); identity for one process."""
        if not self.distributed:
            return values
        buffer = values.detach().to(self.device, torch.float64).clone()
        torch_dist.all_reduce(buffer, op=torch_dist.ReduceOp.SUM)
        return buffer.to(values.device, values.dtype)

    def any(self, flag: bool) -> bool:
        """True on every rank when it is true on at least one (stop decisions are taken together)."""
        if not self.distributed:
            return bool(flag)
        return bool(self.all_reduce_sum(torch.tensor([1.0 if flag else 0.0])).item() > 0)

    def barrier(self) -> None:
        if self.distributed:
            torch_dist.barrier()

    def close(self) -> None:
        if self.distributed and torch_dist.is_initialized():
            torch_dist.destroy_process_group()


def _choose_device(launch: Launch, device: str) -> torch.device:
    if device == "cpu" or (device == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' requested but torch sees no GPU on this node")
    return torch.device("cuda", launch.local_rank % torch.cuda.device_count())


def init(backend: str = "auto", device: str = "auto", env: Mapping[str, str] | None = None,
         timeout_minutes: float = 10.0) -> DistContext:
    """Detect the launch, pick the device (GPU local_rank where available) and start the process group:
    NCCL when every rank has a GPU, gloo otherwise."""
    launch = detect(env)
    if launch.launcher == "mpiexec":
        launch = _mpi_rendezvous(launch)
    dev = _choose_device(launch, device)
    if launch.world_size == 1:
        return DistContext(launch, None, dev)
    if backend == "auto":
        backend = "nccl" if dev.type == "cuda" and torch_dist.is_nccl_available() else "gloo"
    if backend == "nccl" and dev.type != "cuda":
        raise RuntimeError("backend nccl needs a GPU per rank; use --backend gloo on CPU nodes")
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    log.info("rank %d/%d (%s, local rank %d): %s process group at %s:%s on %s", launch.rank, launch.world_size,
             launch.launcher, launch.local_rank, backend, launch.master_addr, launch.master_port, dev)
    torch_dist.init_process_group(backend=backend, init_method=f"tcp://{launch.master_addr}:{launch.master_port}",
                                  rank=launch.rank, world_size=launch.world_size,
                                  timeout=_dt.timedelta(minutes=timeout_minutes))
    return DistContext(launch, backend, dev)
