#!/usr/bin/env python
"""One pair, every method side by side: Dice per label, HD95, folding and inverse consistency.

Usage: python workflows/compare_methods.py DERIVATIVES_DIR OUTPUT_DIR --fixed sub-01 --moving sub-02
       [--methods smgicnet,synquick,affine] [--model DIR] [--refine N] [-w WORK_DIR] [--worker cf|debug]
DERIVATIVES_DIR holds sMRIPrep-style subjects (``*_desc-preproc_T1w``, ``*_desc-brain_mask``, ``*_dseg``).
Writes OUTPUT_DIR/dice.tsv (label, name, one Dice column per method) and OUTPUT_DIR/summary.tsv (per method:
mean Dice, mean HD95 mm, folding %, inverse consistency mm).
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

from pydra.compose import workflow

from smgic_pydra.workflows import init_pair_wf

sys.path.insert(0, str(Path(__file__).resolve().parent))
from atlas_volumetry import add_run_arguments, subjects  # noqa: E402  (the same options and file discovery)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("derivatives", type=Path)
    p.add_argument("output_dir", type=Path)
    p.add_argument("--fixed", required=True)
    p.add_argument("--moving", required=True)
    p.add_argument("--methods", default="smgicnet,synquick,affine", help="comma list of registry methods")
    add_run_arguments(p)
    args = p.parse_args(argv)

    found = subjects(args.derivatives)
    fixed, moving = found[args.fixed], found[args.moving]
    methods = [m for m in args.methods.split(",") if m]
    table = args.derivatives / "dseg.tsv"
    names = {}
    if table.is_file():
        names = {int(r["index"]): r["name"] for r in csv.DictReader(table.open(), delimiter="\t")}
    pairs = {m: init_pair_wf(m, model=args.model, options={"refine": args.refine}
                             if m == "smgicnet" and args.refine is not None else None,
                             labels=list(names) or None) for m in methods}

    metrics = ("dice_table", "mean_dice", "hd95_mm", "folding_percent", "inverse_consistency_mm")

    @workflow.define(outputs=[f"{m}_{k}" for m in methods for k in metrics])
    def Compare(fixed_image, fixed_mask, fixed_labels, moving_image, moving_mask, moving_labels):
        nodes = [workflow.add(pairs[m](fixed_image=fixed_image, fixed_mask=fixed_mask, fixed_labels=fixed_labels,
                                       moving_image=moving_image, moving_mask=moving_mask, moving_labels=moving_labels),
                              name=m) for m in methods]
        return tuple(getattr(n, k) for n in nodes for k in metrics)

    out = Compare(fixed_image=fixed["t1w"], fixed_mask=fixed["mask"], fixed_labels=fixed["labels"],
                  moving_image=moving["t1w"], moving_mask=moving["mask"], moving_labels=moving["labels"])(
        worker=args.worker, cache_root=args.work_dir.absolute())
    results = {m: {k: getattr(out, f"{m}_{k}") for k in metrics} for m in methods}

    dice: dict[int, dict] = {}
    for method in methods:
        for row in csv.DictReader(Path(results[method]["dice_table"]).open(), delimiter="\t"):
            dice.setdefault(int(row["label"]), {})[method] = row["dice"]
    args.output_dir.mkdir(parents=True, exist_ok=True)
    with (args.output_dir / "dice.tsv").open("w") as f:
        f.write("\t".join(["label", "name", *methods]) + "\n")
        for label, by_method in sorted(dice.items()):
            f.write("\t".join([str(label), names.get(label, ""), *(by_method.get(m, "") for m in methods)]) + "\n")
    lines = ["\t".join(["method", *metrics[1:]])]
    lines += ["\t".join([m, *(f"{results[m][k]:.4f}" for k in metrics[1:])]) for m in methods]
    (args.output_dir / "summary.tsv").write_text("\n".join(lines) + "\n")
    print(f"{args.moving} -> {args.fixed}", *lines, sep="\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
