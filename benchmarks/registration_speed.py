"""Speed and peak memory of one symmetric registration (both directions) with SM-GICNet.

Times ``SMGICNet.forward_symmetric(a, b)`` under ``torch.inference_mode`` (all four levels, forward and
inverse fields and warped images of both directions; batch 1 per direction, random initial weights:
speed does not depend on the weights). One warm-up run, then the mean of ``--repeats`` runs.
Every grid runs in a fresh subprocess so its peak memory is its own: CPU = ``ru_maxrss`` of that
process (includes the ~0.3-0.5 GB of the Python + torch runtime, reported separately as
``baseline_rss_mb``); CUDA = ``torch.cuda.max_memory_allocated`` / ``max_memory_reserved``.

    python benchmarks/registration_speed.py --device cpu --shapes 128x128x128
    python benchmarks/registration_speed.py --device cuda   # 128^3 and 160x192x224

Writes ``benchmarks/results/registration_speed_<cpu|cuda>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

DEFAULT_SHAPES = ("128x128x128", "160x192x224")
REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"


def parse_shape(text: str) -> tuple[int, int, int]:
    try:
        shape = tuple(int(n) for n in text.lower().split("x"))
    except ValueError:
        shape = ()
    if len(shape) != 3:
        raise argparse.ArgumentTypeError(f"shape must look like 128x128x128, got {text!r}")
    return shape


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def max_rss_mb() -> float:
    """Peak resident set size of this process in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_worker(shape: tuple[int, int, int], device_name: str, threads: int, repeats: int, gate: str) -> dict:
    """Benchmark one grid in this process; returns the measurements."""
    import torch

    from smgic_pydra.config import SMGICNetConfig
    from smgic_pydra.inference.model_io import CPU_MEMORY_FORMAT
    from smgic_pydra.network import SMGICNet, count_parameters

    torch.set_num_threads(threads)
    device = torch.device(device_name)
    baseline = max_rss_mb()
    torch.manual_seed(0)
    model = SMGICNet(SMGICNetConfig(grid_shape=shape, attention_gate=gate)).to(device).eval()
    if device.type == "cpu":  # as smgic_pydra.inference.load_model runs it
        model.to(memory_format=CPU_MEMORY_FORMAT)
    gen = torch.Generator().manual_seed(0)
    a, b = (torch.rand(1, 1, *shape, generator=gen).to(device) for _ in range(2))

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    times = []
    with torch.inference_mode():
        for i in range(repeats + 1):
            sync()
            start = time.perf_counter()
            ab, ba = model.forward_symmetric(a, b)
            sync()
            if i:  # run 0 is the warm-up
                times.append(time.perf_counter() - start)
            del ab, ba
    result = {
        "grid_shape": list(shape),
        "attention_gate": gate,
        "memory_format": str(CPU_MEMORY_FORMAT) if device.type == "cpu" else "contiguous",
        "parameters": count_parameters(model),
        "repeats": repeats,
        "seconds_mean": sum(times) / len(times),
        "seconds_min": min(times),
        "seconds_all": times,
    }
    if device.type == "cuda":
        result["peak_allocated_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
        result["peak_reserved_mb"] = torch.cuda.max_memory_reserved(device) / 2**20
    result["peak_rss_mb"] = max_rss_mb()
    result["baseline_rss_mb"] = baseline
    return result


def machine(device_name: str, threads: int) -> dict:
    import torch

    info = {
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": threads,
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "platform": platform.platform(),
        "device": device_name,
    }
    if device_name.startswith("cuda"):
        device = torch.device(device_name)
        info["gpu_name"] = torch.cuda.get_device_name(device)
        info["gpu_memory_mb"] = torch.cuda.get_device_properties(device).total_memory / 2**20
        info["cuda_version"] = torch.version.cuda
    return info


def write_json_atomic(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=2)
            handle.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:N] (default cpu)")
    parser.add_argument("--shapes", nargs="+", type=parse_shape, default=[parse_shape(s) for s in DEFAULT_SHAPES],
                        help="network grids DxHxW (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs after the warm-up (default 3)")
    parser.add_argument("--gate", choices=("paper", "code"), default="paper", help="attention gate variant")
    parser.add_argument("--output", type=Path, default=None,
                        help="JSON path (default benchmarks/results/registration_speed_<cpu|cuda>.json)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        print(json.dumps(run_worker(args.shapes[0], args.device, args.threads, args.repeats, args.gate)))
        return 0

    device_kind = args.device.split(":")[0]
    settings = []
    for shape in args.shapes:
        command = [sys.executable, __file__, "--worker", "--device", args.device, "--threads", str(args.threads),
                   "--repeats", str(args.repeats), "--gate", args.gate, "--shapes", "x".join(map(str, shape))]
        # the repository on the worker's path, so the benchmark runs from a checkout without installing it
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, (str(REPO), os.environ.get("PYTHONPATH"))))}
        done = subprocess.run(command, capture_output=True, text=True, env=env)
        if done.returncode:
            sys.stderr.write(done.stderr)
            settings.append({"grid_shape": list(shape), "error": done.stderr.strip().splitlines()[-1:]})
            continue
        settings.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(json.dumps(settings[-1]), flush=True)
    report = {
        "benchmark": "registration_speed",
        "what": "SMGICNet.forward_symmetric (A->B and B->A, 4 levels, fields, inverse fields, warped) "
        "under torch.inference_mode, batch 1 per direction",
        "date_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(args.device, args.threads),
        "settings": settings,
    }
    output = args.output or RESULTS / f"registration_speed_{device_kind}.json"
    write_json_atomic(output, report)
    print(f"wrote {output}")
    return 1 if any("error" in s for s in settings) else 0


if __name__ == "__main__":
    sys.exit(main())
