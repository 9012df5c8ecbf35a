"""Time of the quality-control figures of one pair at 1 mm, against the pair's end-to-end time.

Builds the example dataset (two Colin27-derived subjects, 1 mm native grids), runs
``smgic-bids ... participant`` with the packaged model and reportlets off (``reportlets=False``
in the plan, so nothing is drawn during the timed run), then times, in this process:

* ``pair_figures``: :func:`smgic_pydra.reports.pair_figures.write_pair_figures` of the pair with
  its forward warp already in memory, as the evaluation step calls it (it has just read the warp
  for the metrics); one warm-up call (imports, fonts), then ``--repeats`` calls;
* ``read_forward_warp``: reading the forward warp from disk (what the figures would cost without
  the evaluation's copy);
* ``subject_figure``: the preparation figure of one subject (once per subject, not per pair).

The pair's end-to-end time is the ``seconds`` of its row in ``pairs.csv`` (inputs read,
registration, outputs written). Targets (issue 15): figures < 2 s and <= 10 % of the pair.

    OMP_NUM_THREADS=1 python benchmarks/report_speed.py

Writes ``benchmarks/results/report_speed.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
sys.path.insert(0, str(REPO / "benchmarks"))
from registration_speed import cpu_model  # noqa: E402


def registered_pair(root: Path, nprocs: int) -> tuple[Path, dict, dict]:
    """``(output dir, pairs.csv row of the SM-GICNet pair, prepared dirs by subject)`` of a fresh 1 mm run."""
    import pandas as pd

    from smgic_pydra.bids.examples import make_example_dataset
    from smgic_pydra.workflows import bids_cohort
    from smgic_pydra.workflows.cohort import prepared_root

    bids = make_example_dataset(root / "bids", n_subjects=2, seed=0, voxel_mm=1.0)
    out, work = root / "out", root / "work"
    plan, subjects = bids_cohort.bids_plan(bids, out, work, ["smgicnet"], pairs="all", reportlets=False)
    result = bids_cohort.run_bids_plan(plan, subjects, bids, out, "cf", nprocs, show_progress=False)
    from smgic_pydra.reports import write_reports

    paths = write_reports(result.rows, result.label_rows, out, html=False)
    pairs = pd.read_csv(paths["pairs"], dtype={"error": str}).fillna({"error": ""})
    row = pairs[pairs["method"] == "smgicnet"].iloc[0].to_dict()
    if row["error"]:
        raise RuntimeError(f"the pair failed: {row['error']}")
    root_dir = Path(prepared_root(work, plan.config_json()))
    return out, row, {s["subject"]: root_dir / s["subject"] for s in plan.subjects}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--nprocs", type=int, default=1, help="jobs of the registration run (default: 1)")
    parser.add_argument("--note", default="", help="recorded with the results (e.g. how loaded the machine was)")
    args = parser.parse_args(argv)

    import nibabel as nib

    from smgic_pydra.bids import derivatives
    from smgic_pydra.io.itk_warp import read_itk_displacement
    from smgic_pydra.preparation import PreparedSubject
    from smgic_pydra.reports.pair_figures import write_pair_figures
    from smgic_pydra.reports.subject_figures import write_subject_figure

    with tempfile.TemporaryDirectory(prefix="report_speed_") as tmp:
        root = Path(tmp)
        out, row, prepared = registered_pair(root, args.nprocs)
        fixed, moving = PreparedSubject.load(prepared[row["fixed"]]), PreparedSubject.load(prepared[row["moving"]])
        files = {k: str(v) for k, v in
                 derivatives.pair_output_paths(out, row["moving"], row["fixed"], "smgicnet").as_dict().items()}
        paths = derivatives.pair_figure_paths(out, row["moving"], row["fixed"], "smgicnet")

        start = time.perf_counter()
        forward = read_itk_displacement(files["warp"])
        read_seconds = time.perf_counter() - start

        def figures() -> float:
            start = time.perf_counter()
            write_pair_figures(paths, {**row, "files": files}, nib.load(fixed.source_files["t1"]), fixed.native_mask,
                               nib.load(moving.source_files["t1"]), moving.native_mask, forward)
            return time.perf_counter() - start

        warmup = figures()
        times = [figures() for _ in range(args.repeats)]
        start = time.perf_counter()
        write_subject_figure(root / "subject.svg", fixed)
        subject_seconds = time.perf_counter() - start
        shape = tuple(int(n) for n in nib.load(fixed.source_files["t1"]).shape[:3])
        sizes = {role: Path(p).stat().st_size for role, p in paths.as_dict().items()}

    pair_seconds = float(row["seconds"])
    mean = statistics.mean(times)
    result = {
        "what": "quality-control figures of one SM-GICNet pair (contours before/after, Jacobian, displacement), "
                "1 mm example subjects, forward warp in memory",
        "native_shape": shape,
        "pair_figures_seconds": {"warmup": round(warmup, 3), "mean": round(mean, 3), "min": round(min(times), 3),
                                 "max": round(max(times), 3), "repeats": len(times)},
        "read_forward_warp_seconds": round(read_seconds, 3),
        "subject_figure_seconds": round(subject_seconds, 3),
        "pair_end_to_end_seconds": round(pair_seconds, 2),
        "figures_fraction_of_pair": round(mean / pair_seconds, 4),
        "targets": {"pair_figures_seconds": 2.0, "figures_fraction_of_pair": 0.10},
        "figure_bytes": sizes,
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
                    "load_average_1min": round(os.getloadavg()[0], 2), "python": platform.python_version()},
        "note": args.note,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "report_speed.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
