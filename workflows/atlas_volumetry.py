#!/usr/bin/env python
"""Atlas-based volumetry: register every subject to one reference, bring the reference's atlas labels back to
each subject through the inverse warps, and tabulate each subject's label volumes.

Usage: python workflows/atlas_volumetry.py DERIVATIVES_DIR OUTPUT_TSV --reference sub-01 [--atlas LABELS]
       [--names dseg.tsv] [--method smgicnet|syn|synquick|affine|fireants] [--model DIR] [--refine N]
       [-w WORK_DIR] [--worker cf|debug]
DERIVATIVES_DIR holds sMRIPrep-style subjects (``*_desc-preproc_T1w``, ``*_desc-brain_mask``); the atlas is a
label map on the reference's grid (default: the reference's ``*_dseg``). OUTPUT_TSV: subject, label, name,
voxels, volume_mm3 (the atlas labels in each subject's native space).
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

from smgic_pydra.workflows import init_to_reference_wf


def subjects(derivatives: Path) -> dict[str, dict]:
    """subject/session prefix -> its preprocessed T1w, brain mask and labels (when present)."""
    found = {}
    for t1w in sorted(Path(derivatives).absolute().glob("sub-*/**/anat/*_desc-preproc_T1w.nii*")):
        prefix = t1w.name.split("_desc-preproc_T1w")[0]
        ext = t1w.name.split("_desc-preproc_T1w")[1]
        found[prefix] = {"t1w": t1w, "mask": t1w.with_name(f"{prefix}_desc-brain_mask{ext}"),
                         "labels": t1w.with_name(f"{prefix}_dseg{ext}")}
    return found


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    """--model, --refine, -w/--work-dir and --worker (the scripts' shared options)."""
    p.add_argument("--model", help="SM-GICNet model folder (default: the packaged model)")
    p.add_argument("--refine", type=int, help="SM-GICNet refinement steps (default: the method's)")
    p.add_argument("-w", "--work-dir", type=Path, default=Path("work"), help="Pydra cache")
    p.add_argument("--worker", default="cf", choices=("cf", "debug"))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("derivatives", type=Path)
    p.add_argument("output", type=Path)
    p.add_argument("--reference", required=True, help="the reference subject, e.g. sub-01 (or sub-01_ses-1)")
    p.add_argument("--atlas", type=Path, help="label map on the reference's grid (default: its _dseg)")
    p.add_argument("--names", type=Path, help="label table, TSV index/name (default: DERIVATIVES_DIR/dseg.tsv)")
    p.add_argument("--method", default="smgicnet")
    add_run_arguments(p)
    args = p.parse_args(argv)

    found = subjects(args.derivatives)
    if args.reference not in found:
        p.error(f"no subject {args.reference} in {args.derivatives} (found: {', '.join(found) or 'none'})")
    reference, others = found[args.reference], [k for k in found if k != args.reference]
    options = None if args.refine is None else {"refine": args.refine}
    wf = init_to_reference_wf(args.method, model=args.model, options=options)(
        reference_image=reference["t1w"], reference_mask=reference["mask"],
        reference_labels=args.atlas or reference["labels"], images=[found[k]["t1w"] for k in others],
        masks=[found[k]["mask"] for k in others])
    out = wf(worker=args.worker, cache_root=args.work_dir.absolute())

    table = args.names or args.derivatives / "dseg.tsv"
    names = {}
    if table.is_file():
        names = {row["index"]: row["name"] for row in csv.DictReader(table.open(), delimiter="\t")}
    rows = []
    for subject, volumes in zip(others, out.volumes):
        for row in csv.DictReader(Path(volumes).open(), delimiter="\t"):
            rows.append({"subject": subject, "label": row["label"], "name": names.get(row["label"], ""),
                         "voxels": row["voxels"], "volume_mm3": row["volume_mm3"]})
    args.output.parent.mkdir(parents=True, exist_ok=True)
    with args.output.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]), delimiter="\t")
        writer.writeheader()
        writer.writerows(rows)
    totals = {s: sum(float(r["volume_mm3"]) for r in rows if r["subject"] == s) / 1000 for s in others}
    for subject, labels in zip(others, out.subject_labels):
        print(f"{subject}: {totals[subject]:.1f} cm3 labelled, atlas in native space: {labels}")
    print(f"volumes of {len(others)} subjects x {len(rows) // max(len(others), 1)} labels: {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
