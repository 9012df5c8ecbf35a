"""Accuracy, regularity, time and memory of each registration method on pairs of different anatomies.

Real anatomies (SynthSeg label maps; by default ``training_seg_13``, ``14`` and ``15``, held out of
the default model's training, every ordered pair) become skull-stripped T1-like images in their own
native spaces (no pre-registration; ``--voxel-mm N`` keeps every N-th voxel of the 1 mm maps), each
synthesized once with its own contrast, bias and noise. Each method registers moving -> fixed and
writes the same files (:func:`smgic_pydra.worldspace.write_pair_outputs`); the same code then
measures, on the fixed native grid:

* Dice of the 36 aseg labels (warped moving labels vs fixed labels; mean over labels present),
* % of fixed-brain voxels with Jacobian determinant <= 0 (and over the whole grid), std of log det,
* inverse consistency ``|phi_inv(phi_fwd(x)) - x|`` in the fixed brain (mean, 95th percentile, mm),
* seconds: registration only (``forward_seconds``) and end to end with I/O (``total_seconds``),
* peak memory: each method runs in a fresh process (``ru_maxrss`` of it and its children, before the
  evaluation; CUDA peak for SM-GICNet).

Methods: every method of the registry (:mod:`smgic_pydra.methods.registry`: ``identity``, the ANTs
presets via antspyx, ``fireants``, ``smgicnet``) and the SM-GICNet stages alone
(:data:`VARIANTS`: ``smgicnet-net``, the network alone; ``smgicnet-affine``, affine + network), each
run by its own registry runner on the subjects prepared for the model's grid (the ANTs and FireANTs
methods use the native images).

    python benchmarks/pair_accuracy.py --voxel-mm 2 --methods identity affine synquick smgicnet

Writes ``benchmarks/results/pair_accuracy_<name>_<N>mm.json`` (every row, and per method the mean
and standard deviation over the pairs) and ``.csv`` (one row per pair and method).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import multiprocessing
import os
import platform
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from contextlib import nullcontext
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from registration_speed import cpu_model  # noqa: E402  (same folder)

from smgic_pydra.methods import METHODS  # noqa: E402

LABEL_MAPS = REPO.parent / "shared" / "data" / "synthseg_label_maps"
VARIANTS = {"smgicnet-net": ("smgicnet", {"affine": False, "refine": 0}),
            "smgicnet-affine": ("smgicnet", {"refine": 0})}
"""Benchmark name -> (registry method, options): SM-GICNet's stages measured alone."""
CHOICES = [*METHODS, *VARIANTS]
SUMMARY_COLUMNS = ("dice_mean", "percent_folded", "ic_mean_mm", "forward_seconds", "total_seconds")
CSV_COLUMNS = ("moving", "fixed", "method", "dice_mean", "n_labels", "percent_folded", "percent_folded_all", "log_det_std",
               "det_min", "ic_mean_mm", "ic_p95_mm", "forward_seconds", "total_seconds", "peak_rss_mib",
               "peak_cuda_mib", "error")


def make_subjects(work: Path, label_maps: list[Path], voxel_mm: int, seed: int) -> dict:
    """Synthesize one subject (T1w, labels, mask) per label map in ``work``: map stem -> subject."""
    import numpy as np

    from smgic_pydra.synthesis import write_synthetic_subject

    rng = np.random.default_rng(seed)
    return {_map_id(m): write_synthetic_subject(m, work / "subjects", _map_id(m), rng, downsample=voxel_mm)
            for m in label_maps}


def _map_id(path: Path) -> str:
    return path.name.split(".")[0].removeprefix("training_seg_")


def output_paths(folder: Path, method: str):
    from smgic_pydra.worldspace import PairOutputPaths

    return PairOutputPaths(warp=folder / f"{method}_warp.nii.gz", inverse_warp=folder / f"{method}_inverse_warp.nii.gz",
                           warped=folder / f"{method}_warped.nii.gz", warped_labels=folder / f"{method}_labels.nii.gz",
                           jacobian=folder / f"{method}_jacobian.nii.gz", sidecar=folder / f"{method}.json")


def run_registry_method(method: str, fixed, moving, paths, work: Path, args: dict) -> dict:
    """``method``'s registry runner on the pair: both subjects prepared on the model's grid, the same files written."""
    from smgic_pydra.inference import resolve_model_files
    from smgic_pydra.config import SMGICNetConfig
    from smgic_pydra.methods import MethodContext
    from smgic_pydra.metrics import peak_cuda_mib
    from smgic_pydra.preparation.prepare import prepare_subject

    cfg = SMGICNetConfig.from_json(resolve_model_files(args["model"])[1].read_text())
    prepared = [prepare_subject(s.t1w, work / "prepared" / s.subject_id, cfg, mask_path=s.mask,
                                labels_path=s.labels, subject_id=s.subject_id) for s in (fixed, moving)]
    registry_name, variant_options = VARIANTS.get(method, (method, {}))
    entry = METHODS[registry_name]
    context = MethodContext(model=args["model"] or "", device=args["device"], threads=args["threads"], seed=args["seed"],
                            options=entry.merged_options({**args["options"].get(registry_name, {}), **variant_options}))
    row = entry.make_runner(context)(prepared[0], prepared[1], {}).write_row(paths)
    return {**row, "peak_cuda_mib": peak_cuda_mib(args["device"]) if entry.uses_gpu else None}


def evaluate(paths, fixed) -> dict:
    """Metrics of the written outputs against the fixed subject (labels and brain mask)."""
    from smgic_pydra.metrics import (dice_from_files, folding_stats_from_file, inverse_consistency_from_files,
                                     load_label_table)

    table = load_label_table()
    dice = dice_from_files(paths.warped_labels, fixed.labels, list(table))
    folding = folding_stats_from_file(paths.warp, fixed.mask)
    ic = inverse_consistency_from_files(paths.warp, paths.inverse_warp, fixed.mask)
    return {
        "dice_mean": dice.mean, "n_labels": dice.n_labels,
        "dice_per_label": {table[k]: v for k, v in dice.per_label.items()},
        "percent_folded": folding.percent_folded, "percent_folded_all": folding.percent_folded_all,
        "log_det_std": folding.log_det_std, "det_min": folding.det_min, "det_max": folding.det_max,
        "ic_mean_mm": ic.mean_mm, "ic_p95_mm": ic.p95_mm, "ic_outside_fraction": ic.outside_fraction,
    }


def method_worker(method: str, fixed, moving, work: str, args: dict) -> dict:
    """Run and evaluate one method in this (fresh) process; ANTs' log goes to ``<work>/<method>.log``."""
    from smgic_pydra.metrics import peak_rss_mib

    work = Path(work)
    log = open(work / f"{method}.log", "w")
    os.dup2(log.fileno(), 1)  # ANTs writes its progress to the C-level stdout
    paths = output_paths(work / "outputs" / f"{moving.subject_id}_to_{fixed.subject_id}", method)
    row = run_registry_method(method, fixed, moving, paths, work, args)
    result = {"moving": moving.subject_id, "fixed": fixed.subject_id, "method": method, "forward_seconds": row["forward_seconds"], "total_seconds": row["total_seconds"],
              "peak_cuda_mib": row.get("peak_cuda_mib"), "files": row["files"]}
    result["peak_rss_mib"] = peak_rss_mib()  # registration and writing, before the evaluation
    result.update(evaluate(paths, fixed))
    return result


def run_method(method: str, fixed, moving, work: Path, args: dict) -> dict:
    """:func:`method_worker` in a fresh process (its own peak memory and ITK thread count); errors become rows."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        try:
            return {**pool.submit(method_worker, method, fixed, moving, str(work), args).result(), "error": ""}
        except Exception as exc:  # a failed method is reported, the others still run
            return {"moving": moving.subject_id, "fixed": fixed.subject_id, "method": method,
                    "error": f"{type(exc).__name__}: {' '.join(str(exc).split())}"}


def machine(threads: int) -> dict:
    import importlib.metadata as md

    versions = {}
    for package in ("antspyx", "torch", "numpy", "nibabel"):
        try:
            versions[package] = md.version(package)
        except md.PackageNotFoundError:
            versions[package] = None
    return {"cpu_model": cpu_model(), "cpu_count": os.cpu_count(), "itk_threads": threads,
            "python_version": platform.python_version(), "platform": platform.platform(), "versions": versions}


def csv_text(rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: row.get(k, "") for k in CSV_COLUMNS})
    return out.getvalue()


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--voxel-mm", type=int, default=1, help="voxel size of the synthetic subjects (integer mm)")
    parser.add_argument("--methods", nargs="+", default=CHOICES, choices=CHOICES)
    # 13-15 are held out of the packaged default model's training (scripts/train_default_model.py)
    parser.add_argument("--label-maps", nargs="+", type=Path,
                        default=[LABEL_MAPS / f"training_seg_{k}.nii.gz" for k in (13, 14, 15)],
                        help="label maps of the subjects; every ordered pair is registered")
    parser.add_argument("--max-pairs", type=int, default=None, help="only the first N ordered pairs")
    parser.add_argument("--name", default="heldout", help="result file name part (default: heldout)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="ITK threads for ANTs")
    parser.add_argument("--seed", type=int, default=1, help="synthesis and ANTs random seed (positive)")
    parser.add_argument("--model", default=None, help="SM-GICNet model folder (default: the packaged model)")
    parser.add_argument("--device", default="cpu", help="device of the GPU-capable methods (cpu, cuda)")
    parser.add_argument("--option", action="append", default=[], metavar="METHOD.KEY=VALUE",
                        help="a method option (VALUE as JSON), as smgic-bids --method-option")
    parser.add_argument("--work-dir", type=Path, default=None, help="keep subjects and outputs here (default: temp)")
    parser.add_argument("--out-dir", type=Path, default=REPO / "benchmarks" / "results")
    return parser.parse_args(argv)


def summary(rows: list[dict]) -> dict:
    """Per method: pairs, failures, and mean and standard deviation of :data:`SUMMARY_COLUMNS` over its pairs."""
    import numpy as np

    out = {}
    for method in dict.fromkeys(r["method"] for r in rows):
        ok = [r for r in rows if r["method"] == method and not r["error"]]
        stats = {"n_pairs": len(ok), "n_failed": sum(r["method"] == method for r in rows) - len(ok)}
        for column in SUMMARY_COLUMNS:
            values = np.array([r[column] for r in ok], dtype=float)
            stats[column] = {"mean": float(values.mean()) if len(values) else None,
                             "std": float(values.std()) if len(values) else None}
        out[method] = stats
    return out


def main(argv=None) -> int:
    from itertools import permutations

    from smgic_pydra.io.atomic import atomic_path, save_json

    args = parse_args(argv)
    for path in args.label_maps:
        if not path.is_file():
            raise SystemExit(f"{path}: label map not found")
    from smgic_pydra.cli.parser import parse_method_options

    options = {"threads": args.threads, "seed": args.seed, "model": args.model, "device": args.device,
               "options": parse_method_options(args.option)}
    keep = args.work_dir is not None
    with (nullcontext(args.work_dir) if keep else tempfile.TemporaryDirectory(prefix="smgic-pair-")) as work:
        work = Path(work)
        subjects = make_subjects(work, args.label_maps, args.voxel_mm, args.seed)
        pairs = list(permutations(subjects, 2))[: args.max_pairs]
        rows = []
        for moving, fixed in pairs:
            (work / "outputs" / f"{moving}_to_{fixed}").mkdir(parents=True, exist_ok=True)
            for method in args.methods:
                row = run_method(method, subjects[fixed], subjects[moving], work, options)
                print(json.dumps({k: row.get(k) for k in CSV_COLUMNS if row.get(k) not in (None, "")}), flush=True)
                rows.append(row)
    stem = args.out_dir / f"pair_accuracy_{args.name}_{args.voxel_mm}mm"
    report = {
        "benchmark": "pair_accuracy",
        "what": "moving -> fixed registrations of different anatomies, native spaces, no pre-registration",
        "date_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "pairs": {"label_maps": [str(m) for m in args.label_maps], "ordered_pairs": [list(p) for p in pairs],
                  "voxel_mm": args.voxel_mm, "seed": args.seed, "options": options["options"]},
        "machine": machine(args.threads),
        "summary": summary(rows),
        "rows": [{k: v for k, v in r.items() if k != "files"} for r in rows],
    }
    save_json(report, stem.with_suffix(".json"))
    with atomic_path(stem.with_suffix(".csv")) as tmp:
        tmp.write_text(csv_text(rows))
    for method, stats in report["summary"].items():
        print(f"{method:16s} " + " ".join(f"{c} {stats[c]['mean']:.4g}+-{stats[c]['std']:.2g}" for c in SUMMARY_COLUMNS
                                         if stats[c]["mean"] is not None) + f" failed {stats['n_failed']}")
    print(f"wrote {stem}.json and {stem}.csv")
    return 0 if all(not r["error"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
