"""One CLI convention: every stage spells the same thing the same way (--ligands, --config, --quiet, --seed), the
older spellings still work for one release with a warning and are not advertised, and `gauss-hpc <stage>` is
every stage."""

import subprocess
import sys

import pytest

from gauss_hpc import cli, label, merge, sample, screen, train


def options(parser):
    return {o for action in parser._actions for o in action.option_strings if action.help != "==SUPPRESS=="}


@pytest.mark.parametrize("parser, expected", [
    (label.build_parser(), {"--ligands", "--config", "--quiet"}),
    (merge.build_parser(), {"--ligands"}),
    (train.build_parser(), {"--ligands", "--config", "--quiet", "--seed"}),
    (sample.build_parser(), {"--ligands", "--config", "--quiet", "--seed"}),
    (screen.build_parser(), {"--config", "--quiet"}),
])
def test_stages_share_their_flags(parser, expected):
    shown = options(parser)
    assert expected <= shown
    assert not shown & {"--in", "--into", "--no-progress", "--rng-seed"}      # old spellings are not advertised


def test_old_spellings_still_work_and_say_what_to_write(capsys):
    args = label.build_parser().parse_args(["--in", "x.h5", "--no-progress"])
    assert args.path == "x.h5" and args.quiet
    err = capsys.readouterr().err
    assert "--in is deprecated" in err and "write --ligands" in err and "write --quiet" in err
    assert merge.build_parser().parse_args(["r.h5", "--into", "l.h5"]).into == "l.h5"
    assert "write --ligands" in capsys.readouterr().err
    args = sample.build_parser().parse_args(["run", "--rng-seed", "7", "--no-progress"])
    assert args.seed == 7 and args.quiet
    args = train.build_parser().parse_args(["--no-progress", "--seed", "3"])
    assert args.quiet and args.seed == 3


def test_a_missing_ligands_file_is_named(capsys):
    with pytest.raises(SystemExit) as stop:
        label.main(["--backend", "xtb"])
    assert stop.value.code == 2 and "--ligands LIGANDS.h5 is required" in capsys.readouterr().err


def test_every_stage_is_a_gauss_hpc_subcommand_with_help():
    for stage in cli.STAGES:
        proc = subprocess.run([sys.executable, "-m", "gauss_hpc.cli", stage, "--help"], capture_output=True,
                              text=True, timeout=120)
        assert proc.returncode == 0 and "usage:" in proc.stdout, (stage, proc.stderr[-500:])


def test_demo_takes_a_template_and_refuses_an_unknown_one(tmp_path, capsys):
    from gauss_hpc import demo

    assert demo.main(["--template", "dy_nope", "--out", str(tmp_path / "d")]) == 2
    assert "dy_thf5_pbp" in capsys.readouterr().err and not (tmp_path / "d").exists()
    cfg = {"template": "dy_thf5_pbp", "casscf_params": {}, "workers": 1, "tasks_per_job": 1}
    assert demo.kd_label(cfg) == "cf_dy_thf5_pbp_kd_gaps"
    assert demo.screen_spec("s", {}, cfg)["steps"][0] == {"name": "assemble", "params": {"template": "dy_thf5_pbp"}}
