"""The screen as a scoring oracle for other generators: REINVENT 4's ExternalProcess protocol, with a cache.

REINVENT 4 (its `ExternalProcess` scoring component) starts a program with SMILES on standard input, one per line,
and reads one JSON object from its standard output: {"version": 1, "payload": {"predictions": [...]}} with one
value per input line. `python -m gauss_hpc.screen --reinvent` speaks it:

  predictions        the screened property of each line (--property: "kd1", the first KD gap dE01 in cm-1, the
                     default; "total_splitting", the last gap; "g_perp", the ground doublet's transverse g
                     sqrt(gX^2 + gY^2), small for an axial doublet), NaN where the ligand could not be screened
  kd1, total_splitting, g_perp, status, reason, ligand_key
                     every property and what happened, per line (reason names the problem of a NaN line: not a
                     SMILES, assembly failure class, ...)

Standard output carries that JSON only: everything else the screen and its child processes print goes to
standard error. Each distinct ligand is screened once per call; the result is kept in a SQLite cache keyed by
the ligand's donor-rooted identity (chem.ligands.ligand_key) and the screen settings (template, geometry tier,
charge model), so a ligand a generator proposes again in a later call is never screened twice. Transient
failures (a timeout, a crash, a killed task) are not cached.

The expensive oracle (CASSCF job arrays) cannot answer within one call: `python -m gauss_hpc.reinvent submit
--spec SPEC` sends a batch (SMILES on standard input) through a job spec as a campaign and prints a ticket;
`python -m gauss_hpc.reinvent collect TICKET` prints the same JSON for it, NaN with status pending or running
for lines not finished yet.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sqlite3
import sys
import tempfile
from pathlib import Path

import numpy as np

from .chem.ligands import LigandError, identity_or_empty, ligand_key
from .targets import Target

PROPERTIES = ("kd1", "total_splitting", "g_perp")
TRANSIENT = ("timeout", "crashed", "killed", "cancelled", "pending", "running")


class ScoreCache:
    """{(ligand_key, settings): scores} in SQLite: safe for several clients at once (REINVENT's parallel scoring)."""

    def __init__(self, path: str | Path):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(path), timeout=60)
        with self.db:
            self.db.execute("CREATE TABLE IF NOT EXISTS scores (ligand_key TEXT, settings TEXT, kd1 REAL, "
                            "total_splitting REAL, status TEXT, reason TEXT, g_perp REAL, "
                            "PRIMARY KEY (ligand_key, settings))")
            columns = {row[1] for row in self.db.execute("PRAGMA table_info(scores)")}
            if "g_perp" not in columns:         # a cache written before g_perp was a property
                self.db.execute("ALTER TABLE scores ADD COLUMN g_perp REAL")

    def get(self, keys: list[str], settings: str) -> dict[str, dict]:
        """The cached scores of `keys`; a screened ligand cached before g_perp existed counts as not cached."""
        found = {}
        for key in keys:
            row = self.db.execute(f"SELECT {', '.join(PROPERTIES)}, status, reason FROM scores WHERE ligand_key = ? "
                                  "AND settings = ?", (key, settings)).fetchone()
            if row is None or (row[-2] == "ok" and row[PROPERTIES.index("g_perp")] is None):
                continue
            found[key] = {**{prop: _nan(v) for prop, v in zip(PROPERTIES, row)}, "status": row[-2],
                          "reason": row[-1]}
        return found

    def put(self, scores: dict[str, dict], settings: str) -> None:
        names = ("ligand_key", "settings", *PROPERTIES, "status", "reason")
        with self.db:
            self.db.executemany(f"INSERT OR REPLACE INTO scores ({', '.join(names)}) "
                                f"VALUES ({', '.join('?' * len(names))})",
                                [(key, settings, *(_none(s[prop]) for prop in PROPERTIES), s["status"], s["reason"])
                                 for key, s in scores.items() if s["status"] not in TRANSIENT])


def _nan(x):
    return math.nan if x is None else float(x)


def _none(x):
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def settings_key(template: str, geometry: str, charge_model: str) -> str:
    return json.dumps({"template": template, "geometry": geometry, "charge_model": charge_model}, sort_keys=True)


def _property_values(results: Path, ok: np.ndarray) -> dict[str, np.ndarray]:
    """Each of PROPERTIES per row of a results file, as the design targets define them (targets.py: total_splitting
    is each ion's own last gap, not the NaN padding; g_perp from the ground doublet's g values), NaN where the row
    is not ok."""
    from . import store

    arrays = store.read_result_arrays(results, ["kd_gaps", "g_tensors"])
    if "kd_gaps" not in arrays:
        return {prop: np.full(len(ok), math.nan) for prop in PROPERTIES}
    return {prop: np.where(ok, Target(prop).result_values(arrays), math.nan) for prop in PROPERTIES}


def _unscored(status: str, reason: str) -> dict:
    return {**{prop: math.nan for prop in PROPERTIES}, "status": status, "reason": reason}


def _screen_new(keys: list[str], workdir: Path, template: str, geometry: str, charge_model: str,
                workers: int | None) -> dict:
    """Screen the ligands `keys` (donor-first SMILES) in `workdir`; {key: scores}."""
    from . import store
    from .screen import screen

    workdir.mkdir(parents=True, exist_ok=True)
    ligands = workdir / "ligands.smi"
    ligands.write_text("".join(f"{k}\tligand{i}\n" for i, k in enumerate(keys)))
    out = screen(ligands, workdir / "screen.h5", geometry=geometry, charge_model=charge_model, workers=workers,
                 executor="local", template=template, quiet=True)
    table = store.read_results(out, ["status", "reason"])
    values = _property_values(out, (table["status"] == "ok").to_numpy())
    return {key: {**{prop: float(values[prop][k]) for prop in PROPERTIES},
                  "status": str(table["status"].iloc[k]), "reason": str(table["reason"].iloc[k])}
            for k, key in enumerate(keys)}


def score(lines: list[str], *, cache: str | Path, template: str, geometry: str, charge_model: str,
          workers: int | None = None) -> list[dict]:
    """One scores dict per input line (PROPERTIES, status, reason, ligand_key), cached as described."""
    settings = settings_key(template, geometry, charge_model)
    keys: list[str | None] = []
    rows: list[dict | None] = []
    for number, line in enumerate(lines, 1):
        smiles = line.split()[0] if line.split() else ""
        try:
            keys.append(ligand_key(smiles))
            rows.append(None)
        except LigandError as exc:
            keys.append(None)
            rows.append({**_unscored("invalid_input", f"line {number} {line!r}: {exc}"), "ligand_key": ""})
    store_ = ScoreCache(cache)
    wanted = list(dict.fromkeys(k for k in keys if k is not None))
    known = store_.get(wanted, settings)
    new = [k for k in wanted if k not in known]
    print(f"[reinvent] {len(lines)} lines, {len(wanted)} distinct ligands: {len(known)} cached, {len(new)} to screen",
          file=sys.stderr)
    if new:
        with tempfile.TemporaryDirectory(prefix="screen-", dir=Path(cache).parent) as tmp:
            scored = _screen_new(new, Path(tmp), template, geometry, charge_model, workers)
        store_.put(scored, settings)
        known.update(scored)
    return [row if row is not None else {**known[key], "ligand_key": key} for row, key in zip(rows, keys)]


def payload(rows: list[dict], prop: str) -> dict:
    """REINVENT 4's ExternalProcess answer: predictions (the chosen property) and every column per line."""
    columns = {name: [r[name] for r in rows] for name in (*PROPERTIES, "status", "reason", "ligand_key")}
    return {"version": 1, "payload": {"predictions": columns[prop], **columns}}


@contextlib.contextmanager
def stdout_for_json_only():
    """Yield a text stream on the real standard output while file descriptor 1 (ours and every child's) points
    at standard error, so nothing but the answer reaches the client."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        with os.fdopen(os.dup(saved), "w") as answer:
            yield answer
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def answer_screen(*, prop: str, cache: Path, template: str, geometry: str, charge_model: str,
                  workers: int | None) -> int:
    """`python -m gauss_hpc.screen --reinvent`: SMILES on standard input, the screen's JSON on standard output."""
    with stdout_for_json_only() as answer:
        lines = sys.stdin.read().splitlines()
        rows = score(lines, cache=cache, template=template, geometry=geometry, charge_model=charge_model,
                     workers=workers)
        answer.write(json.dumps(payload(rows, prop)) + "\n")
    return 0


# --- the expensive oracle: submit a batch now, collect its scores later -----------------------------------------

def submit_batch(lines: list[str], spec_path: str | Path, root: str | Path, executor: str | None = None) -> Path:
    """Send the ligands of `lines` (one per line, SMILES first) through a job spec (e.g. jobs/kd_casscf_molcas.toml)
    as a campaign under `root`; returns the campaign directory, the ticket that `collect` reads. Line k becomes
    the task named line<k+1>, so every line keeps its place whatever the program makes of it."""
    import hashlib
    import time as _time

    from . import jobs
    from .config import read_toml

    spec = read_toml(Path(spec_path), "job spec ")
    digest = hashlib.sha256("\n".join(lines).encode()).hexdigest()[:8]
    ticket = Path(root) / f"batch-{_time.strftime('%Y%m%dT%H%M%S')}-{digest}"
    ticket.mkdir(parents=True, exist_ok=False)
    batch = ticket / "batch.smi"
    batch.write_text("".join(f"{(line.split() or ['<empty>'])[0]}\tline{k + 1}\n" for k, line in enumerate(lines)))
    spec["input"] = {"path": str(batch.resolve())}
    spec.setdefault("campaign", {})["name"] = ticket.name
    jobs.submit(spec, ticket / "campaign", executor=executor, quiet=True)
    (ticket / "lines.json").write_text(json.dumps({"n_lines": len(lines), "spec": str(spec_path)}))
    return ticket


def collect(ticket: str | Path, prop: str = "kd1") -> dict:
    """REINVENT's payload for a submitted batch: the scores of the finished lines; a line whose task has not
    finished is NaN with status pending or running (collect again later), a failed one NaN with its reason."""
    from . import jobs, store

    ticket = Path(ticket)
    meta = ticket / "lines.json"
    if not meta.is_file():
        raise ValueError(f"{ticket}: not a batch ticket of `python -m gauss_hpc.reinvent submit` (no lines.json)")
    n_lines = json.loads(meta.read_text())["n_lines"]
    results = jobs.gather(ticket / "campaign", quiet=True)
    table = store.read_results(results, ["name", "smiles", "status", "reason", "message"])
    ok = (table["status"] == "ok").to_numpy()
    values = _property_values(results, ok)
    rows = [{**_unscored("missing", "no task"), "ligand_key": ""} for _ in range(n_lines)]
    for i, row in enumerate(table.to_dict("records")):
        k = int(str(row["name"]).removeprefix("line")) - 1
        key = identity_or_empty(str(row["smiles"]), donor=True)
        unfinished = row["status"] in ("pending", "running", "not_submitted")
        rows[k] = {**{prop: float(values[prop][i]) for prop in PROPERTIES},
                   "status": str(row["status"]),
                   "reason": "" if ok[i] else ("not finished: collect again later" if unfinished
                                            else str(row["message"] or row["reason"])),
                   "ligand_key": key}
    return payload(rows, prop)


def main(argv=None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m gauss_hpc.reinvent",
                                description="The expensive oracle for asynchronous generators: `submit` sends the "
                                            "SMILES on standard input through a job spec (a Slurm array where Slurm "
                                            "answers) and prints a ticket; `collect TICKET` prints REINVENT 4's "
                                            "ExternalProcess JSON for it (NaN with status pending/running for lines "
                                            "not finished yet). The fast screen is `python -m gauss_hpc.screen "
                                            "--reinvent`.")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("submit", help="SMILES on standard input -> a campaign; prints its ticket as JSON")
    s.add_argument("--spec", required=True, type=Path, help="job spec TOML, e.g. jobs/kd_casscf_molcas.toml")
    s.add_argument("--root", type=Path, default=Path("campaigns/reinvent"), help="where batches go")
    s.add_argument("--executor", choices=("auto", "local", "slurm", "debug"))
    c = sub.add_parser("collect", help="a ticket -> REINVENT 4 ExternalProcess JSON on standard output")
    c.add_argument("ticket", type=Path)
    c.add_argument("--property", choices=PROPERTIES, default="kd1")
    c.add_argument("--wait", action="store_true", help="wait until every task has finished")
    args = p.parse_args(argv)
    try:
        with stdout_for_json_only() as answer:
            if args.command == "submit":
                ticket = submit_batch(sys.stdin.read().splitlines(), args.spec, args.root, args.executor)
                answer.write(json.dumps({"ticket": str(ticket)}) + "\n")
            else:
                if args.wait:
                    from .jobs import Campaign

                    Campaign(args.ticket / "campaign").wait(progress=False)
                answer.write(json.dumps(collect(args.ticket, args.property)) + "\n")
    except (ValueError, FileNotFoundError, FileExistsError) as exc:
        print(f"gauss_hpc.reinvent: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
