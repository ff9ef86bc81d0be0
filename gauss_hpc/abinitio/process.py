"""How the backends and job steps start external programs (OpenMolcas, ORCA, any program of a job step): one
runner, `run_program`, used by every backend and by the job step "program"; and, as ASE separates a calculator's
profile from its template, a program backend's `Profile` (how the program is started and what its failures mean)
with the one `run_profile` both quantum-chemistry backends use."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

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


@contextmanager
def sigterm_unwinds():
    """Inside: SIGTERM raises SystemExit(143) instead of ending the process on the spot, where nobody else chose
    what SIGTERM does (a plain script killed by `kill` or `timeout`). Without it the process dies without
    unwinding, and the program's own children (OpenMolcas starts one process per module, e.g. loprop.exe)
    outlive it: PR_SET_PDEATHSIG reaches only the direct child. Handlers installed by the task runner or by
    `label` are left alone: they already unwind."""
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return

    def unwind(signum, _frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, unwind)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


@dataclass
class ProgramRun:
    """How one run of an external program ended. `returncode` is None when it could not start (`error` says
    why) or was killed at its timeout (`timed_out`)."""

    argv: list[str]
    returncode: int | None
    wall_seconds: float
    timed_out: bool = False
    error: str = ""
    stderr_tail: str = ""

    @property
    def started(self) -> bool:
        return not self.error


def stderr_tail(path: str | Path | None, lines: int = 3, skip: tuple[str, ...] = ()) -> str:
    """The last non-empty lines of a program's stderr file, joined with ' | ' (lines containing any of `skip`
    left out), or 'no message on stderr'."""
    if path is None or not Path(path).exists():
        return "no message on stderr"
    kept = [ln for ln in Path(path).read_text(errors="replace").splitlines()
            if ln.strip() and not any(s in ln for s in skip)]
    return " | ".join(kept[-lines:]) or "no message on stderr"


def run_program(argv: list[str], workdir: str | Path, *, stdout: str | Path, stderr: str | Path | None = None,
                env: dict[str, str] | None = None, timeout: float = 3600.0,
                stderr_skip: tuple[str, ...] = ()) -> ProgramRun:
    """Run `argv` (an argument list, never a shell string) in `workdir` in its own session (process group),
    stdout to the file `stdout`, stderr to `stderr` (None: into stdout), with SIGUSR2 ignored and SIGKILL on
    the parent's death (child_setup). At `timeout` seconds, or when this process is interrupted (an exception
    from a signal handler, or SIGTERM: sigterm_unwinds), the whole process group is killed. Never raises for a
    program that is missing or fails: see ProgramRun."""
    if not argv or not all(isinstance(a, str) for a in argv):
        return ProgramRun(list(argv or []), None, 0.0, error=f"command {argv!r}: give a non-empty list of strings")
    start = time.monotonic()
    with sigterm_unwinds(), open(stdout, "wb") as out, \
            (open(stderr, "wb") if stderr is not None else open(os.devnull, "wb")) as err:
        try:
            proc = subprocess.Popen(argv, cwd=workdir, stdout=out,
                                    stderr=err if stderr is not None else subprocess.STDOUT, env=env,
                                    start_new_session=True, preexec_fn=child_setup)
        except OSError as exc:
            return ProgramRun(list(argv), None, time.monotonic() - start, error=f"{argv[0]}: {exc}")
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)      # programs start one process per module (OpenMolcas, ORCA)
            proc.wait()
            return ProgramRun(list(argv), None, time.monotonic() - start, timed_out=True,
                              stderr_tail=stderr_tail(stderr, skip=stderr_skip))
        finally:
            if proc.poll() is None:                  # interrupted (time limit, SIGTERM): take the program down too
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    return ProgramRun(list(argv), code, time.monotonic() - start,
                      stderr_tail=stderr_tail(stderr, skip=stderr_skip) if code else "")


@dataclass(frozen=True)
class Profile:
    """How one quantum-chemistry program is run: its name in messages, the backend it serves, where its executable
    is, the suffix of its output file and the values key naming that file, what to tell a user who lacks it or
    whose run ran out of time, and stderr lines that are no error."""

    program: str
    backend: str
    executable: Callable[[], str | None]
    output_suffix: str
    output_key: str
    missing: str
    timeout_hint: str = ""
    stderr_skip: tuple[str, ...] = ()


def run_profile(profile: Profile, workdir: str | Path, input_name: str, *, name: str, timeout: float,
                check: Callable[[Path, str], tuple[str, str]], env: dict[str, str] | None = None):
    """Run the profile's program on `input_name` in `workdir` (output x.inp -> x<output_suffix>, stderr x.err) and
    return a Result whose status comes from `check(output, name)` (the program's own reading of its output), a
    non-zero exit with an output that says nothing worse being a crash. Never raises for a missing program, a
    timeout or a failed run."""
    from .result import Result, Status

    workdir = Path(workdir).resolve()
    executable = profile.executable()
    if executable is None:
        return Result.failure(name, profile.backend, Status.PROGRAM_MISSING, f"{name}: {profile.missing}",
                              workdir=str(workdir))
    out = workdir / f"{Path(input_name).stem}{profile.output_suffix}"
    outcome = run_program([executable, input_name], workdir, stdout=out, stderr=out.with_suffix(".err"), env=env,
                          timeout=timeout, stderr_skip=profile.stderr_skip)
    if outcome.timed_out:
        return Result.failure(name, profile.backend, Status.TIMEOUT,
                              f"{name}: {profile.program} did not finish within {timeout:.0f} s"
                              + (f"; {profile.timeout_hint}" if profile.timeout_hint else ""),
                              wall_seconds=outcome.wall_seconds, workdir=str(workdir))
    if not outcome.started:
        return Result.failure(name, profile.backend, Status.PROGRAM_MISSING, f"{name}: {outcome.error}",
                              workdir=str(workdir))
    status, message = check(out, name)
    if outcome.returncode != 0 and status in (Status.OK, Status.MISSING_OUTPUT, Status.TRUNCATED_OUTPUT):
        status, message = Status.CRASHED, (f"{name}: {profile.program} exited with code {outcome.returncode}: "
                                           f"{outcome.stderr_tail}")
    return Result(name=name, backend=profile.backend, status=status, message=message,
                  values={profile.output_key: str(out)}, wall_seconds=outcome.wall_seconds, workdir=str(workdir))

