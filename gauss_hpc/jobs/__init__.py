"""Ab initio job arrays: submit a spec as submitit job arrays (Slurm, local or debug), track, resubmit failures,
gather every task's result shard into results.h5.

    from gauss_hpc import jobs
    campaign = jobs.submit("jobs/cf_screen.toml", "campaigns/cf", executor="local", input="samples.h5")
    campaign.wait()
    jobs.status("campaigns/cf")                  # DataFrame: one row per task (state, reason, message, ...)
    jobs.resubmit("campaigns/cf", reasons=["timeout"], time_factor=2)
    jobs.gather("campaigns/cf")                  # -> campaigns/cf/results.h5

    jobs.import_outputs(["old_runs/"], "old.h5")  # existing ORCA/OpenMolcas outputs -> the same results schema

CLI: `python -m gauss_hpc.jobs {submit,status,resubmit,gather,cancel,wait,import} ...` (see `--help`).
"""

from .campaign import Campaign, cancel, resubmit, submit
from .cli import main
from .gather import gather
from .importer import import_outputs
from .shards import CampaignError
from .spec import Spec, SpecError, load_spec
from .status import status, summary

__all__ = ["Campaign", "CampaignError", "Spec", "SpecError", "cancel", "gather", "import_outputs", "load_spec", "main", "resubmit",
           "status", "submit", "summary"]
