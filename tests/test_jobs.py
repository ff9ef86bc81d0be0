"""Job specs, task ids, inputs, the runner (debug executor, in-process), shards, status and gather — no
scheduler needed. Real chemistry: molSimplify assembly and the crystal-field oracle."""

import json
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

from gauss_hpc import jobs, store
from gauss_hpc.jobs import shards
from gauss_hpc.jobs.spec import SpecError, load_spec, parse_spec
from gauss_hpc.jobs.steps import resolve
from gauss_hpc.jobs.tasks import make_tasks, read_inputs

ROOT = Path(__file__).resolve().parents[1]
CF_STEPS = [{"name": "assemble"}, {"name": "crystal_field"}]
# Shell metacharacters that must arrive as data everywhere (they are not valid SMILES: invalid_input)
NASTY = ["$(touch PWNED_dollar)", "`touch PWNED_tick`; echo x", "C'C\"; rm -rf PWNED_semicolon"]


def spec(smiles, steps=CF_STEPS, executor="debug", **resources):
    return {"campaign": {"name": "t", "executor": executor}, "input": {"smiles": smiles}, "steps": steps,
            "resources": resources}


@pytest.mark.parametrize("data,match", [
    ({"input": {"smiles": ["C"]}}, r"no \[\[steps\]\]"),
    ({"input": {}, "steps": [{"name": "assemble"}]}, r"\[input\]: give path"),
    ({"input": {"smiles": ["C"]}, "steps": [{"name": "frobnicate"}]}, r"step 'frobnicate' is not built in"),
    ({"input": {"smiles": ["C"]}, "steps": [{"name": "assemble", "resources": {"cpu": 2}}]},
     r"unknown resources \['cpu'\]"),
    ({"input": {"smiles": ["C"]}, "steps": [{"name": "assemble", "resources": {"time_min": -1}}]}, "time_min"),
    ({"campaign": {"executor": "pbs"}, "input": {"smiles": ["C"]}, "steps": [{"name": "assemble"}]}, "executor"),
    ({"inputs": {}}, r"unknown tables \['inputs'\]"),
])
def test_bad_specs_say_what_is_wrong(data, match):
    with pytest.raises(SpecError, match=match):
        parse_spec(data, "my.toml")


def test_shipped_specs_load_and_every_step_resolves():
    files = sorted((ROOT / "jobs").glob("*.toml"))
    assert {f.stem for f in files} >= {"cf_screen", "loprop_molcas", "kd_casscf_molcas", "orca_protocol"}
    for path in files:
        s = load_spec(path)
        for step in s.steps:
            assert callable(resolve(step.name, step.backend, step.function)), (path, step.name)


def test_task_ids_are_content_hashes(tmp_path):
    base = parse_spec(spec(["[O-]C", "N#CC", "[O-]C"]))
    tasks, duplicates = make_tasks(base)
    assert duplicates == 1 and [t["smiles"] for t in tasks] == ["[O-]C", "N#CC"]
    assert make_tasks(parse_spec(spec(["N#CC", "[O-]C"])))[0][0]["task_id"] == tasks[1]["task_id"]
    other = parse_spec(spec(["[O-]C"], steps=[{"name": "assemble", "params": {"metal": "Tb"}},
                                              {"name": "crystal_field"}]))
    assert make_tasks(other)[0][0]["task_id"] != tasks[0]["task_id"]
    # a changed input template makes a new task; the same template content the same task
    from gauss_hpc.abinitio.templates import TEMPLATE_DIR
    import shutil

    copy = tmp_path / "templates"
    shutil.copytree(TEMPLATE_DIR, copy)
    loprop = lambda d: parse_spec(spec(["[O-]C"], steps=[{"name": "loprop", "params": {"template_dir": str(d)}}]))
    first = make_tasks(loprop(copy))[0][0]["task_id"]
    assert make_tasks(loprop(copy))[0][0]["task_id"] == first
    (copy / "molcas" / "loprop.inp.j2").write_text((copy / "molcas" / "loprop.inp.j2").read_text() + "\n* edited\n")
    assert make_tasks(loprop(copy))[0][0]["task_id"] != first


def test_smiles_file_keeps_each_line_verbatim(tmp_path):
    path = tmp_path / "ligands.smi"
    path.write_text("# generated ligands\n[O-]C\tmethoxide\n\nN#CC\n" + NASTY[2] + "\n")
    table = read_inputs({"path": str(path)})
    assert table["smiles"].tolist() == ["[O-]C", "N#CC", NASTY[2]]
    assert table["name"].tolist() == ["methoxide", "line4", "line5"]


def test_ligands_file_input_is_recognised_by_its_kind():
    table = read_inputs({"path": str(ROOT / "data" / "ligands.h5"), "limit": 5})
    ligands = store.read_ligands(ROOT / "data" / "ligands.h5")
    assert table["smiles"].tolist() == ligands["smiles"].head(5).tolist()
    assert table["name"].tolist() == [f"ligand{i}" for i in range(5)]


def _samples_file(path, columns):
    with h5py.File(path, "w") as h5:
        store.stamp(h5, "samples")
        store.write_table(h5.create_group("samples"), columns)


def test_samples_input_selects_and_carries_seed_info(tmp_path):
    path = tmp_path / "samples.h5"
    _samples_file(path, {"smiles": ["[O-]C", "[O-]CC", "N#CC"], "canonical": ["C[O-]", "CC[O-]", "CC#N"],
                         "valid": [True, True, True], "novel": [True, False, True], "unique": [True, True, False],
                         "seed_id": [3, 3, 7], "sigma": [0.5, 1.0, 0.5]})
    table = read_inputs({"path": str(path), "select": ["valid", "unique"]})
    assert table["smiles"].tolist() == ["[O-]C", "[O-]CC"] and table["seed_id"].tolist() == [3, 3]
    assert table["sigma"].tolist() == [0.5, 1.0] and table["name"].tolist() == ["sample0", "sample1"]
    _samples_file(path, {"smiles": ["[O-]C"], "valid": [True]})
    with pytest.raises(SpecError, match=r"lacks columns \['canonical'"):
        read_inputs({"path": str(path)})


def test_debug_run_status_gather_and_shell_metacharacters(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    campaign = jobs.submit(spec(["[O-]C", "N#CC"] + NASTY), tmp_path / "c", quiet=True)
    table = jobs.status(campaign.dir)
    assert table["state"].tolist() == ["done", "done", "failed", "failed", "failed"]
    assert set(table["reason"][2:]) == {"invalid_input"}
    assert not list(tmp_path.rglob("PWNED*")), "a SMILES was interpreted by a shell"
    out = jobs.gather(campaign.dir, quiet=True)
    results = store.read_results(out)
    assert results["smiles"].tolist() == ["[O-]C", "N#CC"] + NASTY
    assert results["status"].tolist() == ["ok", "ok"] + ["invalid_input"] * 3
    arrays = store.read_result_arrays(out)
    kd = arrays["kd_energies"]
    assert kd.shape == (5, 8) and np.all(np.isnan(kd[2:])) and np.allclose(kd[:2, 0], 0.0)
    assert np.all(np.diff(kd[:2], axis=1) >= 0) and np.allclose(arrays["kd_gaps"][:2], kd[:2, 1:] - kd[:2, :1])
    assert arrays["g_tensors"].shape == (5, 8, 3)
    assert results["donor_z_axial_1"].tolist()[:2] == [8.0, 7.0]
    symbols, coords = store.read_geometry(out, 0)
    assert symbols[0] == "Dy" and coords.shape == (26, 3)
    # main magnetic axes: orthonormal rows; the ground doublet of trans-[Dy(H2O)5(OMe)2]+ (two methoxides, the
    # strongest donors) has its gZ axis along the O-Dy-O line, as a chemist expects of an axial complex
    axes = arrays["g_axes"]
    assert axes.shape == (5, 8, 3, 3) and np.isnan(axes[2:]).all()
    assert np.allclose(axes[:2] @ np.swapaxes(axes[:2], -1, -2), np.eye(3), atol=1e-8)
    oxygens = [k for k, s in enumerate(symbols) if s == "O"]
    methoxide = [k for k in oxygens if any(symbols[j] == "C" and np.linalg.norm(coords[j] - coords[k]) < 1.6
                                           for j in range(len(symbols)))]
    assert len(methoxide) == 2
    o_dy_o = coords[methoxide[0]] - coords[methoxide[1]]
    cosine = abs(axes[0, 0, 2] @ o_dy_o) / np.linalg.norm(o_dy_o)
    assert cosine > np.cos(np.radians(15)), f"ground gZ axis {np.degrees(np.arccos(cosine)):.0f} deg off O-Dy-O"
    with h5py.File(out) as h5:
        assert h5.attrs["kind"] == "results" and h5.attrs["n_ok"] == 2 and h5.attrs["n_failed"] == 3
        assert json.loads(h5.attrs["config"])["input"]["smiles"][2] == NASTY[0]
    # resubmitting the same spec skips every finished task
    before = len(shards.read_submissions(campaign.dir))
    jobs.submit(spec(["[O-]C", "N#CC"] + NASTY), tmp_path / "c", quiet=True)
    assert len(shards.read_submissions(campaign.dir)) == before


def test_gather_with_worker_processes_writes_the_same_results(tmp_path, monkeypatch):
    """Shards read by 2 forked workers, chunk by chunk, give the file a single process gives: rows in task order,
    failures, a corrupt shard, arrays, geometry and the content hash."""
    import importlib

    gather_module = importlib.import_module("gauss_hpc.jobs.gather")     # the package exports the function

    campaign = jobs.submit(spec(["[O-]C", "N#CC", "OC", "[NH2-]", "[OH-]", NASTY[0]]), tmp_path / "c", quiet=True)
    corrupt = shards.shard_path(campaign.dir, campaign.tasks()[2]["task_id"])
    corrupt.write_text(corrupt.read_text()[:100])
    odd = shards.shard_path(campaign.dir, campaign.tasks()[3]["task_id"])     # valid JSON, malformed geometry
    shard = json.loads(odd.read_text())
    for record in shard["steps"]:
        if "complex" in (record.get("values") or {}):
            record["values"]["complex"]["coords"] = [[0.0, 1.0]]
    odd.write_text(json.dumps(shard))
    monkeypatch.setattr(gather_module, "CHUNK_ROWS", 2)          # 3 chunks: the parallel path runs
    serial = jobs.gather(campaign.dir, tmp_path / "serial.h5", quiet=True, workers=1)
    parallel = jobs.gather(campaign.dir, tmp_path / "parallel.h5", quiet=True, workers=2)
    pd.testing.assert_frame_equal(store.read_results(serial), store.read_results(parallel))
    assert store.read_results(parallel)["status"].tolist()[1:3] == ["ok", "corrupt_shard"]
    for name, values in store.read_result_arrays(serial).items():
        np.testing.assert_array_equal(values, store.read_result_arrays(parallel)[name])
    for row in range(6):
        a, b = store.read_geometry(serial, row), store.read_geometry(parallel, row)
        assert a[0] == b[0] and np.array_equal(a[1], b[1])
    assert len(store.read_geometry(serial, 3)[0]) == 0 and len(store.read_geometry(serial, 4)[0]) > 0
    with h5py.File(serial) as one, h5py.File(parallel) as two:
        assert one.attrs["content_sha256"] == two.attrs["content_sha256"]
    with pytest.raises(ValueError, match="gather workers"):
        jobs.gather(campaign.dir, tmp_path / "x.h5", quiet=True, workers=-1)


def test_corrupt_shard_is_reported_resubmitted_and_gathered_once(tmp_path):
    campaign = jobs.submit(spec(["[O-]C", "N#CC", "OC"]), tmp_path / "c", quiet=True)
    out = jobs.gather(campaign.dir, quiet=True)
    first = out.read_bytes()
    assert jobs.gather(campaign.dir, quiet=True).read_bytes() == first, "gather twice must give the same file"
    victim = jobs.status(campaign.dir)["task_id"][1]
    shard = shards.shard_path(campaign.dir, victim)
    shard.write_text(shard.read_text()[:100])                      # truncated, as by a full disk
    shards.shard_path(campaign.dir, jobs.status(campaign.dir)["task_id"][2]).write_bytes(b"\x00\xff garbage")
    table = jobs.status(campaign.dir)
    assert table["reason"].tolist() == ["", "corrupt_shard", "corrupt_shard"]
    assert "not valid JSON" in table["message"][1]
    summary = jobs.summary(table)
    assert summary.loc[summary["reason"] == "corrupt_shard", "tasks"].item() == 2
    jobs.resubmit(campaign.dir, quiet=True)
    table = jobs.status(campaign.dir)
    assert table["state"].tolist() == ["done"] * 3 and table["attempt"].tolist() == [1, 2, 2]
    # both steps had succeeded: their cached results rebuild the shard without recomputing
    shard = shards.read_shard(campaign.dir, victim)
    assert [s["cached"] for s in shard["steps"]] == [True, True]
    results = store.read_results(jobs.gather(campaign.dir, quiet=True))
    assert results["task_id"].is_unique and len(results) == 3 and set(results["status"]) == {"ok"}
    assert not [p for p in campaign.dir.iterdir() if p.name.endswith(".tmp")]


def test_an_ok_shard_of_another_attempt_is_done_and_never_recomputed(tmp_path):
    """A task's OK shard written by another attempt (a hand re-gather, a submission whose record was lost): the task
    runner skips the task when a later submission reaches it, so status must call it done, not pending or failed
    (the DFT campaign's water showed as pending behind a running job, then would have shown as failed)."""
    campaign = jobs.submit(spec(["[O-]C", "OC"]), tmp_path / "c", quiet=True)
    tid = jobs.status(campaign.dir)["task_id"][0]
    path = shards.shard_path(campaign.dir, tid)
    path.write_text(json.dumps({**json.loads(path.read_text()), "attempt": 0}))
    assert jobs.status(campaign.dir)["state"].tolist() == ["done", "done"]
    assert store.read_results(jobs.gather(campaign.dir, quiet=True))["status"].tolist() == ["ok", "ok"]


def test_failing_step_keeps_the_backend_message(tmp_path):
    steps = [{"name": "program", "params": {"command": ["no-such-program-xyz", "--help"]}}]
    campaign = jobs.submit(spec(["[O-]C"], steps=steps), tmp_path / "c", quiet=True)
    row = jobs.status(campaign.dir).iloc[0]
    assert row["state"] == "failed" and row["reason"] == "program_missing"
    assert "no-such-program-xyz" in row["message"]
    steps = [{"name": "crystal_field"}]          # needs a complex: a clear message, not a traceback
    campaign = jobs.submit(spec(["[O-]C"], steps=steps), tmp_path / "d", quiet=True)
    row = jobs.status(campaign.dir).iloc[0]
    assert row["reason"] == "invalid_input" and "run 'assemble'" in row["message"]
    # a later step failing keeps the crystal-field KDs, and the row says which step they come from
    steps = [{"name": "assemble"}, {"name": "crystal_field"},
             {"name": "program", "params": {"command": ["no-such-program-xyz"]}}]
    campaign = jobs.submit(spec(["[O-]C"], steps=steps), tmp_path / "e", quiet=True)
    results = store.read_results(jobs.gather(campaign.dir, quiet=True)).iloc[0]
    assert results["status"] == "program_missing" and results["kd_step"] == "crystal_field" \
        and results["kd_method"] == "crystal_field"


def test_a_step_timeout_does_not_end_the_array_element(tmp_path):
    # a program's own timeout fails its task; the next task of the same array element still runs
    steps = [{"name": "program", "params": {"command": ["sleep", "5"], "timeout_s": 0.3}}]
    campaign = jobs.submit(spec(["C", "CC"], steps=steps), tmp_path / "c", quiet=True)
    table = jobs.status(campaign.dir)
    assert list(table["reason"]) == ["timeout", "timeout"]
    assert all("ran past" in m for m in table["message"]), list(table["message"])


def test_cli_status_and_gather(tmp_path, capsys):
    path = tmp_path / "spec.toml"
    path.write_text('[campaign]\nname = "cli"\nexecutor = "debug"\n[input]\nsmiles = ["[O-]C", "xx"]\n'
                    '[[steps]]\nname = "assemble"\n[[steps]]\nname = "crystal_field"\n')
    assert jobs.main(["submit", str(path), "--campaign", str(tmp_path / "c")]) == 0
    capsys.readouterr()
    assert jobs.main(["status", str(tmp_path / "c"), "--tasks"]) == 0
    text = capsys.readouterr().out
    assert "invalid_input" in text and "done" in text and "ligand1" in text
    assert jobs.main(["gather", str(tmp_path / "c")]) == 0
    assert (tmp_path / "c" / "results.h5").is_file()
    assert jobs.main(["status", str(tmp_path / "nowhere")]) == 2
    assert "not a campaign directory" in capsys.readouterr().err


@pytest.mark.slow
def test_real_openmolcas_casscf_through_a_local_array(tmp_path):
    """Assembly then OpenMolcas SA-CASSCF/RASSI-SO/SINGLE_ANISO (cheap basis) for methoxide through the local
    executor, gathered: 8 Kramers doublets with the ground doublet at 0 (minutes on 2 cores)."""
    import shutil

    from gauss_hpc.abinitio.molcas import CHEAP_CASSCF

    if shutil.which("pymolcas") is None:
        pytest.skip("NO OPENMOLCAS: pymolcas not on PATH (apt-get install openmolcas)")
    steps = [{"name": "assemble"},
             {"name": "casscf", "backend": "molcas", "params": dict(CHEAP_CASSCF, cores=2, memory_mb=2000),
              "resources": {"cpus": 2, "mem_gb": 4, "time_min": 60}}]
    campaign = jobs.submit(spec(["[O-]C"], steps=steps, executor="local"), tmp_path / "c", quiet=True)
    table = campaign.wait(timeout=3600, poll=10, progress=False)
    assert table["state"].tolist() == ["done"], table[["reason", "message"]]
    out = jobs.gather(campaign.dir, quiet=True)
    kd = store.read_result_arrays(out)["kd_energies"][0]
    assert kd[0] == pytest.approx(0.0, abs=1e-6) and np.all(np.diff(kd) >= 0) and kd[-1] > 10
    assert store.read_results(out)["backend"][0] == "molcas"


def test_programs_outlive_the_time_limit_warning_meant_for_the_task_runner():
    """Slurm sends the time-limit warning (USR2) to every process of the step; a program the task started must
    not die of it (it would be reported as crashed instead of timeout): the runner stops it itself."""
    import signal
    import subprocess
    import time

    from gauss_hpc.abinitio.process import child_setup

    proc = subprocess.Popen(["sleep", "30"], start_new_session=True, preexec_fn=child_setup)
    try:
        time.sleep(0.3)
        proc.send_signal(signal.SIGUSR2)
        time.sleep(0.5)
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.wait()


def test_a_script_killed_by_sigterm_takes_the_programs_children_down(tmp_path):
    """`kill` of a plain script (bench/oracle_fidelity.py running OpenMolcas) must not leave the program's own
    children running (OpenMolcas's loprop.exe was found orphaned): the whole process group goes with it."""
    import os
    import signal
    import subprocess
    import sys
    import time

    script = ("import sys; from gauss_hpc.abinitio.process import run_program; "
              "run_program(['sh', '-c', 'sleep 120 & echo $! > grandchild.pid; wait'], sys.argv[1], "
              "stdout=sys.argv[1] + '/out.txt')")
    runner = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)])
    pid_file = tmp_path / "grandchild.pid"
    deadline = time.monotonic() + 30
    while not (pid_file.exists() and pid_file.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.1)
    grandchild = int(pid_file.read_text())
    runner.send_signal(signal.SIGTERM)
    assert runner.wait(timeout=30) == 128 + signal.SIGTERM
    def running(pid):      # a killed child nobody has reaped yet (state Z) is not running
        try:
            return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except (FileNotFoundError, ProcessLookupError):
            return False

    deadline = time.monotonic() + 10
    while running(grandchild) and time.monotonic() < deadline:
        time.sleep(0.1)
    if running(grandchild):
        os.kill(grandchild, signal.SIGKILL)
        pytest.fail(f"the program's child {grandchild} outlived the script killed by SIGTERM")


def test_unknown_step_params_are_errors_naming_spec_and_key(tmp_path):
    path = tmp_path / "typo.toml"
    path.write_text('[input]\nsmiles = ["[O-]C"]\n[[steps]]\nname = "assemble"\n[[steps]]\nname = "casscf"\n'
                    '[steps.params]\nciroots = 11\n')
    with pytest.raises(SpecError, match=r"typo\.toml \[\[steps\]\] #2 \(casscf\): unknown params \['ciroots'\]"):
        load_spec(path)
    with pytest.raises(SpecError, match="metall"):
        parse_spec(spec(["[O-]C"], steps=[{"name": "assemble", "params": {"metall": "Tb"}}]))
    parse_spec(spec(["[O-]C"], steps=[{"name": "assemble", "params": {"metal": "Tb", "seed": 3}}]))
    # steps that forward their params through a chain of functions are checked to its end
    for step, typo in [({"name": "crystal_field"}, "charge_modle"), ({"name": "xtb_relax"}, "max_step"),
                       ({"name": "xtb_label", "backend": "xtb"}, "relax"),
                       ({"name": "casscf", "backend": "orca"}, "nroot"), ({"name": "opt", "backend": "orca"}, "metod"),
                       ({"name": "loprop", "backend": "molcas"}, "functinal")]:
        with pytest.raises(SpecError, match=rf"unknown params \['{typo}'\]"):
            parse_spec(spec(["[O-]C"], steps=[{"name": "assemble"}, {**step, "params": {typo: 1}}]))
    parse_spec(spec(["[O-]C"], steps=[{"name": "assemble"}, {"name": "casscf", "backend": "orca",
                                                             "params": {"nroots": 5, "n_doublets": 8}}]))
    with pytest.raises(SpecError, match=r"unknown params \['geometry'\]"):     # the backend sets it
        parse_spec(spec(["[O-]C"], steps=[{"name": "assemble"}, {"name": "casscf", "backend": "orca",
                                                                 "params": {"geometry": "x"}}]))


def test_the_job_core_imports_no_chemistry():
    """Executor, tasks, shards, status and gather know steps and values; chemistry comes with the backends a spec
    names, when a step runs (a login node can submit and gather without RDKit, molSimplify, xTB or PySCF)."""
    code = ("import sys, gauss_hpc.jobs; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'rdkit', 'molSimplify', 'tblite', 'dftd4', "
            "'pyscf', 'torch', 'scipy'}), sorted(m for m in sys.modules if m.startswith('gauss_hpc.chem')))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[] []"
