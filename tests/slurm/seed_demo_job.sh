#!/bin/bash
# SPDX-License-Identifier: MIT
# A batch job: mpirun starts the seed demo on the job's 3 tasks (Open MPI reads the allocation
# from Slurm's environment, so -n matches --ntasks and no host list is given).
#   sbatch --wait seed_demo_job.sh /path/to/seed_demo
# --overcommit: 3 ranks may share fewer cores (rank 0 mostly waits on the others).
#SBATCH --job-name=seed_demo
#SBATCH --ntasks=3
#SBATCH --overcommit
#SBATCH --time=5
set -euo pipefail
demo=$1
echo "job $SLURM_JOB_ID: $SLURM_NTASKS tasks on $SLURM_JOB_NODELIST"
as_root=()
[ "$(id -u)" -ne 0 ] || as_root=(--allow-run-as-root) # Open MPI refuses root without it
mpirun "${as_root[@]}" -n "$SLURM_NTASKS" "$demo" --pool mpi --workers 3 --tasks 6 \
    --chunksize 2 --samples 1 --iterations 100000
