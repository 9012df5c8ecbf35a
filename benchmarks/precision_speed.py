"""The packaged network's forward at its 128^3 grid in float32 and under CPU bf16 autocast, alternating, in one process.

    python benchmarks/precision_speed.py --repeats 3
"""

import argparse
import json
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)
    import torch

    from smgic_pydra.inference import load_model
    from smgic_pydra.network.precision import cpu_bf16_flags, forward_context

    torch.set_num_threads(args.threads)
    bundle = load_model(None)
    g = torch.Generator().manual_seed(0)
    shape = (1, 1, *bundle.cfg.grid_shape)
    fixed = torch.nn.functional.avg_pool3d(torch.rand(shape, generator=g), 9, 1, 4)
    moving = torch.roll(fixed, 3, dims=2)
    seconds = {"fp32": [], "bf16": []}
    velocity = {}
    load_before = os.getloadavg()
    for _ in range(args.repeats):
        for precision in ("fp32", "bf16"):
            start = time.perf_counter()
            with torch.inference_mode(), forward_context(precision, "cpu"):
                velocity[precision] = bundle.model.register(moving, fixed).velocity.float()
            seconds[precision].append(round(time.perf_counter() - start, 3))
    diff = (velocity["bf16"] - velocity["fp32"]).abs()
    record = {"benchmark": "precision_speed", "date_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "command": "python benchmarks/precision_speed.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "threads": args.threads, "grid": list(bundle.cfg.grid_shape), "cpu_bf16_flags": list(cpu_bf16_flags()),
              "torch": torch.__version__, "cpu_capability": torch.backends.cpu.get_cpu_capability(),
              "load_average_before": load_before, "load_average_after": os.getloadavg(),
              "seconds": seconds, "median_ratio_fp32_over_bf16": sorted(seconds["fp32"])[args.repeats // 2]
              / sorted(seconds["bf16"])[args.repeats // 2],
              "velocity_abs_diff_mean_over_abs_mean": float(diff.mean() / velocity["fp32"].abs().mean()),
              "velocity_abs_diff_max": float(diff.max())}
    out = REPO / "benchmarks" / "results" / "precision_speed_cpu.json"
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
