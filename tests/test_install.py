"""A wheel install (`pip install .`, not editable) carries what the package reads at run time: defaults.toml and
the input templates, found from a directory that is not the clone."""

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHECK = """
import sys
from pathlib import Path
import gauss_hpc
from gauss_hpc import config
from gauss_hpc.abinitio import templates

assert Path(gauss_hpc.__file__).resolve().is_relative_to(Path(sys.prefix).resolve()), gauss_hpc.__file__
assert config.defaults()["train"]["latent_dim"] == 32
assert templates.TEMPLATE_DIR.resolve().is_relative_to(Path(sys.prefix).resolve()), templates.TEMPLATE_DIR
for name in ("molcas/casscf_so.inp.j2", "molcas/integrals.inp.j2", "molcas/loprop.inp.j2",
             "orca/casscf_soc.inp.j2", "orca/opt.inp.j2"):
    templates.environment().get_template(name)
print("installed copy OK:", templates.TEMPLATE_DIR)
"""


def test_wheel_install_finds_defaults_and_templates(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    # The dependencies come from the test environment (a .pth file); gauss_hpc itself only from the wheel.
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    build = tmp_path / "src"                              # the working tree's tracked files, as a clone has them
    tracked = subprocess.run(["git", "ls-files", "-z"], capture_output=True, text=True, check=True, cwd=ROOT)
    for name in tracked.stdout.split("\0"):
        if name and (ROOT / name).is_file() and not name.startswith(("data/", "tests/", "bench/", "docs/")):
            (build / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(ROOT / name, build / name)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
                    "--no-build-isolation", "--no-index", str(build)], check=True, env=env, cwd=tmp_path)
    elsewhere = tmp_path / "work"
    elsewhere.mkdir()
    done = subprocess.run([str(python), "-c", CHECK], capture_output=True, text=True, env=env, cwd=elsewhere)
    assert done.returncode == 0, done.stderr
    assert "installed copy OK" in done.stdout
