"""Launch detection for srun, mpiexec, torchrun and a single process (the real multi-rank runs are in
test_train.py)."""

import numpy as np
import pytest

from gauss_hpc import dist


def test_single_process():
    assert dist.detect({}) == dist.Launch("single", 0, 1, 0)


def test_slurm_batch_shell_is_not_a_step():
    """Inside an sbatch script but outside srun there is one process, whatever SLURM_NTASKS says."""
    env = {"SLURM_JOB_ID": "7", "SLURM_PROCID": "0", "SLURM_NTASKS": "4", "SLURM_JOB_NODELIST": "n[1-2]"}
    assert dist.detect(env).launcher == "single"


def test_srun_step_one_node_uses_loopback_and_job_derived_port():
    env = {"SLURM_JOB_ID": "123", "SLURM_STEP_ID": "0", "SLURM_PROCID": "1", "SLURM_NTASKS": "2",
           "SLURM_STEP_NUM_TASKS": "2", "SLURM_LOCALID": "1", "SLURM_JOB_NODELIST": "localhost", "SLURM_NNODES": "1"}
    launch = dist.detect(env)
    assert (launch.launcher, launch.rank, launch.world_size, launch.local_rank) == ("srun", 1, 2, 1)
    assert launch.master_addr == "127.0.0.1"
    assert launch.master_port == dist.detect(dict(env, SLURM_PROCID="0", SLURM_LOCALID="0")).master_port


def test_srun_multi_node_master_is_first_host():
    env = {"SLURM_JOB_ID": "9", "SLURM_STEP_ID": "2", "SLURM_PROCID": "5", "SLURM_NTASKS": "8",
           "SLURM_LOCALID": "1", "SLURM_JOB_NODELIST": "gpu[07-09,12]", "SLURM_NNODES": "4"}
    launch = dist.detect(env)
    assert launch.master_addr == "gpu07" and launch.world_size == 8


def test_nodelist_expansion():
    assert dist.expand_nodelist("node[01-03,07],gpu5") == ["node01", "node02", "node03", "node07", "gpu5"]


def test_mpich_and_openmpi_environments():
    assert dist.detect({"PMI_RANK": "1", "PMI_SIZE": "2"}) == dist.Launch("mpiexec", 1, 2, 0)
    assert dist.detect({"OMPI_COMM_WORLD_RANK": "3", "OMPI_COMM_WORLD_SIZE": "4",
                        "OMPI_COMM_WORLD_LOCAL_RANK": "1"}) == dist.Launch("mpiexec", 3, 4, 1)


def test_mpiexec_inside_a_slurm_batch_job_counts_the_mpi_ranks():
    """MPICH's mpiexec in an sbatch job starts its proxy with srun: each rank sees a 1-task step with
    SLURM_PROCID 0 (environment of rank 1 of `mpiexec -n 2` in a 2-task batch job on the local Slurm)."""
    env = {"MPI_LOCALNRANKS": "2", "MPI_LOCALRANKID": "1", "PMI_FD": "6", "PMI_HOSTNAME": "vm", "PMI_RANK": "1",
           "PMI_SIZE": "2", "SLURM_LOCALID": "0", "SLURM_NTASKS": "1", "SLURM_PROCID": "0", "SLURM_STEPID": "0",
           "SLURM_STEP_ID": "0", "SLURM_STEP_NODELIST": "vm", "SLURM_STEP_NUM_NODES": "1",
           "SLURM_STEP_NUM_TASKS": "1", "SLURM_JOB_ID": "1703"}
    assert dist.detect(env) == dist.Launch("mpiexec", 1, 2, 1)
    # srun --mpi=pmi2 sets both, and they agree: still srun
    srun = dict(env, PMI_RANK="1", SLURM_PROCID="1", SLURM_STEP_NUM_TASKS="2", SLURM_NTASKS="2", SLURM_LOCALID="1")
    assert dist.detect(srun).launcher == "srun" and dist.detect(srun).rank == 1


def test_torchrun_wins():
    env = {"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1", "MASTER_ADDR": "10.0.0.1", "MASTER_PORT": "29500",
           "TORCHELASTIC_RUN_ID": "x", "SLURM_STEP_ID": "0", "SLURM_PROCID": "0"}
    assert dist.detect(env) == dist.Launch("torchrun", 1, 2, 1, "10.0.0.1", 29500)


def test_single_process_context_has_no_group():
    ctx = dist.init("auto", "cpu", env={})
    assert not ctx.distributed and ctx.is_main and ctx.any(True) and not ctx.any(False)


def test_collectives_of_one_process_and_the_array_index():
    """Sampling runs on dist.Collectives alone: over one process it needs no MPI; the array index comes from
    the scheduler's variable or is asked for."""
    one = dist.Collectives()
    assert (one.rank, one.size) == (0, 1)
    assert one.gather({"a": 1}) == [{"a": 1}] and one.bcast(3) == 3 and one.alltoall([[1, 2]]) == [[1, 2]]
    assert one.max([1.0, -2.0]).tolist() == [1.0, -2.0] and one.sum([0.5]).dtype == np.float64
    assert dist.array_element(None, {"SLURM_ARRAY_TASK_ID": "7"}) == 7
    assert dist.array_element(2, {"SLURM_ARRAY_TASK_ID": "7"}) == 2
    with pytest.raises(dist.InputError, match="--array-index"):
        dist.array_element(None, {})
