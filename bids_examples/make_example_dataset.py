#!/usr/bin/env python
"""Build the example BIDS dataset (Colin27 + AAL from Debian's mricron-data) into OUT_DIR.

Usage: python bids_examples/make_example_dataset.py [OUT_DIR] [--subjects 4] [--seed 0]
       [--voxel-mm 2.0] [--two-session-subjects 0]
Default OUT_DIR: bids_examples/colin27 (git-ignored). See smgic_pydra.bids.examples.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from smgic_pydra.bids.examples import make_example_dataset


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", nargs="?", default=Path(__file__).resolve().parent / "colin27", type=Path)
    parser.add_argument("--subjects", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--voxel-mm", type=float, default=2.0)
    parser.add_argument("--two-session-subjects", type=int, default=0, help="the last N subjects get ses-1 and ses-2")
    args = parser.parse_args(argv)
    out = make_example_dataset(args.out_dir, args.subjects, args.seed, args.voxel_mm, args.two_session_subjects)
    print(out)


if __name__ == "__main__":
    main()
