"""Bytes one pair writes per ``--outputs`` policy, seconds per stage, and ANTs SyNQuick's own outputs, in one run.

One held-out pair (SynthSeg maps ``training_seg_13`` -> ``14`` by default, synthesized as in
``pair_accuracy.py`` at ``--voxel-mm``), registered once with SM-GICNet (the default pipeline, packaged
model) and written under every policy (:data:`smgic_pydra.output_policy.OUTPUT_POLICIES`), plus
``identity`` (which writes nothing). "Before" reconstructs the issue-21 ``all``: today's ``full`` files
with the ``.h5`` in float64 uncompressed (24 bytes per fixed voxel, exact) and identity's ``full`` files
(also with a float64 ``.h5``). With ``--synquick`` the same pair is registered with
``antsRegistrationSyNQuick.sh -t s`` (antspyx) in the same process: its own ``Warp`` + ``InverseWarp``
+ ``.mat`` (the files antsRegistration writes; SyN writes the same three files on the same grid)
and its seconds, for the ratio. CPU seconds are contended when other jobs share the machine.

    python benchmarks/output_bytes.py --voxel-mm 1 --synquick
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from pair_subjects import write_subject  # noqa: E402  (same folder)

MAPS = Path("/work/shared/data/synthseg_label_maps")


def folder_bytes(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_size for p in sorted(Path(folder).rglob("*")) if p.is_file()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--voxel-mm", type=float, default=1.0)
    parser.add_argument("--maps", nargs=2, default=["13", "14"], help="moving and fixed SynthSeg map numbers")
    parser.add_argument("--synquick", action="store_true", help="also run ANTs SyNQuick on the pair")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help="smgicnet option (JSON value)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)

    import nibabel as nib
    import numpy as np
    import torch

    from smgic_pydra.baselines.ants_registration import baseline_pair
    from smgic_pydra.bids.derivatives import pair_output_paths
    from smgic_pydra.inference import load_model
    from smgic_pydra.methods import MethodContext, get_method
    from smgic_pydra.output_policy import OUTPUT_POLICIES
    from smgic_pydra.preparation import prepare_subject
    from smgic_pydra.worldspace.outputs import write_pair_outputs

    torch.set_num_threads(args.threads)
    options = {k: json.loads(v) for k, v in (o.split("=", 1) for o in args.option)}
    with tempfile.TemporaryDirectory(prefix="output-bytes-") as tmp:
        tmp = Path(tmp)
        cfg = load_model(None).cfg
        subjects = {}
        for role, number in zip(("moving", "fixed"), args.maps):
            s = write_subject(MAPS / f"training_seg_{number}.nii.gz", 0, 1, args.voxel_mm, tmp / "inputs")
            key = f"sub-{number}"
            subjects[role] = prepare_subject(s.t1w, tmp / "prep" / key, cfg, mask_path=s.mask, labels_path=s.labels,
                                             subject_id=key)
        fixed, moving = subjects["fixed"], subjects["moving"]
        voxels = {r: int(np.prod(nib.load(s.source_files["t1"]).shape[:3])) for r, s in subjects.items()}
        run = get_method("smgicnet").make_runner(MethodContext(threads=args.threads, options=options))
        pair = run(fixed, moving, {})
        smgicnet_seconds = {k: round(float(v), 3) for k, v in pair.seconds.items()}
        policies = {}
        for name in OUTPUT_POLICIES:
            out = tmp / "out" / name
            pair.write(pair_output_paths(out, moving.subject_id, fixed.subject_id, "smgicnet"), name)
            policies[name] = folder_bytes(out)
        identity = get_method("identity").make_runner(MethodContext())(fixed, moving, {})
        identity_written = [n for n, p in OUTPUT_POLICIES.items() if p.writes_for("identity")]
        before = {}
        for method, result in (("smgicnet", pair), ("identity", identity)):
            paths = pair_output_paths(tmp / "before" / method, moving.subject_id, fixed.subject_id, method)
            write_pair_outputs(paths, result.fixed_img, result.moving_img, result.moving_labels,
                               result.forward.astype(np.float64), result.inverse.astype(np.float64), {},
                               affine_ras=result.affine_ras)
            files = folder_bytes(tmp / "before" / method)
            h5 = next(n for n in files if n.endswith(".h5"))
            files[h5] = 24 * voxels["fixed"] + 4096  # float64 uncompressed, as before issue 21
            before[method] = files
        record = {
            "benchmark": "output_bytes",
            "date_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "command": "python benchmarks/output_bytes.py " + " ".join(argv if argv is not None else sys.argv[1:]),
            "machine": {"cpu_count": os.cpu_count(), "torch_threads": args.threads, "platform": platform.platform(),
                        "load_average_at_end": None, "note": "CPU shared with other jobs: compare seconds only within this run"},
            "pair": {"moving": moving.subject_id, "fixed": fixed.subject_id, "voxel_mm": args.voxel_mm, "voxels": voxels},
            "smgicnet_options": options,
            "smgicnet_precision": pair.sidecar.get("precision"),
            "smgicnet_seconds": smgicnet_seconds,
            "bytes_per_policy": {n: {"total": sum(f.values()), "files": f} for n, f in policies.items()},
            "identity_policies_writing_files": identity_written,
            "before_issue21_all_bytes": {m: sum(f.values()) for m, f in before.items()},
            "before_issue21_files": before,
        }
        total_before = sum(record["before_issue21_all_bytes"].values())
        record["before_issue21_all_total"] = total_before
        if args.synquick:
            ants_dir = tmp / "ants"
            started = time.perf_counter()
            syn = baseline_pair("synquick", pair.fixed_img, pair.moving_img, pair.moving_labels, nthreads=args.threads,
                                seed=1, work_dir=ants_dir)
            own = {n: b for n, b in folder_bytes(ants_dir).items() if n.endswith(("Warp.nii.gz", ".mat"))
                   and not n.startswith(("forward_", "inverse_"))}
            record["synquick"] = {"seconds": {k: round(float(v), 3) for k, v in syn.seconds.items()},
                                  "wall_seconds": round(time.perf_counter() - started, 3),
                                  "ants_own_files": own, "ants_own_bytes": sum(own.values())}
            record["synquick_over_smgicnet_forward_seconds"] = round(
                syn.seconds["forward_seconds"] / pair.seconds["forward_seconds"], 2)
        record["machine"]["load_average_at_end"] = os.getloadavg()
        default = record["bytes_per_policy"]["all"]["total"]
        compact = record["bytes_per_policy"]["compact"]["total"]
        record["targets"] = {
            "all_over_before": round(default / total_before, 4),
            "compact_over_before": round(compact / total_before, 4),
            "compact_per_ordered_pair_over_before": round(compact / 2 / total_before, 4),
        }
        if args.synquick:
            record["targets"]["all_warps_mat_over_ants_own"] = round(
                sum(b for n, b in policies["all"].items() if n.endswith(("xfm.nii.gz", ".mat"))) / record["synquick"]["ants_own_bytes"], 3)
            record["targets"]["all_over_ants_own"] = round(default / record["synquick"]["ants_own_bytes"], 3)
    out = args.out or REPO / "benchmarks" / "results" / f"output_bytes_{args.voxel_mm:g}mm.json"
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps({k: record[k] for k in ("smgicnet_seconds", "targets")} | {
        "policies": {n: v["total"] for n, v in record["bytes_per_policy"].items()},
        "before": record["before_issue21_all_bytes"], "synquick": record.get("synquick", {}).get("seconds"),
        "ants_own": record.get("synquick", {}).get("ants_own_bytes")}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
