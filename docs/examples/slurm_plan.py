"""Train a prkd plan on a SLURM cluster through dask-jobqueue (not installed by prkd; pip install
dask-jobqueue).

    python docs/examples/slurm_plan.py --preset paper --jobs 4 --root /shared/scratch/prkd-outputs

Every job is one Dask worker with one GPU. Each worker trains one model at a time (``resources={"GPU": 1}``)
and writes into the same registry root, which must be on a filesystem that every node sees. The per-run lock
works there (``os.link``; a lock whose holder stops refreshing it for 10 minutes is stale). Adapt the
partition, account, memory and walltime to your site; nothing here has been run on a real SLURM cluster.
"""

from __future__ import annotations

import argparse

import prkd
from prkd.execution.dask_runner import DaskExecutor
from prkd.reproduce import train_preset_plan
from prkd.utils.allocator import worker_environ


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="paper")
    parser.add_argument("--jobs", type=int, default=4)
    parser.add_argument("--root", required=True, help="the registry root, on a shared filesystem")
    parser.add_argument("--cores", type=int, default=8)
    args = parser.parse_args()

    from dask_jobqueue import SLURMCluster
    from distributed import Client

    # the allocator tunables and thread counts, set before each worker starts
    env = worker_environ(args.cores)
    cluster = SLURMCluster(
        cores=args.cores, processes=1, memory="48GB", walltime="12:00:00",
        job_extra_directives=["--gres=gpu:1"],
        job_script_prologue=[f"export {k}={v}" for k, v in env.items()],
        worker_extra_args=["--resources", "GPU=1"],
    )
    cluster.scale(jobs=args.jobs)
    with Client(cluster) as client, DaskExecutor(client=client) as executor:
        outcome = train_preset_plan(args.preset, registry=prkd.open_registry(args.root), executor=executor)
        print(outcome.summary())


if __name__ == "__main__":
    main()
