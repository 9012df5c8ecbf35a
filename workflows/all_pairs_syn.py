#!/usr/bin/env python
"""All unordered pairs of a BIDS dataset (the paper's N(N-1)/2 protocol) with SM-GICNet and the ANTs SyN baseline.

Usage: python workflows/all_pairs_syn.py BIDS_DIR OUTPUT_DIR [-w WORK_DIR] [--model DIR] [--syn synquick]
       [--pairs-per-job 4] [--worker cf|debug] [--nprocs N]
Prints the group summary (mean +- std per method) and where the reports are.
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
    p.add_argument("-w", "--work-dir", type=Path, default=Path("work"))
    p.add_argument("--model", default=None, help="model folder (default: the packaged model)")
    p.add_argument("--syn", default="syn", choices=("syn", "synquick"), help="SyN flavour (synquick for a quick look)")
    p.add_argument("--pairs-per-job", type=int, default=4)
    p.add_argument("--worker", default="cf", choices=("cf", "debug"))
    p.add_argument("--nprocs", type=int, default=None)
    args = p.parse_args(argv)

    methods = ["smgicnet", args.syn, "identity"]
    plan, subjects = bids_plan(args.bids_dir, args.output_dir, args.work_dir, methods, pairs="all",
                               model=args.model, pairs_per_job=args.pairs_per_job, reports=True)
    result = run_bids_plan(plan, subjects, args.bids_dir, args.output_dir, args.worker, args.nprocs)
    summary = pd.read_csv(result.reports["summary_csv"])
    print(summary[["method", "n_pairs", "n_failed", "Dice", "Folding %", "Inverse consistency (mm)", "Seconds"]]
          .to_string(index=False))
    print("reports:", *result.reports.values(), sep="\n  ")
    for line in result.failed:
        print("failed:", line, file=sys.stderr)
    return 1 if result.failed else 0


if __name__ == "__main__":
    sys.exit(main())
