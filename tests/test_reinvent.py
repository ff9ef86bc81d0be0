"""The screen as REINVENT 4's ExternalProcess oracle (gauss_hpc.reinvent): a real client process writes SMILES to
`python -m gauss_hpc.screen --reinvent` and reads its standard output as REINVENT does (json.loads, then
payload["predictions"]), twice, the second time from the cache."""

import json
import math
import subprocess
import sys
import time

import pytest

from gauss_hpc import store
from gauss_hpc.screen import screen


def _client(lines, cache, *extra):
    """What REINVENT's ExternalProcess does: SMILES joined by newlines on stdin, one JSON object on stdout."""
    run = subprocess.run([sys.executable, "-m", "gauss_hpc.screen", "--reinvent", "--cache", str(cache), *extra],
                         input="\n".join(lines), capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout), run.stderr


def test_a_generator_scores_ligands_through_the_protocol_and_the_cache(tmp_path):
    lines = ["[O-]C", "C1CC1(", "O", "[O-]C", "[Cl-]"]
    data, log = _client(lines, tmp_path / "cache.sqlite")
    assert data["version"] == 1
    p = data["payload"]
    assert len(p["predictions"]) == len(lines) and p["predictions"] == p["kd1"]
    assert p["status"][0] == "ok" and p["predictions"][0] > 0 and p["predictions"][0] == p["predictions"][3]
    assert math.isnan(p["predictions"][1]) and p["status"][1] == "invalid_input" and "line 2" in p["reason"][1]
    assert p["total_splitting"][0] > p["kd1"][0]
    assert "3 distinct ligands: 0 cached, 3 to screen" in log
    # the same numbers as the screen of a file
    (tmp_path / "l.smi").write_text("[O-]C\tmethoxide\nO\twater\n")
    screen(tmp_path / "l.smi", tmp_path / "s.h5", quiet=True)
    arrays = store.read_result_arrays(tmp_path / "s.h5", ["kd_gaps", "g_tensors"])
    gaps, ground_g = arrays["kd_gaps"], arrays["g_tensors"][:, 0]
    assert p["kd1"][0] == pytest.approx(gaps[0, 0]) and p["kd1"][2] == pytest.approx(gaps[1, 0])
    assert p["g_perp"][0] == pytest.approx(math.hypot(ground_g[0, 0], ground_g[0, 1]))       # the axiality
    # a later call never screens a ligand twice; another property is another column of the same scores
    start = time.monotonic()
    again, log = _client(["O", "[O-]C"], tmp_path / "cache.sqlite", "--property", "total_splitting")
    assert "2 cached, 0 to screen" in log and time.monotonic() - start < 30
    assert again["payload"]["predictions"] == [p["total_splitting"][2], p["total_splitting"][0]]


def test_a_cache_written_before_g_perp_is_upgraded_and_its_screened_ligands_screened_again(tmp_path):
    import sqlite3

    from gauss_hpc.reinvent import ScoreCache

    old = sqlite3.connect(tmp_path / "old.sqlite")
    old.execute("CREATE TABLE scores (ligand_key TEXT, settings TEXT, kd1 REAL, total_splitting REAL, status TEXT, "
                "reason TEXT, PRIMARY KEY (ligand_key, settings))")
    old.executemany("INSERT INTO scores VALUES (?, ?, ?, ?, ?, ?)", [("O", "s", 30.0, 400.0, "ok", ""),
                                                                     ("[Cl-]", "s", None, None, "failed", "no donor")])
    old.commit()
    old.close()
    cache = ScoreCache(tmp_path / "old.sqlite")
    found = cache.get(["O", "[Cl-]"], "s")
    assert list(found) == ["[Cl-]"] and math.isnan(found["[Cl-]"]["g_perp"])     # "O" has no g_perp: screen again
    cache.put({"O": {"kd1": 31.0, "total_splitting": 401.0, "g_perp": 0.5, "status": "ok", "reason": ""}}, "s")
    assert cache.get(["O"], "s")["O"]["g_perp"] == 0.5


def test_reinvent_mode_refuses_files():
    run = subprocess.run([sys.executable, "-m", "gauss_hpc.screen", "--reinvent", "x.smi"], capture_output=True,
                         text=True, input="")
    assert run.returncode == 2 and "standard input" in run.stderr


def test_the_shipped_reinvent_fragment_runs_as_reinvent_would_run_it(tmp_path, monkeypatch):
    """reinvent/gauss_screen.toml: its endpoint's executable (here this Python) and shlex-split args, SMILES on
    stdin, payload[params.property] one value per SMILES."""
    import shlex
    import tomllib
    from pathlib import Path

    fragment = tomllib.loads((Path(__file__).parents[1] / "reinvent" / "gauss_screen.toml").read_text())
    endpoint = fragment["stage"]["scoring"]["component"][0]["ExternalProcess"]["endpoint"][0]
    params = endpoint["params"]
    assert params["args"].startswith("-m gauss_hpc.screen --reinvent")
    monkeypatch.setenv("HOME", str(tmp_path))           # the default cache lies under ~/.cache
    run = subprocess.run([sys.executable, *shlex.split(params["args"])], input="\n".join(["O", "[O-]C"]),
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    scores = json.loads(run.stdout)["payload"][params["property"]]
    assert len(scores) == 2 and scores[1] > scores[0] > 0
    assert (tmp_path / ".cache" / "gauss_hpc" / "screen_scores.sqlite").is_file()


def test_the_expensive_oracle_is_a_submit_and_collect_pair(tmp_path):
    """An asynchronous client sends a batch through a job spec (here the crystal-field spec, local executor:
    the pair is the same for jobs/kd_casscf_molcas.toml on Slurm), gets a ticket and collects REINVENT's JSON."""
    from pathlib import Path

    spec = Path(__file__).parents[1] / "jobs" / "cf_screen.toml"
    sent = subprocess.run([sys.executable, "-m", "gauss_hpc.reinvent", "submit", "--spec", str(spec), "--root",
                           str(tmp_path), "--executor", "local"], input="[O-]C\nC1CC1(\nO\n", capture_output=True,
                          text=True, timeout=300)
    assert sent.returncode == 0, sent.stderr
    ticket = json.loads(sent.stdout)["ticket"]
    got = subprocess.run([sys.executable, "-m", "gauss_hpc.reinvent", "collect", ticket, "--wait"],
                         capture_output=True, text=True, timeout=600)
    assert got.returncode == 0, got.stderr
    p = json.loads(got.stdout)["payload"]
    assert p["status"] == ["ok", "invalid_input", "ok"] and p["ligand_key"][0] == "[O-]C"
    assert p["predictions"][0] > 300 and math.isnan(p["predictions"][1]) and "C1CC1(" in p["reason"][1]
    bad = subprocess.run([sys.executable, "-m", "gauss_hpc.reinvent", "collect", str(tmp_path)],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "not a batch ticket" in bad.stderr
