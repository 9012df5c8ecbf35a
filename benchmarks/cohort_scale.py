"""Cohort scale: all pairs of a synthetic cohort in ``--outputs metrics`` mode, and the driver's planning cost.

Two parts (results to ``benchmarks/results/cohort_scale_<part>[_<name>].json``):

* ``throughput``: ``--subjects`` synthetic subjects (the 15 ``../shared`` label maps in turn, each
  subject its own contrast, bias, noise and a random rigid placement of its native grid, at
  ``--voxel-mm``), every unordered pair, SM-GICNet's network path (``--no-affine --refine 0``), on
  a randomly initialised network of the ``cpu`` training preset's grid (64^3 at 3 mm; the rate
  does not depend on the weights). The subjects are prepared first (timed apart), then
  :func:`run_cohort` runs the tiles with ``--nprocs`` jobs of ``--threads`` threads. The
  compute-bound reference is measured in the same run, before it: ``--nprocs`` processes with
  ``--threads`` threads each (the run's concurrency) time network + metrics calls
  (:func:`smgicnet_pair` then :func:`field_metrics`, nothing written) on pairs drawn across the
  cohort, at the same time; the
  machine's compute-bound rate is ``nprocs / median call``. The target is a throughput of at
  least 90 % of it. With ``--device cuda --grid default`` the same part measures
  the GPU rate (200 subjects at 128^3 in the issue).
* ``plan``: a BIDS dataset of ``--subjects`` subjects with tiny images (the driver never reads
  voxels), then in a fresh process: indexing + pairs + tiles (:func:`bids_plan`), the bytes
  estimate (:func:`summarize`), the participant record and the workflow object
  (:func:`init_cohort_wf`); wall seconds of each and the peak RSS of that process.

    python benchmarks/cohort_scale.py throughput --subjects 60
    python benchmarks/cohort_scale.py plan --subjects 1000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
LABEL_MAPS = ROOT.parent / "shared" / "data" / "synthseg_label_maps"


def machine(threads: int) -> dict:
    import torch

    return {"cpu_count": os.cpu_count(), "threads": threads, "python": platform.python_version(),
            "torch": torch.__version__, "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


def synthesize(folder: Path, n: int, voxel_mm: int, seed: int) -> list[dict]:
    """``n`` subjects (PrepareSubject dicts), each on its own randomly placed native grid."""
    import nibabel as nib
    from scipy.spatial.transform import Rotation

    from smgic_pydra.synthesis import write_synthetic_subject

    maps = sorted(LABEL_MAPS.glob("*.nii*"))
    if not maps:
        raise SystemExit(f"no label maps in {LABEL_MAPS}")
    rng = np.random.default_rng(seed)
    subjects = []
    for i in range(n):
        key = f"sub-{i + 1:04d}"
        paths = write_synthetic_subject(maps[i % len(maps)], folder, key, rng, downsample=voxel_mm)
        move = np.eye(4)
        move[:3, :3] = Rotation.from_euler("xyz", rng.uniform(-10, 10, 3), degrees=True).as_matrix()
        move[:3, 3] = rng.uniform(-10, 10, 3)
        for path in (paths.t1w, paths.labels, paths.mask):  # a different native placement per subject
            img = nib.load(path)
            moved = nib.Nifti1Image(np.asanyarray(img.dataobj), move @ img.affine, img.header)
            moved.set_qform(move @ img.affine, code=1)
            moved.set_sform(move @ img.affine, code=1)
            nib.save(moved, path)
        subjects.append({"subject": key, "t1w": str(paths.t1w), "mask": str(paths.mask), "labels": str(paths.labels)})
    return subjects


def make_model(folder: Path, grid: str) -> str:
    """A model folder: the packaged default (``grid == "default"``) or a random network of the cpu preset's grid."""
    import torch

    from smgic_pydra.inference import default_model_dir
    from smgic_pydra.network import SMGICNet
    from smgic_pydra.training.checkpoint import save_checkpoint
    from smgic_pydra.training.presets import load_preset

    if grid == "default":
        return str(default_model_dir())
    torch.manual_seed(0)
    cfg = load_preset("cpu").config
    return str(save_checkpoint(folder, "model", SMGICNet(cfg).state_dict(), cfg, {"note": "random init: throughput only"}))


def _reference_worker(plan, pairs, threads: int) -> list[float]:
    """Seconds of network + metrics calls on ``pairs`` in one process (``threads`` torch threads; the first
    call is an untimed warm-up)."""
    import torch

    from smgic_pydra.inference import load_model, smgicnet_pair
    from smgic_pydra.metrics.labels import load_label_table
    from smgic_pydra.pipeline_settings import PipelineSettings
    from smgic_pydra.preparation import PreparedSubject
    from smgic_pydra.metrics.pair_metrics import field_metrics
    from smgic_pydra.workflows.cohort import prepared_root

    torch.set_num_threads(threads)
    root = Path(prepared_root(plan.work_dir, plan.config_json()))
    bundle = load_model(plan.model or None, device=plan.device)
    settings = PipelineSettings.from_options(plan.method_options["smgicnet"])
    table = load_label_table()
    times = []
    for fixed_key, moving_key in pairs:
        fixed, moving = PreparedSubject.load(root / fixed_key), PreparedSubject.load(root / moving_key)
        start = time.perf_counter()
        pair = smgicnet_pair(bundle, fixed, moving, {}, settings)
        field_metrics(pair.forward, pair.fixed_affine, pair.inverse, pair.moving_img.affine, fixed,
                      pair.warped_labels(), table)
        times.append(time.perf_counter() - start)
    return times[1:]


def reference_call(plan, n_calls: int, nprocs: int, threads: int) -> dict:
    """The compute-bound rate: ``nprocs`` processes (as many as the run's jobs at once, each with the run's
    threads) time ``n_calls`` network + metrics calls each, at the same time; the rate is ``nprocs`` over
    the median call. Nothing else runs then, so it is the machine's rate for that concurrency."""
    import multiprocessing

    # pairs drawn across the whole cohort (seeded): subjects differ in size, so the first pairs would not do
    picks = np.random.default_rng(0).choice(len(plan.pairs), size=nprocs * (n_calls + 1), replace=False)
    chunks = [[plan.pairs[i] for i in picks[k * (n_calls + 1):(k + 1) * (n_calls + 1)]] for k in range(nprocs)]
    with multiprocessing.get_context("spawn").Pool(nprocs) as pool:
        times = pool.starmap(_reference_worker, [(plan, chunk, threads) for chunk in chunks])
    flat = [t for per_process in times for t in per_process]
    median = float(np.median(flat))
    return {"processes": nprocs, "calls_per_process": n_calls, "median_seconds": median, "seconds": times,
            "compute_bound_pairs_per_second": nprocs / median}


def throughput(args) -> dict:
    import torch

    from smgic_pydra.preparation import prepare_subject
    from smgic_pydra.config import SMGICNetConfig
    from smgic_pydra.workflows import CohortPlan, run_cohort
    from smgic_pydra.workflows.cohort import prepared_root

    work = Path(args.work)
    subjects = synthesize(work / "raw", args.subjects, args.voxel_mm, args.seed)
    model = make_model(work / "models", args.grid)
    ids = [s["subject"] for s in subjects]
    pairs = [(ids[j], ids[i]) for i in range(len(ids)) for j in range(i + 1, len(ids))]  # moving = earlier key
    if args.max_pairs:
        pairs = pairs[: args.max_pairs]
    plan = CohortPlan(subjects=subjects, pairs=pairs, methods=["smgicnet"], work_dir=work / "work",
                      output_dir=work / "out", model=model, device=args.device, pairs_per_job=args.pairs_per_job,
                      omp_nthreads=args.threads, outputs="metrics",
                      method_options={"smgicnet": {"affine": False, "refine": 0}})
    cfg = SMGICNetConfig.from_json(plan.config_json())
    root = Path(prepared_root(plan.work_dir, plan.config_json()))
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    for s in subjects:
        prepare_subject(s["t1w"], root / s["subject"], cfg, mask_path=s["mask"], labels_path=s["labels"],
                        subject_id=s["subject"])
    prepare_seconds = time.perf_counter() - start
    reference = reference_call(plan, args.reference_calls, args.nprocs, args.threads)
    start = time.perf_counter()
    result = run_cohort(plan, worker="cf", n_procs=args.nprocs, show_progress=False)
    wall = time.perf_counter() - start
    rows = result.pairs
    rate = len(rows) / wall
    bound = reference["compute_bound_pairs_per_second"]
    return {"subjects": len(subjects), "pairs": len(rows), "failed": len(result.failed), "tiles": len(plan.tiles()),
            "pairs_per_job": args.pairs_per_job, "nprocs": args.nprocs, "threads_per_job": args.threads,
            "device": args.device, "grid": cfg.grid_shape, "voxel_size_mm": cfg.voxel_size_mm,
            "native_voxel_mm": args.voxel_mm, "prepare_seconds": prepare_seconds, "run_seconds": wall,
            "pairs_per_second": rate, "reference_call": reference, "compute_bound_pairs_per_second": bound,
            "fraction_of_compute_bound": rate / bound, "dice_mean_of_random_network": float(rows["dice_mean"].mean()),
            "files_per_pair_in_output_dir": sum(1 for p in Path(plan.output_dir).rglob("sub-*") if p.is_file())}


PLAN_SCRIPT = r"""
import json, resource, sys, time
from pathlib import Path
timings = {}
start = time.perf_counter()
from smgic_pydra.workflows.bids_cohort import bids_plan, write_participant_record
from smgic_pydra.workflows.cohort import init_cohort_wf
from smgic_pydra.workflows.plan_summary import summarize
timings["import"] = time.perf_counter() - start
bids, out, work, model = sys.argv[1:5]
t = time.perf_counter()
plan, _ = bids_plan(bids, out, work, ["smgicnet", "identity"], pairs="all", model=model or None, pairs_per_job=2500,
                    outputs="metrics", reportlets=False)
timings["bids_plan"] = time.perf_counter() - t
t = time.perf_counter(); tiles = plan.tiles(); timings["tiles"] = time.perf_counter() - t
t = time.perf_counter(); summary = summarize(plan); timings["summary"] = time.perf_counter() - t
t = time.perf_counter(); write_participant_record(plan, out); timings["participant_record"] = time.perf_counter() - t
t = time.perf_counter(); wf = init_cohort_wf(plan); timings["workflow"] = time.perf_counter() - t
timings["total"] = time.perf_counter() - start
print(json.dumps({"pairs": len(plan.pairs), "tiles_per_method": len(tiles), "methods": plan.methods,
                  "jobs": summary.jobs, "estimated_bytes": summary.bytes, "seconds": timings,
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def tiny_bids(folder: Path, n: int) -> Path:
    """A BIDS dataset of ``n`` subjects with 8^3 images (T1w, brain mask and labels derivatives)."""
    import nibabel as nib

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "dataset_description.json").write_text(json.dumps({"Name": "tiny", "BIDSVersion": "1.10.0"}))
    deriv = folder / "derivatives" / "labels"
    deriv.mkdir(parents=True, exist_ok=True)
    (deriv / "dataset_description.json").write_text(json.dumps({"Name": "labels", "BIDSVersion": "1.10.0",
                                                                 "DatasetType": "derivative"}))
    image = nib.Nifti1Image(np.ones((8, 8, 8), np.float32), np.eye(4))
    labels = nib.Nifti1Image(np.full((8, 8, 8), 2, np.int16), np.eye(4))
    mask = nib.Nifti1Image(np.ones((8, 8, 8), np.uint8), np.eye(4))
    for i in range(n):
        sub = f"sub-{i + 1:04d}"
        (folder / sub / "anat").mkdir(parents=True, exist_ok=True)
        (deriv / sub / "anat").mkdir(parents=True, exist_ok=True)
        nib.save(image, folder / sub / "anat" / f"{sub}_T1w.nii.gz")
        nib.save(mask, deriv / sub / "anat" / f"{sub}_desc-brain_mask.nii.gz")
        nib.save(labels, deriv / sub / "anat" / f"{sub}_dseg.nii.gz")
    return folder


def plan_part(args) -> dict:
    work = Path(args.work)
    bids = tiny_bids(work / "bids", args.subjects)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", PLAN_SCRIPT, str(bids), str(work / "out"), str(work / "work"), ""],
                          capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    if proc.returncode:
        raise SystemExit(proc.stderr[-3000:])
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"subjects": args.subjects, "process_seconds": time.perf_counter() - start, **result}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("part", choices=("throughput", "plan"))
    p.add_argument("--subjects", type=int, default=None, help="default: 60 (throughput), 1000 (plan)")
    p.add_argument("--voxel-mm", type=int, default=3, help="native voxel size of the synthetic subjects (mm)")
    p.add_argument("--grid", choices=("cpu", "default"), default="cpu", help="the cpu preset's grid or the packaged model")
    p.add_argument("--device", default="cpu")
    p.add_argument("--nprocs", type=int, default=2, help="tile jobs at once")
    p.add_argument("--threads", type=int, default=1, help="torch threads per job")
    p.add_argument("--pairs-per-job", type=int, default=36, help="tile size (B = floor(sqrt(N)))")
    p.add_argument("--reference-calls", type=int, default=12, help="timed calls per reference process")
    p.add_argument("--max-pairs", type=int, default=0, help="only the first N pairs (0: all)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--work", default=None, help="work folder (default: a temporary one under /tmp)")
    p.add_argument("--name", default="", help="suffix of the result file")
    return p.parse_args(argv)


def main(argv=None) -> int:
    import tempfile

    args = parse_args(argv)
    args.subjects = args.subjects or (60 if args.part == "throughput" else 1000)
    with tempfile.TemporaryDirectory(prefix="smgic-cohort-scale-") as tmp:
        args.work = args.work or tmp
        result = throughput(args) if args.part == "throughput" else plan_part(args)
    record = {"benchmark": "cohort_scale", "part": args.part, "command": " ".join(sys.argv),
              "date_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": machine(args.threads),
              "load_average_at_end": os.getloadavg(), "result": result}
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"cohort_scale_{args.part}{'_' + args.name if args.name else ''}.json"
    path.write_text(json.dumps(record, indent=1) + "\n")
    print(json.dumps(result, indent=1))
    print(f"written {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
