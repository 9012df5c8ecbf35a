"""CPU seconds of one pair per method and stage, to calibrate the ``--plan-only`` time guide.

Builds the example dataset (two Colin27-derived subjects at ``--voxel-mm``), runs ``smgic-bids ...
participant`` for the one pair (``--pairs all`` of two subjects) with ``--methods`` in this process (pydra's
debug worker, ``--omp-nthreads 1``), and records:

* per method, the pair's ``seconds`` (wall: inputs read, registration, outputs written; the
  tile table's column) and ``forward_seconds`` (the registration);
* for SM-GICNet, the process CPU seconds (``time.process_time``, so a loaded machine does not
  inflate them) of its stages on the model grid (:func:`~smgic_pydra.inference.pair_fields`:
  affine, network, refinement) and of the whole pair (the same plus mapping the fields to the
  native grid and writing every output), ``--repeats`` times after the run;
* the process's CPU seconds (this process and its ANTs children) against its wall seconds, and
  the load average: how much of a core the run had;
* the plan's time guide (:func:`smgic_pydra.workflows.plan_summary.summarize`) per method.

    OMP_NUM_THREADS=1 python benchmarks/time_guide.py --voxel-mm 3

Writes ``benchmarks/results/time_guide_<voxel>mm.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
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


def _cpu_seconds() -> float:
    """CPU seconds (user + system) of this process and its finished children."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def smgicnet_stage_cpu(plan, out: Path, repeats: int) -> dict:
    """Process CPU seconds of SM-GICNet's grid stages and of the whole pair (outputs written to a scratch folder)."""
    import torch

    from smgic_pydra.bids.derivatives import pair_output_paths
    from smgic_pydra.inference import load_model, pair_fields, smgicnet_pair
    from smgic_pydra.preparation import PreparedSubject
    from smgic_pydra.workflows.cohort import prepared_root

    torch.set_num_threads(1)
    root = Path(prepared_root(plan.work_dir, plan.config_json()))
    fixed_key, moving_key = plan.pairs[0]
    fixed, moving = (PreparedSubject.load(root / k) for k in (fixed_key, moving_key))
    bundle = load_model(plan.model or None)
    grid, whole = [], []
    for _ in range(repeats):
        start = time.process_time()
        pair_fields(bundle, fixed, moving)
        grid.append(time.process_time() - start)
        start = time.process_time()
        paths = pair_output_paths(out / "scratch", moving_key, fixed_key, "smgicnet")
        smgicnet_pair(bundle, fixed, moving).write(paths, plan.outputs)
        whole.append(time.process_time() - start)
    return {"grid_cpu_seconds": [round(s, 2) for s in grid], "pair_cpu_seconds": [round(s, 2) for s in whole],
            "grid_cpu_seconds_median": round(statistics.median(grid), 2),
            "pair_cpu_seconds_median": round(statistics.median(whole), 2)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--voxel-mm", type=float, default=3.0)
    parser.add_argument("--methods", default="smgicnet,affine,synquick")
    parser.add_argument("--repeats", type=int, default=2, help="SM-GICNet stage timings after the run")
    parser.add_argument("--note", default="", help="recorded with the results (e.g. how loaded the machine was)")
    parser.add_argument("--name", default="", help="result file name suffix (time_guide_<voxel>mm_<name>.json)")
    args = parser.parse_args(argv)

    import nibabel as nib

    from smgic_pydra.bids.examples import make_example_dataset
    from smgic_pydra.network.precision import cpu_bf16_flags, network_precision
    from smgic_pydra.reports.tiles import read_pairs_tables
    from smgic_pydra.workflows import bids_cohort
    from smgic_pydra.workflows.plan_summary import summarize

    methods = args.methods.split(",")
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="time_guide_") as tmp:
        root = Path(tmp)
        bids = make_example_dataset(root / "bids", n_subjects=2, seed=0, voxel_mm=args.voxel_mm)
        out, work = root / "out", root / "work"
        plan, subjects = bids_cohort.bids_plan(bids, out, work, methods, reportlets=False,
                                               outputs="all")
        guide = summarize(plan)
        wall, cpu = time.perf_counter(), _cpu_seconds()
        result = bids_cohort.run_bids_plan(plan, subjects, bids, out, "debug", None, show_progress=False)
        wall, cpu = time.perf_counter() - wall, _cpu_seconds() - cpu
        pairs = read_pairs_tables([s["pairs_file"] for s in result.summaries])
        failed = pairs[pairs["error"] != ""]
        if len(failed):
            raise RuntimeError(f"failed pairs: {failed[['method', 'error']].to_dict('records')}")
        shape = tuple(int(n) for n in nib.load(plan.subjects[0]["t1w"]).shape[:3])
        stages = smgicnet_stage_cpu(plan, root, args.repeats) if "smgicnet" in methods else {}
    by_method = pairs.set_index("method")
    report = {
        "what": "one pair of the example dataset per method: wall seconds of the run (tile table), CPU seconds of "
                "SM-GICNet's stages, and the plan's time guide",
        "voxel_mm": args.voxel_mm,
        "native_shape": shape,
        "pairs": {m: {"seconds": round(float(by_method.at[m, "seconds"]), 2),
                      "forward_seconds": round(float(by_method.at[m, "forward_seconds"]), 2),
                      "guide_seconds": round(guide.method_seconds[m], 2)} for m in by_method.index},
        "guide_seconds_total": round(guide.cpu_seconds, 2),
        "pair_seconds_total": round(float(pairs["seconds"].sum()), 2),
        "smgicnet_cpu": stages,
        "run": {"wall_seconds": round(wall, 2), "cpu_seconds": round(cpu, 2), "cpu_per_wall": round(cpu / wall, 3)},
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
                    "cpu_bf16_flags": list(cpu_bf16_flags()), "network_precision": network_precision("auto", "cpu"),
                    "load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)]},
        "note": args.note,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = f"time_guide_{args.voxel_mm:g}mm{'_' + args.name if args.name else ''}.json"
    (RESULTS / name).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
