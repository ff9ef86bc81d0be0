"""How the backends start external programs (OpenMolcas, ORCA, any program of a job step)."""

import ctypes
import signal

PR_SET_PDEATHSIG = 1


def child_setup() -> None:
    """In the child before exec.

    - SIGKILL it when the Python process that started it dies (Linux prctl), so a killed array task does not
      leave its program running outside the scheduler's view. (Processes the program itself started are not
      covered; timeouts kill the whole process group instead.)
    - Ignore SIGUSR2 (kept across exec): Slurm sends the time-limit warning to every process of the job step,
      and it is meant for the task runner, which records a timeout and stops the program itself. Without
      this the program could die of the warning first and be reported as crashed."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    signal.signal(signal.SIGUSR2, signal.SIG_IGN)
