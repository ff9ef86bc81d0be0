"""Where am I running? One distributed runtime for training and sampling: srun, mpiexec/mpirun, torchrun and a
single process, and one error policy.

`detect(env)` reads the launcher's environment (pure, testable); `init()` returns a `DistContext`, the only thing
the stages know about the launch: rank, world size, device, tensor collectives (`all_reduce_sum`, `any`,
`barrier`) over a torch process group (training: gloo or NCCL) or MPI (sampling), and, for sampling, the object
collectives of mpi4py as `ctx.comm` (a one-rank stand-in without MPI).

`run_main(prog, body)` is the error policy of both entry points: an `InputError` (raised where input is checked,
identically on every rank, before any collective) ends the run with its message and exit code 2; any other
exception on any rank prints that rank's traceback and aborts every rank at once, because the others would
otherwise wait forever in their next collective.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass, field
from typing import Callable, Mapping, NoReturn

import numpy as np
import torch
import torch.distributed as torch_dist

log = logging.getLogger(__name__)

DEFAULT_PORT_BASE = 15000
ABORT_DRAIN_SECONDS = 1.0      # before MPI_Abort, for the launcher to forward the failing rank's last output


class InputError(ValueError):
    """Bad input or options, found where they are checked, on every rank alike and before any collective: the
    one error that ends a run with its message and exit code 2 instead of aborting the ranks."""


class LaunchError(InputError):
    """The launcher started several tasks but MPI sees another number of ranks (each would write the same
    output): typically srun without an MPI plugin."""


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
    rank = _int(env, "PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK")
    size = _int(env, "PMI_SIZE", "OMPI_COMM_WORLD_SIZE")
    mpi = (rank, size) if rank is not None and size is not None else None
    if env.get("SLURM_STEP_ID") is not None and env.get("SLURM_PROCID") is not None:
        world = _int(env, "SLURM_STEP_NUM_TASKS", "SLURM_NTASKS") or 1
        # srun started the ranks, unless an MPI launcher did inside one step: mpiexec (MPICH's Hydra, Open MPI)
        # in a batch job starts one proxy per node with srun, so every rank sees SLURM_PROCID 0 of a 1-task
        # step and only the MPI variables count the ranks.
        if mpi is None or mpi == (int(env["SLURM_PROCID"]), world):
            addr, port = _slurm_master(env)
            return Launch("srun", int(env["SLURM_PROCID"]), world, _int(env, "SLURM_LOCALID") or 0, addr, port)
    if mpi is not None:
        local = _int(env, "MPI_LOCALRANKID", "OMPI_COMM_WORLD_LOCAL_RANK") or 0
        return Launch("mpiexec", *mpi, local)  # master chosen at init by rank 0, shared with mpi4py
    return Launch("single", 0, 1, 0)


def share(n_rows: int, rank: int, size: int) -> tuple[int, int]:
    """Rows [start, stop) of n_rows that `rank` of `size` takes: contiguous blocks whose lengths differ by at
    most one (training batches, the blocks of a table each sampling rank reads)."""
    base, extra = divmod(n_rows, size)
    start = rank * base + min(rank, extra)
    return start, start + base + (1 if rank < extra else 0)


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


def mpi_world():
    """MPI.COMM_WORLD, checked against the launcher: a common mistake is srun without an MPI plugin, which
    starts N independent single-rank copies."""
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    expected = max(int(os.environ.get(name, "1") or 1)
                   for name in ("SLURM_STEP_NUM_TASKS", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE"))
    if comm.Get_size() == 1 and expected > 1:
        raise LaunchError(f"the launcher started {expected} tasks but MPI sees a single rank; with Slurm use "
                          f"`srun --mpi=pmi2` (MPICH wheels) or mpiexec, or run one task")
    return comm


class Collectives:
    """The object collectives the stages need (gather, broadcast, all-to-all, element-wise sum and max of arrays,
    a barrier) over an mpi4py communicator, or over one process when there is none: sampling and the training
    loop call these and never a communicator, so that they run the same under any launcher."""

    def __init__(self, comm=None):
        self._comm = comm

    @property
    def rank(self) -> int:
        return self._comm.Get_rank() if self._comm is not None else 0

    @property
    def size(self) -> int:
        return self._comm.Get_size() if self._comm is not None else 1

    def gather(self, obj, root: int = 0) -> list | None:
        """Every rank's `obj` on `root` (in rank order); None elsewhere."""
        return self._comm.gather(obj, root=root) if self._comm is not None else [obj]

    def bcast(self, obj, root: int = 0):
        return self._comm.bcast(obj, root=root) if self._comm is not None else obj

    def alltoall(self, objs: list) -> list:
        """objs[i] goes to rank i; returns what each rank sent to this one."""
        return self._comm.alltoall(objs) if self._comm is not None else list(objs)

    def barrier(self) -> None:
        if self._comm is not None:
            self._comm.Barrier()

    def _reduce(self, values, op_name: str) -> np.ndarray:
        local = np.ascontiguousarray(values, dtype=np.float64)
        if self._comm is None:
            return local.copy()
        from mpi4py import MPI

        out = np.empty_like(local)
        self._comm.Allreduce(local, out, op=getattr(MPI, op_name))
        return out

    def sum(self, values) -> np.ndarray:
        """Element-wise sum over ranks, float64."""
        return self._reduce(values, "SUM")

    def max(self, values) -> np.ndarray:
        """Element-wise maximum over ranks, float64."""
        return self._reduce(values, "MAX")


def array_element(given: int | None = None, env: Mapping[str, str] | None = None) -> int:
    """This job-array element's index: `given`, else Slurm's SLURM_ARRAY_TASK_ID; InputError saying what to pass
    when neither is there."""
    if given is not None:
        return int(given)
    value = (os.environ if env is None else env).get("SLURM_ARRAY_TASK_ID", "")
    if not value.isdigit():
        raise InputError("no array index: run inside a Slurm job array (SLURM_ARRAY_TASK_ID) or pass --array-index")
    return int(value)


@dataclass
class DistContext:
    launch: Launch
    backend: str | None     # "gloo" / "nccl" (torch process group), "mpi" (mpi4py), None for one process
    device: torch.device
    comm: Collectives = field(default_factory=Collectives)     # object collectives (the MPI world, or this process)

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
        if self.backend == "mpi":
            total = self.comm.sum(values.detach().cpu().to(torch.float64).numpy())
            return torch.from_numpy(total).to(values.device, values.dtype)
        buffer = values.detach().to(self.device, torch.float64).clone()
        torch_dist.all_reduce(buffer, op=torch_dist.ReduceOp.SUM)
        return buffer.to(values.device, values.dtype)

    def any(self, flag: bool) -> bool:
        """True on every rank when it is true on at least one (stop decisions are taken together)."""
        if not self.distributed:
            return bool(flag)
        return bool(self.all_reduce_sum(torch.tensor([1.0 if flag else 0.0])).item() > 0)

    def barrier(self) -> None:
        if self.backend == "mpi":
            self.comm.barrier()
        elif self.distributed:
            torch_dist.barrier()

    def close(self) -> None:
        if self.backend in ("gloo", "nccl") and torch_dist.is_initialized():
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
    NCCL when every rank has a GPU, gloo otherwise; backend "mpi" (sampling) uses MPI.COMM_WORLD instead."""
    launch = detect(env)
    if backend == "mpi":
        comm = mpi_world()
        if comm.Get_size() == 1:
            return DistContext(Launch("single", 0, 1, 0), None, torch.device("cpu"))
        launch = Launch(launch.launcher if launch.world_size == comm.Get_size() else "mpiexec", comm.Get_rank(),
                        comm.Get_size(), launch.local_rank)
        return DistContext(launch, "mpi", torch.device("cpu"), Collectives(comm))
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
    return DistContext(launch, backend, dev, Collectives(_mpi_comm_if_initialized()))


def _mpi_comm_if_initialized():
    """MPI.COMM_WORLD when this process already initialised MPI (the mpiexec rendezvous), else None."""
    mpi = sys.modules.get("mpi4py.MPI")
    if mpi is not None and mpi.Is_initialized() and not mpi.Is_finalized():
        return mpi.COMM_WORLD
    return None


# --- the error policy ----------------------------------------------------------------------------------------

def abort(launch: Launch, code: int = 1) -> NoReturn:
    """End every rank of the run now: MPI_Abort where MPI is up (mpiexec; srun --mpi=pmi2), else cancel this
    Slurm step (srun), else exit and let the launcher stop the others (torchrun tears the group down)."""
    sys.stdout.flush()
    sys.stderr.flush()
    comm = _mpi_comm_if_initialized()
    if comm is not None and comm.Get_size() > 1:
        # MPI_Abort makes the launcher kill every process and stop forwarding their output: what this rank
        # wrote that the launcher had not read yet (the end of its traceback; seen in 2 of 12 test runs) would
        # be lost. A moment lets it drain.
        time.sleep(ABORT_DRAIN_SECONDS)
        comm.Abort(code)
    if launch.launcher == "srun" and shutil.which("scancel"):
        job = os.environ.get("SLURM_JOB_ID") or os.environ.get("SLURM_JOBID")
        step = os.environ.get("SLURM_STEP_ID") or os.environ.get("SLURM_STEPID")
        if job and step:
            subprocess.run(["scancel", f"{job}.{step}"], capture_output=True, timeout=30)
    os._exit(code)


def _peer_failed(exc: BaseException) -> bool:
    """A collective broken because another rank died first: that rank prints the traceback that matters."""
    text = str(exc)
    return isinstance(exc, getattr(torch_dist, "DistBackendError", ())) or any(
        s in text for s in ("Connection closed by peer", "Connection reset by peer", "Broken pipe"))


def run_main(prog: str, body: Callable[[], int]) -> int:
    """Run an entry point's body under the error policy (module docstring); returns its exit code."""
    launch = detect()
    try:
        return body()
    except InputError as exc:
        if launch.rank == 0:
            print(f"{prog}: error: {exc}", file=sys.stderr, flush=True)
        return 2
    except SystemExit:
        raise
    except BaseException as exc:
        if launch.world_size == 1:
            raise
        if _peer_failed(exc):
            print(f"{prog}: rank {launch.rank}: stopped, another rank failed ({type(exc).__name__})",
                  file=sys.stderr, flush=True)
        else:
            traceback.print_exc()
            print(f"{prog}: rank {launch.rank} of {launch.world_size} failed (traceback above); aborting all ranks",
                  file=sys.stderr, flush=True)
        abort(launch)
