#!/usr/bin/env python
"""Register every subject of a BIDS dataset to one reference subject with SM-GICNet (identity as the baseline).

Usage: python workflows/to_reference.py BIDS_DIR OUTPUT_DIR --reference sub-01 [-w WORK_DIR] [--model DIR]
       [--method smgicnet,affine] [--pairs-per-job 4] [--worker cf|debug|slurm]
Every other subject is the moving image, so its outputs live in its own folder; the warped labels of
all subjects end up on the reference grid (``*_space-<reference>_desc-<method>_dseg.nii.gz``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from smgic_pydra.workflows.bids_cohort import bids_plan, run_bids_plan


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("bids_dir", type=Path)
    p.add_argument("output_dir", type=Path)
    p.add_argument("--reference", required=True, help="subject key of the fixed image, e.g. sub-01")
    p.add_argument("-w", "--work-dir", type=Path, default=Path("work"))
    p.add_argument("--model", default=None)
    p.add_argument("--method", default="smgicnet", help="comma list (identity is always added)")
    p.add_argument("--pairs-per-job", type=int, default=4)
    p.add_argument("--worker", default="cf", choices=("cf", "debug", "slurm"), help="slurm: smgic_pydra.hpc.SlurmArrayWorker")
    args = p.parse_args(argv)

    methods = list(dict.fromkeys([m for m in args.method.split(",") if m] + ["identity"]))
    plan, subjects = bids_plan(args.bids_dir, args.output_dir, args.work_dir, methods,
                               pairs=f"reference:{args.reference}", model=args.model,
                               pairs_per_job=args.pairs_per_job, reports=True)
    result = run_bids_plan(plan, subjects, args.bids_dir, args.output_dir, args.worker)
    pairs = pd.read_csv(result.reports["pairs"], keep_default_na=False)
    columns = ["method", "moving", "fixed", "dice_mean", "folding_percent", "seconds", "error"]
    print(pairs[columns].to_string(index=False))
    print("reports:", *result.reports.values(), sep="\n  ")
    return 1 if result.failed else 0


if __name__ == "__main__":
    sys.exit(main())
