"""Accuracy, regularity, time and memory of each registration method on pairs of different anatomies.

Real anatomies (SynthSeg label maps; by default ``training_seg_13``, ``14`` and ``15``, held out of
the default model's training) each become ``--versions`` subjects (:mod:`pair_subjects`: its own
contrast, orientation, isotropic voxel size ``--voxel-mm`` x 0.8-1.3 and random rigid + scale
placement, seeded and recorded), skull-stripped T1-like images in their own native spaces (no
pre-registration). The pairs are every ordered pair of different maps in different versions
(12 for 3 maps in 2 versions). ``--colin27 N`` uses the demo's anatomy instead (:func:`pair_subjects.write_colin27_subject`:
Colin27, a real T1w, with its 116 AAL labels, each subject under its own random affine and smooth
deformation; every ordered pair of N subjects). Each method registers moving -> fixed and writes the same files
(:func:`smgic_pydra.worldspace.write_pair_outputs`); the same code then measures, on the fixed
native grid:

* Dice of the aseg labels (36 in the label table, 33-34 of them in a map's subjects; AAL's 116 for Colin27; warped
  moving labels vs fixed labels; mean over the labels present in the fixed image, one the warped image lacks
  counting 0: :mod:`smgic_pydra.metrics.dice`),
* HD95 of the same labels (mm; :mod:`smgic_pydra.metrics.hausdorff`, the Learn2Reg metric),
* % of fixed-brain voxels with Jacobian determinant <= 0 (and over the whole grid), std of log det,
* inverse consistency ``|phi_inv(phi_fwd(x)) - x|`` in the fixed brain (mean, 95th percentile, mm),
* seconds: registration only (``forward_seconds``; SM-GICNet also per stage: affine, network,
  refinement) and end to end with I/O (``total_seconds``), wall clock; ``cpu_seconds``: CPU time
  (user + system, the method's process and its children) of registering and writing, which a
  machine shared with other jobs slows much less than the wall clock,
* peak memory: each method runs in a fresh process (``ru_maxrss`` of it and its children, before the
  evaluation; CUDA peak for SM-GICNet).

Methods: every method of the registry (:mod:`smgic_pydra.methods.registry`: ``identity``, the ANTs
presets via antspyx, ``fireants``, ``smgicnet``) and the SM-GICNet stages alone
(:data:`VARIANTS`: ``smgicnet-net``, the network alone; ``smgicnet-affine``, affine + network), each
run by its own registry runner on the subjects prepared for the model's grid (the ANTs and FireANTs
methods use the native images).

    python benchmarks/pair_accuracy.py --voxel-mm 2 --methods identity affine synquick smgicnet

Resumable: each finished (pair, method) is stored in its own small JSON file,
``benchmarks/results/pair_accuracy_<name>_<N>mm/<moving>_to_<fixed>.<method>.json``, with a key
(SHA-256) of what determines it: both subjects' array contents, the method and its merged options,
the model weights' hash, the method's source files, package versions, threads, seed, device and the
evaluation version. A rerun skips every (pair, method) whose file has the same key (failed ones are
retried), so a long run continues across sessions. After each result the report is rewritten from
the files (:mod:`pair_report`): ``pair_accuracy_<name>_<N>mm.{json,csv,md}`` (partial results give a
partial table, with each method's number of pairs). ``--report-only`` rewrites it without running.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import subprocess
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from contextlib import nullcontext
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from registration_speed import cpu_model  # noqa: E402  (same folder)

import pair_report  # noqa: E402  (same folder)
from pair_subjects import (VOXEL_FACTOR, colin27_pairs, colin27_voxel_factor_range, label_table,  # noqa: E402
                           label_table_sha256, ordered_pairs, write_colin27_subject, write_subject)

from smgic_pydra.methods import METHODS  # noqa: E402
from smgic_pydra.pipeline_settings import QUALITY_PRESETS, quality_options  # noqa: E402

LABEL_MAPS = REPO.parent / "shared" / "data" / "synthseg_label_maps"
HELD_OUT_MAPS = ("13", "14", "15")
"""Maps held out of the packaged default model's training (scripts/train_default_model.py)."""
VARIANTS = {"smgicnet-net": ("smgicnet", {"affine": False, "refine": 0}),
            "smgicnet-affine": ("smgicnet", {"refine": 0}),
            **{f"smgicnet-{name}": ("smgicnet", quality_options(name)) for name in QUALITY_PRESETS if name != "default"},
            "fireants-smooth": ("fireants", {"cc_kernel_size": 7, "smooth_grad_sigma": 2.0, "smooth_warp_sigma": 0.5})}
"""Benchmark name -> (registry method, options): SM-GICNet's stages measured alone, and its ``--quality`` presets
(``smgicnet`` is the default one); ``fireants-smooth``: FireANTs with the greedy settings of its own LPBA40
evaluation script (``fireants/scripts/pairwise/test_lpba40.py``: CC window 7, gradient sigma 2, warp sigma
0.5), smoother than its quickstart's (the registry's)."""
CHOICES = [*METHODS, *VARIANTS]
EVALUATION_VERSION = "dice+hd95+folding+ic/1"
"""Changes when :func:`evaluate` changes what it measures (part of every result's key)."""
METHOD_CODE = {
    "smgicnet": ("smgic_pydra/inference", "smgic_pydra/refinement", "smgic_pydra/affine", "smgic_pydra/network",
                 "smgic_pydra/transforms", "smgic_pydra/losses", "smgic_pydra/pipeline_settings.py",
                 "smgic_pydra/methods/smgicnet.py"),
    "fireants": ("smgic_pydra/methods/fireants.py",),
    "ants": ("smgic_pydra/baselines/presets.py",),
}
"""Source files (relative to the repository) whose content is part of a method family's result key."""
PACKAGES = ("antspyx", "torch", "numpy", "nibabel", "scipy", "fireants")


def make_subjects(work: Path, label_maps: list[Path], versions: int, voxel_mm: int, seed: int,
                  colin27: int = 0) -> dict:
    """Synthesize every version of every map (or ``colin27`` Colin27 subjects) in ``work/subjects``: subject id ->
    :class:`BenchmarkSubject`."""
    if colin27:
        subjects = [write_colin27_subject(i, seed, voxel_mm, work / "subjects") for i in range(colin27)]
    else:
        subjects = [write_subject(m, v, seed, voxel_mm, work / "subjects") for m in label_maps for v in range(versions)]
    return {s.subject_id: s for s in subjects}


def output_paths(folder: Path, method: str):
    from smgic_pydra.worldspace import PairOutputPaths

    return PairOutputPaths(warp=folder / f"{method}_warp.nii.gz", inverse_warp=folder / f"{method}_inverse_warp.nii.gz",
                           warped=folder / f"{method}_warped.nii.gz", warped_labels=folder / f"{method}_labels.nii.gz",
                           jacobian=folder / f"{method}_jacobian.nii.gz", sidecar=folder / f"{method}.json")


def method_options(method: str, args: dict) -> tuple[str, dict]:
    """``(registry method, merged options)`` of a benchmark method (a registry name or a :data:`VARIANTS` one)."""
    registry_name, variant_options = VARIANTS.get(method, (method, {}))
    entry = METHODS[registry_name]
    return registry_name, entry.merged_options({**args["options"].get(registry_name, {}), **variant_options})


def run_registry_method(method: str, fixed, moving, paths, work: Path, args: dict) -> dict:
    """``method``'s registry runner on the pair: both subjects prepared on the model's grid, the same files written."""
    from smgic_pydra.inference import resolve_model_files
    from smgic_pydra.config import SMGICNetConfig
    from smgic_pydra.methods import MethodContext
    from smgic_pydra.metrics import peak_cuda_mib
    from smgic_pydra.preparation.prepare import prepare_subject

    cfg = SMGICNetConfig.from_json(resolve_model_files(args["model"])[1].read_text())
    start_cpu = cpu_seconds()
    prepared = [prepare_subject(s.t1w, work / "prepared" / s.subject_id, cfg, mask_path=s.mask,
                                labels_path=s.labels, subject_id=s.subject_id) for s in (fixed, moving)]
    registry_name, options = method_options(method, args)
    entry = METHODS[registry_name]
    context = MethodContext(model=args["model"] or "", device=args["device"], threads=args["threads"],
                            seed=args["seed"], options=options)
    prepared_cpu = cpu_seconds()
    row = entry.make_runner(context)(prepared[0], prepared[1], {}).write_row(paths)
    return {**row, "peak_cuda_mib": peak_cuda_mib(args["device"]) if entry.uses_gpu else None,
            "prepare_cpu_seconds": prepared_cpu - start_cpu, "cpu_seconds": cpu_seconds() - prepared_cpu}


def cpu_seconds() -> float:
    """CPU time (user + system, s) of this process and its finished children (ANTs runs in a child)."""
    import resource

    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def evaluate(paths, fixed) -> dict:
    """Metrics of the written outputs against the fixed subject (labels and brain mask)."""
    from smgic_pydra.metrics import dice_from_files, folding_stats_from_file, hd95_from_files, inverse_consistency_from_files

    table = label_table(fixed)
    dice = dice_from_files(paths.warped_labels, fixed.labels, list(table))
    hd95 = hd95_from_files(paths.warped_labels, fixed.labels, list(table))
    folding = folding_stats_from_file(paths.warp, fixed.mask)
    ic = inverse_consistency_from_files(paths.warp, paths.inverse_warp, fixed.mask)
    return {
        "dice_mean": dice.mean, "n_labels": dice.n_labels,
        "dice_per_label": {table[k]: v for k, v in dice.per_label.items()},
        "hd95_mm": hd95.mean, "hd95_n_labels": hd95.n_labels,
        "hd95_per_label": {table[k]: v for k, v in hd95.per_label.items()},
        "percent_folded": folding.percent_folded, "percent_folded_all": folding.percent_folded_all,
        "log_det_std": folding.log_det_std, "det_min": folding.det_min, "det_max": folding.det_max,
        "ic_mean_mm": ic.mean_mm, "ic_p95_mm": ic.p95_mm, "ic_outside_fraction": ic.outside_fraction,
    }


def method_worker(method: str, fixed, moving, work: str, args: dict) -> dict:
    """Run and evaluate one method in this (fresh) process; ANTs' log goes to ``<work>/<method>.log``."""
    import time

    from smgic_pydra.metrics import peak_rss_mib

    work = Path(work)
    log = open(work / f"{method}.log", "w")
    os.dup2(log.fileno(), 1)  # ANTs writes its progress to the C-level stdout
    paths = output_paths(work / "outputs" / f"{moving.subject_id}_to_{fixed.subject_id}", method)
    row = run_registry_method(method, fixed, moving, paths, work, args)
    result = {"moving": moving.subject_id, "fixed": fixed.subject_id, "method": method,
              **{k: v for k, v in row.items() if k.endswith("_seconds")},  # cpu_seconds: registration + writing
              "peak_cuda_mib": row.get("peak_cuda_mib"), "files": row["files"]}
    result["peak_rss_mib"] = peak_rss_mib()  # registration and writing, before the evaluation
    start = time.perf_counter()
    result.update(evaluate(paths, fixed))
    result["evaluation_seconds"] = time.perf_counter() - start
    return result


def run_method(method: str, fixed, moving, work: Path, args: dict) -> dict:
    """:func:`method_worker` in a fresh process (its own peak memory and ITK thread count); errors become rows."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        try:
            return {**pool.submit(method_worker, method, fixed, moving, str(work), args).result(), "error": ""}
        except Exception as exc:  # a failed method is reported, the others still run
            return {"moving": moving.subject_id, "fixed": fixed.subject_id, "method": method,
                    "error": f"{type(exc).__name__}: {' '.join(str(exc).split())}"}


def package_versions() -> dict:
    import importlib.metadata as md

    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = md.version(package)
        except md.PackageNotFoundError:
            versions[package] = None
    return versions


def machine(threads: int) -> dict:
    """What ran a result (stored beside its row; not in its key). ``cpu_bf16_flags`` tells CPUs apart that share a
    ``cpu_model`` ("AMD EPYC" is both an AVX2-only and a bf16 CPU here): CPU seconds compare only within one."""
    from smgic_pydra.network.precision import cpu_bf16_flags

    flags = list(cpu_bf16_flags()) if os.access("/proc/cpuinfo", os.R_OK) else None  # None: unknown, not "none"
    return {"cpu_model": cpu_model(), "cpu_bf16_flags": flags, "cpu_count": os.cpu_count(),
            "itk_threads": threads,
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS"), "python_version": platform.python_version(),
            "platform": platform.platform(), "versions": package_versions()}


def git_commit() -> str:
    done = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True, check=False)
    return done.stdout.strip()


def code_sha256(family: str) -> str:
    """SHA-256 of the Python sources of a method family (:data:`METHOD_CODE`), in path order."""
    import hashlib

    digest = hashlib.sha256()
    for entry in METHOD_CODE[family]:
        root = REPO / entry
        for path in sorted(root.rglob("*.py")) if root.is_dir() else [root]:
            digest.update(str(path.relative_to(REPO)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def result_key_inputs(method: str, fixed, moving, args: dict, shared: dict) -> dict:
    """What determines one (pair, method) result (its key is the SHA-256 of this, canonical JSON)."""
    registry_name, options = method_options(method, args)
    family = "smgicnet" if registry_name == "smgicnet" else "fireants" if registry_name == "fireants" else "ants"
    return {"evaluation": EVALUATION_VERSION, "method": method, "registry_method": registry_name, "options": options,
            "model_sha256": shared["model_sha256"] if METHODS[registry_name].uses_model else None,
            "code_sha256": shared["code"][family], "versions": shared["versions"], "threads": args["threads"],
            "seed": args["seed"], "device": args["device"], "label_table_sha256": label_table_sha256(fixed),
            "fixed": {"id": fixed.subject_id, "sha256": fixed.content_sha256},
            "moving": {"id": moving.subject_id, "sha256": moving.content_sha256}}


def shared_key_inputs(args: dict) -> dict:
    from smgic_pydra.inference import resolve_model_files
    from smgic_pydra.io.hashing import sha256_file

    return {"model_sha256": sha256_file(resolve_model_files(args["model"])[0]),
            "code": {family: code_sha256(family) for family in METHOD_CODE}, "versions": package_versions()}


def result_path(folder: Path, moving: str, fixed: str, method: str) -> Path:
    return folder / f"{moving}_to_{fixed}.{method}.json"


def stored_result(path: Path, key: str) -> dict | None:
    """The stored row at ``path`` when its key is ``key`` and it did not fail, else None."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    row = data.get("row") or {}
    return row if data.get("key") == key and not row.get("error") else None


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--voxel-mm", type=int, default=1,
                        help="nominal voxel size (integer mm); each subject's is this x 0.8-1.3")
    parser.add_argument("--methods", nargs="+", default=CHOICES, choices=CHOICES)
    parser.add_argument("--label-maps", nargs="+", type=Path,
                        default=[LABEL_MAPS / f"training_seg_{k}.nii.gz" for k in HELD_OUT_MAPS],
                        help="label maps of the subjects (default: 13-15, held out of the default model's training)")
    parser.add_argument("--versions", type=int, default=2, help="subjects synthesized per label map (default: 2)")
    parser.add_argument("--colin27", type=int, default=0, metavar="N",
                        help="instead of the label maps: N subjects of the demo's real anatomy (Colin27, AAL labels), "
                             "each deformed and placed in its own native space; every ordered pair")
    parser.add_argument("--max-pairs", type=int, default=None, help="only the first N ordered pairs")
    parser.add_argument("--pairs", nargs="+", default=None, metavar="MOVING_to_FIXED",
                        help="run only these of the ordered pairs (e.g. 15b_to_14a; a second process can take some "
                             "pairs of a long run, in its own --work-dir); the report covers every stored result")
    parser.add_argument("--name", default="heldout", help="result file name part (default: heldout)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="ITK threads for ANTs")
    parser.add_argument("--seed", type=int, default=1, help="synthesis and ANTs random seed (positive)")
    parser.add_argument("--model", default=None, help="SM-GICNet model folder (default: the packaged model)")
    parser.add_argument("--device", default="cpu", help="device of the GPU-capable methods (cpu, cuda)")
    parser.add_argument("--option", action="append", default=[], metavar="METHOD.KEY=VALUE",
                        help="a method option (VALUE as JSON), as smgic-bids --method-option")
    parser.add_argument("--work-dir", type=Path, default=None, help="keep subjects and outputs here (default: temp)")
    parser.add_argument("--out-dir", type=Path, default=REPO / "benchmarks" / "results")
    parser.add_argument("--report-only", action="store_true", help="rewrite the report from the stored results")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    from smgic_pydra.io.atomic import save_json

    args = parse_args(argv)
    stem = args.out_dir / f"pair_accuracy_{args.name}_{args.voxel_mm}mm"
    folder = stem.parent / stem.name
    if args.report_only:
        try:
            pair_report.write_report(folder, stem)
        except ValueError as exc:
            raise SystemExit(str(exc)) from None
        return 0
    for path in [] if args.colin27 else args.label_maps:
        if not path.is_file():
            raise SystemExit(f"{path}: label map not found")
    if not 1 <= args.versions <= 8:
        raise SystemExit(f"--versions {args.versions}: must be 1-8")
    from smgic_pydra.cli.parser import parse_method_options

    options = {"threads": args.threads, "seed": args.seed, "model": args.model, "device": args.device,
               "options": parse_method_options(args.option)}
    shared = shared_key_inputs(options)
    if args.colin27:
        cohort = {"held_out_maps_only": True, "anatomy": "colin27", "label_maps": [],
                  "what": "moving -> fixed registrations of one real anatomy (Colin27, AAL labels) under different "
                          "smooth deformations, native spaces, no pre-registration",
                  "voxel_factor_range": colin27_voxel_factor_range(), "voxel_factors": "per axis"}
    else:
        cohort = {"held_out_maps_only": all(m.name.split(".")[0].removeprefix("training_seg_") in HELD_OUT_MAPS
                                            for m in args.label_maps),
                  "anatomy": "synthseg label maps", "label_maps": [str(m) for m in args.label_maps],
                  "what": "moving -> fixed registrations of different anatomies, native spaces, no pre-registration",
                  "voxel_factor_range": list(VOXEL_FACTOR), "voxel_factors": "isotropic"}
    keep = args.work_dir is not None
    with (nullcontext(args.work_dir) if keep else tempfile.TemporaryDirectory(prefix="smgic-pair-")) as work:
        work = Path(work)
        subjects = make_subjects(work, args.label_maps, args.versions, args.voxel_mm, args.seed, args.colin27)
        pairs = (colin27_pairs(args.colin27) if args.colin27 else ordered_pairs(args.label_maps, args.versions))
        pairs = pairs[: args.max_pairs]
        try:  # before benchmark.json is rewritten with this run's subjects
            pair_report.check_subjects(pair_report.load_rows(folder),
                                       {k: {"content_sha256": s.content_sha256} for k, s in subjects.items()}, folder)
        except ValueError as exc:
            raise SystemExit(str(exc)) from None
        names = [f"{moving}_to_{fixed}" for moving, fixed in pairs]
        unknown = sorted(set(args.pairs or ()) - set(names))
        if unknown:
            raise SystemExit(f"--pairs: {', '.join(unknown)} not among the benchmark's pairs ({', '.join(names)})")
        save_json({"benchmark": "pair_accuracy", **cohort, "versions": args.versions,
                   "voxel_mm": args.voxel_mm, "seed": args.seed, "options": options["options"],
                   "ordered_pairs": [list(p) for p in pairs], "machine": machine(args.threads),
                   "subjects": {k: {**s.spec, "content_sha256": s.content_sha256} for k, s in subjects.items()}},
                  folder / "benchmark.json")
        failed = 0
        for moving, fixed in [p for p, name in zip(pairs, names) if args.pairs is None or name in args.pairs]:
            (work / "outputs" / f"{moving}_to_{fixed}").mkdir(parents=True, exist_ok=True)
            for method in args.methods:
                from smgic_pydra.io.hashing import sha256_json

                key_inputs = result_key_inputs(method, subjects[fixed], subjects[moving], options, shared)
                key, path = sha256_json(key_inputs), result_path(folder, moving, fixed, method)
                if stored_result(path, key) is not None:
                    print(f"done before: {moving} -> {fixed} {method}", flush=True)
                    continue
                load = os.getloadavg()[0]
                row = run_method(method, subjects[fixed], subjects[moving], work, options)
                row = {**{k: v for k, v in row.items() if k != "files"}, "load_avg_1min": round(load, 2)}
                save_json({"key": key, "key_inputs": key_inputs, "git_commit": git_commit(),
                           "machine": machine(args.threads), "row": row}, path)
                failed += bool(row["error"])
                print(json.dumps({k: row.get(k) for k in pair_report.CSV_COLUMNS if row.get(k) not in (None, "")}),
                      flush=True)
                pair_report.write_report(folder, stem)
    report = pair_report.write_report(folder, stem)
    print(pair_report.summary_lines(report))
    print(f"wrote {stem}.json, .csv and .md")
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())
