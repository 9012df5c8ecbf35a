"""Is the packaged network's CPU forward bound by arithmetic? Its FLOPs per cascade level against the CPU's peak.

Counts the convolution FLOPs of ``SMGICNet.velocity`` up to each level (``torch.utils.flop_counter``, 2 per
multiply-add, on ATen's convolutions, which compute the same convolutions as the network's oneDNN ones), times
the forward up to each level as a registration runs it (float32 oneDNN, or bf16 autocast on a CPU with bf16
units), and, alternating in the same process, a float32 matmul of 2048^2 as the CPU's attainable peak. A forward
whose GFLOP/s is near the matmul's cannot be made faster by scheduling, only by fewer FLOPs (a smaller network)
or cheaper ones (a lower precision).

    OMP_NUM_THREADS=1 python benchmarks/network_compute.py --threads 1 --name avx2_1t

Writes ``benchmarks/results/network_compute_<name>.json``.
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
sys.path.insert(0, str(REPO / "benchmarks"))
from precision_speed import _aten_convolutions, smooth_pair  # noqa: E402
from registration_speed import cpu_model  # noqa: E402

MATMUL_N = 2048


def _seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--name", default="cpu", help="results file network_compute_<name>.json")
    args = parser.parse_args(argv)
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from smgic_pydra.inference import load_model
    from smgic_pydra.network.precision import cpu_bf16_flags, forward_context, network_precision
    from smgic_pydra.network.smgicnet import N_LEVELS

    torch.set_num_threads(args.threads)
    bundle = load_model(None)
    g = torch.Generator().manual_seed(0)
    fixed, moving = smooth_pair(bundle, g)
    levels = range(1, N_LEVELS + 1)
    precision = network_precision("auto", "cpu")
    gflop, forward = {}, {level: [] for level in levels}
    with torch.inference_mode():
        with _aten_convolutions(True):
            for level in levels:
                with FlopCounterMode(display=False) as counter:
                    bundle.model.velocity(moving, fixed, upto_level=level)
                gflop[level] = counter.get_total_flops() / 1e9
        a, b = torch.rand(MATMUL_N, MATMUL_N, generator=g), torch.rand(MATMUL_N, MATMUL_N, generator=g)
        matmul = []
        for _ in range(args.repeats):
            matmul.append(_seconds(lambda: a @ b))
            for level in levels:
                with forward_context(precision, "cpu"):
                    forward[level].append(_seconds(lambda: bundle.model.velocity(moving, fixed, upto_level=level)))
    median = {level: sorted(times)[len(times) // 2] for level, times in forward.items()}
    peak = 2 * MATMUL_N**3 / 1e9 / sorted(matmul)[len(matmul) // 2]
    record = {
        "benchmark": "network_compute", "date_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": "python benchmarks/network_compute.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "cpu_model": cpu_model(), "cpu_bf16_flags": list(cpu_bf16_flags()),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(), "torch": torch.__version__,
        "threads": args.threads, "omp_num_threads": os.environ.get("OMP_NUM_THREADS"), "network_precision": precision,
        "load_average_after": os.getloadavg(),
        "matmul_float32_gflops_per_s": round(peak, 1),
        "levels": {
            str(level): {
                "grid": list(bundle.cfg.level_shape(level)),
                "gflop": round(gflop[level], 1),
                "forward_seconds": [round(s, 3) for s in forward[level]],
                "median_seconds": round(median[level], 3),
                "gflops_per_s": round(gflop[level] / median[level], 1),
                "seconds_at_matmul_peak": round(gflop[level] / peak, 3),
            } for level in levels},
    }
    out = REPO / "benchmarks" / "results" / f"network_compute_{args.name}.json"
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
