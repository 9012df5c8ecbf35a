"""The whole SM-GICNet pipeline of one pair on one device, warm, per precision and quality preset.

Held-out benchmark subjects (:mod:`pair_subjects`, maps 13-15 by default, at ``--voxel-mm``) are
prepared once; the model is loaded once and every (precision, quality) runs the first pair once
untimed (CUDA context, kernel selection), then registers each ordered pair with
:func:`smgic_pydra.inference.smgicnet_pair`: affine, network, refinement and the dense native-grid
fields of both directions (what the participant level computes before writing). Per pair:

* ``forward_seconds`` and the stage seconds of the sidecar (CUDA synchronized at each reading),
* ``pipeline_seconds``: :func:`smgicnet_pair` whole (registration + native fields, CPU float32),
* ``write_seconds``: with ``--write``, writing the default ``all`` policy's files (gzip on the CPU),
* ``dice_mean``: label Dice of the warped moving labels on the fixed grid (36 aseg labels),
* ``percent_folded``: Jacobian determinant <= 0 in the fixed brain,
* ``peak_cuda_mib``: CUDA peak of the registration.

    python benchmarks/gpu_pipeline.py --device cuda --voxel-mm 1 --max-pairs 4

Writes ``benchmarks/results/gpu_pipeline_<device type>.json`` (``--out`` to change), rewritten after each
(quality, precision) run.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from pair_subjects import ordered_pairs, write_subject  # noqa: E402  (same folder)

LABEL_MAPS = REPO.parent / "shared" / "data" / "synthseg_label_maps"


def machine(device) -> dict:
    import torch

    from registration_speed import cpu_model

    info = {"cpu_model": cpu_model(), "torch_version": torch.__version__, "python_version": platform.python_version(),
            "device": str(device), "torch_threads": torch.get_num_threads()}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(gpu_name=props.name, gpu_memory_mib=props.total_memory / 2**20, cuda_version=torch.version.cuda)
    return info


def register(bundle, fixed, moving, settings, work: Path, write: bool) -> dict:
    """One timed pair: the registration and native fields, then (``write``) the ``all`` files, then the metrics."""
    import numpy as np
    import nibabel as nib
    import torch

    from smgic_pydra.inference import smgicnet_pair
    from smgic_pydra.metrics import dice_per_label, folding_stats, load_label_table, peak_cuda_mib, synchronize
    from smgic_pydra.worldspace import PairOutputPaths

    device = bundle.device
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    synchronize(device)
    start = time.perf_counter()
    pair = smgicnet_pair(bundle, fixed, moving, settings=settings)
    pipeline_seconds = time.perf_counter() - start
    peak = peak_cuda_mib(device)
    folder = work / "outputs" / f"{moving.subject_id}_to_{fixed.subject_id}"
    paths = PairOutputPaths(warp=folder / "warp.nii.gz", inverse_warp=folder / "inverse_warp.nii.gz",
                            warped=folder / "warped.nii.gz", warped_labels=folder / "labels.nii.gz",
                            jacobian=folder / "jacobian.nii.gz", sidecar=folder / "sidecar.json")
    start = time.perf_counter()
    if write:
        pair.write(paths, "all")
    write_seconds = time.perf_counter() - start if write else None
    table = load_label_table()
    fixed_labels = np.asarray(nib.load(fixed.source_files["labels"]).dataobj)
    dice = dice_per_label(pair.warped_labels(), fixed_labels, list(table))
    folding = folding_stats(pair.forward.astype(np.float64), pair.fixed_affine, fixed.native_mask)
    return {"moving": moving.subject_id, "fixed": fixed.subject_id, **pair.seconds,
            "pipeline_seconds": pipeline_seconds, "write_seconds": write_seconds, "peak_cuda_mib": peak,
            "precision_ran": pair.sidecar["precision"]["network"], "network_level": pair.sidecar["network_level"],
            "dice_mean": dice.mean, "percent_folded": folding.percent_folded}


def summary(rows: list[dict]) -> dict:
    import numpy as np

    keys = [k for k in rows[0] if k.endswith("_seconds") or k in ("dice_mean", "percent_folded", "peak_cuda_mib")]
    return {k: float(np.mean([r[k] for r in rows])) for k in keys if rows[0][k] is not None}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--voxel-mm", type=int, default=1)
    parser.add_argument("--label-maps", nargs="+", type=Path,
                        default=[LABEL_MAPS / f"training_seg_{n}.nii.gz" for n in ("13", "14", "15")])
    parser.add_argument("--versions", type=int, default=2)
    parser.add_argument("--max-pairs", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    parser.add_argument("--qualities", nargs="+", default=["default"])
    parser.add_argument("--write", action="store_true", help="also write (and time) the all policy's files")
    parser.add_argument("--work-dir", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    import torch

    from smgic_pydra.config import SMGICNetConfig
    from smgic_pydra.inference import load_model, resolve_model_files
    from smgic_pydra.pipeline_settings import PipelineSettings, quality_options
    from smgic_pydra.preparation.prepare import prepare_subject

    device = torch.device(args.device)
    out = args.out or REPO / "benchmarks" / "results" / f"gpu_pipeline_{device.type}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work_dir or Path(tmp)
        cfg = SMGICNetConfig.from_json(resolve_model_files(None)[1].read_text())
        start = time.perf_counter()
        subjects = [write_subject(m, v, args.seed, args.voxel_mm, work / "subjects")
                    for m in args.label_maps for v in range(args.versions)]
        prepared = {s.subject_id: prepare_subject(s.t1w, work / "prepared" / s.subject_id, cfg, mask_path=s.mask,
                                                  labels_path=s.labels, subject_id=s.subject_id) for s in subjects}
        bundle = load_model(None, device=device)
        result = {"benchmark": "gpu_pipeline", "what": __doc__.splitlines()[0], "machine": machine(device),
                  "voxel_mm": args.voxel_mm, "label_maps": [p.name for p in args.label_maps], "versions": args.versions,
                  "seed": args.seed, "model_sha256": bundle.weights_sha256,
                  "prepare_seconds": time.perf_counter() - start, "runs": []}
        pairs = ordered_pairs(args.label_maps, args.versions)[: args.max_pairs]
        for quality in args.qualities:
            for precision in args.precisions:
                settings = PipelineSettings.from_options({**quality_options(quality), "precision": precision})
                moving, fixed = pairs[0]
                warm_start = time.perf_counter()
                register(bundle, prepared[fixed], prepared[moving], settings, work, args.write)
                warm_up = time.perf_counter() - warm_start
                rows = [register(bundle, prepared[f], prepared[m], settings, work, args.write) for m, f in pairs]
                result["runs"].append({"quality": quality, "precision": precision, "warm_up_seconds": warm_up,
                                       "mean": summary(rows), "pairs": rows})
                result["date_utc"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
                out.write_text(json.dumps(result, indent=2) + "\n")  # after each run: a cut-off run keeps the finished ones
                print(json.dumps({k: result["runs"][-1][k] for k in ("quality", "precision", "warm_up_seconds", "mean")}),
                      flush=True)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
