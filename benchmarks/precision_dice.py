"""SM-GICNet with the network forward in bfloat16 (CPU autocast) against float32, on held-out pairs, in one process.

Pairs of different held-out anatomies (SynthSeg maps 13, 14, 15; subjects synthesized as in
``pair_accuracy.py`` at ``--voxel-mm``): each pair is registered twice with the default pipeline,
``smgicnet.precision=fp32`` and ``bf16`` (alternating which runs first), and scored the same way as
the cohort's tiles (:func:`smgic_pydra.metrics.pair_metrics.field_metrics`: Dice of the 36 aseg labels,
folding in the brain). Stage seconds are from the same process, so their ratio is meaningful even
on a shared CPU (the absolute seconds are not).

    python benchmarks/precision_dice.py --voxel-mm 2
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from pair_subjects import write_subject  # noqa: E402  (same folder)

MAPS = Path("/work/shared/data/synthseg_label_maps")
PAIRS = (("13", "14"), ("14", "15"), ("15", "13"))
"""(moving map, fixed map): moving in version 0, fixed in version 1."""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--voxel-mm", type=float, default=2.0)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)

    import numpy as np
    import torch

    from smgic_pydra.inference import load_model
    from smgic_pydra.methods import MethodContext, get_method
    from smgic_pydra.metrics.labels import load_label_table
    from smgic_pydra.network.precision import cpu_bf16_flags
    from smgic_pydra.preparation import prepare_subject
    from smgic_pydra.metrics.pair_metrics import field_metrics

    torch.set_num_threads(args.threads)
    table = load_label_table(None)
    rows = []
    with tempfile.TemporaryDirectory(prefix="precision-dice-") as tmp:
        tmp = Path(tmp)
        cfg = load_model(None).cfg
        runners = {p: get_method("smgicnet").make_runner(MethodContext(threads=args.threads, options={"precision": p}))
                   for p in ("fp32", "bf16")}
        for i, (m, f) in enumerate(PAIRS):
            prepared = []
            for number, version in ((m, 0), (f, 1)):
                s = write_subject(MAPS / f"training_seg_{number}.nii.gz", version, 1, args.voxel_mm, tmp / "inputs")
                prepared.append(prepare_subject(s.t1w, tmp / "prep" / s.subject_id, cfg, mask_path=s.mask,
                                                labels_path=s.labels, subject_id=s.subject_id))
            moving, fixed = prepared
            for precision in (("fp32", "bf16") if i % 2 == 0 else ("bf16", "fp32")):
                pair = runners[precision](fixed, moving, {})
                metrics, _ = field_metrics(pair.forward, pair.fixed_affine, pair.inverse, pair.moving_img.affine, fixed,
                                           pair.warped_labels(), table)
                rows.append({"moving": moving.subject_id, "fixed": fixed.subject_id, "precision": precision,
                             "ran": pair.sidecar["precision"]["network"],
                             **{k: round(float(v), 6) for k, v in metrics.items()},
                             **{k: round(float(v), 3) for k, v in pair.seconds.items()}})
                print(json.dumps(rows[-1]), flush=True)
    by = {p: [r for r in rows if r["precision"] == p] for p in ("fp32", "bf16")}
    diff = [b["dice_mean"] - a["dice_mean"] for a, b in zip(by["fp32"], by["bf16"])]
    summary = {
        "dice_mean": {p: float(np.mean([r["dice_mean"] for r in v])) for p, v in by.items()},
        "dice_bf16_minus_fp32": {"mean": float(np.mean(diff)), "worst": float(min(diff)), "per_pair": diff},
        "folding_percent_max": {p: float(max(r["folding_percent"] for r in v)) for p, v in by.items()},
        "network_seconds_mean": {p: float(np.mean([r["network_seconds"] for r in v])) for p, v in by.items()},
        "forward_seconds_mean": {p: float(np.mean([r["forward_seconds"] for r in v])) for p, v in by.items()},
    }
    summary["network_speedup_bf16"] = summary["network_seconds_mean"]["fp32"] / summary["network_seconds_mean"]["bf16"]
    summary["targets"] = {"mean_within_0.002": abs(summary["dice_bf16_minus_fp32"]["mean"]) <= 0.002,
                          "no_pair_worse_by_0.005": summary["dice_bf16_minus_fp32"]["worst"] >= -0.005}
    record = {"benchmark": "precision_dice", "date_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "command": "python benchmarks/precision_dice.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "voxel_mm": args.voxel_mm, "threads": args.threads, "cpu_bf16_flags": list(cpu_bf16_flags()),
              "load_average_at_end": os.getloadavg(),
              "note": "CPU shared with other agents' jobs: compare seconds only within this run",
              "summary": summary, "rows": rows}
    out = args.out or REPO / "benchmarks" / "results" / f"precision_dice_{args.voxel_mm:g}mm.json"
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
