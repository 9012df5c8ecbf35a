"""The packaged network's inference forward at its 128^3 grid per variant, alternating, in one process.

Variants: ``fp32``, ``bf16`` (CPU autocast) and ``fp32-aten`` (float32 with ATen's own convolution backend
choice instead of the network's oneDNN :class:`~smgic_pydra.network.blocks.Conv3d`, what the package ran
before it). The forward is ``SMGICNet.velocity``, what a registration runs.

    python benchmarks/precision_speed.py --repeats 3
    python benchmarks/precision_speed.py --variants fp32 fp32-aten --threads 1 --out conv_backend_speed_cpu_1t.json
"""

import argparse
import json
import os
import sys
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
VARIANTS = ("fp32", "fp32-aten", "bf16")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=["fp32", "bf16"],
                        help="compared with the first one")
    parser.add_argument("--out", default="precision_speed_cpu.json", help="file name in benchmarks/results")
    args = parser.parse_args(argv)
    import torch

    from smgic_pydra.inference import load_model
    from smgic_pydra.network.precision import cpu_bf16_flags, forward_context

    torch.set_num_threads(args.threads)
    bundle = load_model(None)
    fixed, moving = smooth_pair(bundle, torch.Generator().manual_seed(0))
    seconds = {variant: [] for variant in args.variants}
    velocity = {}
    load_before = os.getloadavg()
    for _ in range(args.repeats):
        for variant in args.variants:
            start = time.perf_counter()
            precision, _, backend = variant.partition("-")
            with torch.inference_mode(), forward_context(precision, "cpu"), _aten_convolutions(backend == "aten"):
                velocity[variant] = bundle.model.velocity(moving, fixed).float()
            seconds[variant].append(round(time.perf_counter() - start, 3))
    base = args.variants[0]
    median = {variant: sorted(times)[args.repeats // 2] for variant, times in seconds.items()}
    record = {"benchmark": "precision_speed", "date_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "command": "python benchmarks/precision_speed.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "threads": args.threads, "grid": list(bundle.cfg.grid_shape), "cpu_bf16_flags": list(cpu_bf16_flags()),
              "torch": torch.__version__, "cpu_capability": torch.backends.cpu.get_cpu_capability(),
              "load_average_before": load_before, "load_average_after": os.getloadavg(),
              "seconds": seconds, "median_seconds": median,
              f"median_ratio_over_{base}": {v: median[v] / median[base] for v in args.variants[1:]},
              f"velocity_abs_diff_mean_over_abs_mean_against_{base}": {
                  v: float((velocity[v] - velocity[base]).abs().mean() / velocity[base].abs().mean())
                  for v in args.variants[1:]},
              f"velocity_abs_diff_max_against_{base}": {
                  v: float((velocity[v] - velocity[base]).abs().max()) for v in args.variants[1:]}}
    out = REPO / "benchmarks" / "results" / args.out
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record, indent=1))
    return 0


def smooth_pair(bundle, generator):
    """The speed benchmarks' network inputs: a smooth random image ``(1, 1, *grid)`` on the model's grid and the
    same shifted by 3 voxels along D."""
    import torch

    fixed = torch.nn.functional.avg_pool3d(torch.rand((1, 1, *bundle.cfg.grid_shape), generator=generator), 9, 1, 4)
    return fixed, torch.roll(fixed, 3, dims=2)


@contextmanager
def _aten_convolutions(enabled: bool):
    """While ``enabled``: the network's convolutions with ATen's backend choice (plain ``nn.Conv3d``)."""
    from torch import nn

    from smgic_pydra.network.blocks import Conv3d

    own = Conv3d._conv_forward
    if enabled:
        Conv3d._conv_forward = nn.Conv3d._conv_forward
    try:
        yield
    finally:
        Conv3d._conv_forward = own


if __name__ == "__main__":
    raise SystemExit(main())
