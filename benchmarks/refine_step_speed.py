"""Seconds of one test-time refinement step (:mod:`smgic_pydra.refinement`) on the model's grid, CPU.

A coarse step (the main stage's) runs the objective (both maps integrated, both images warped, two local NCCs,
smoothness) with its backward and an Adam update on the 3 mm grid (the 128^3 grid pooled by 2); a fine step does
the same on the 128^3 grid itself, a pre step on the 6 mm grid (pooled by 4). Times
:func:`~smgic_pydra.refinement.refine_velocity` from a zero velocity on the speed benchmarks' smooth pair
(:func:`precision_speed.smooth_pair`; the cost does not depend on the values): ``steps`` coarse steps alone, then
one coarse step plus ``fine_steps`` fine ones or ``pre_steps`` pre ones (a fine or pre step's seconds are the
difference to one coarse step alone, over their number). Medians of ``--repeats`` runs.

    OMP_NUM_THREADS=1 python benchmarks/refine_step_speed.py --threads 1 --name avx2_1t

Writes ``benchmarks/results/refine_step_speed_<name>.json``; compare two commits by running each in the
same session (a machine's speed drifts between sessions).
"""

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=12, help="coarse steps timed (default 12, the default's)")
    parser.add_argument("--fine-steps", type=int, default=4, help="fine steps timed (default 4)")
    parser.add_argument("--pre-steps", type=int, default=8, help="pre steps timed (default 8)")
    parser.add_argument("--name", default="cpu", help="result file name part")
    args = parser.parse_args(argv)
    import torch

    from precision_speed import smooth_pair
    from registration_speed import cpu_model
    from smgic_pydra.inference import load_model
    from smgic_pydra.pipeline_settings import RefineSettings
    from smgic_pydra.refinement import refine_velocity

    torch.set_num_threads(args.threads)
    bundle = load_model(None)
    fixed, moving = smooth_pair(bundle, torch.Generator().manual_seed(0))
    velocity = torch.zeros((1, 3, *fixed.shape[-3:]))

    def seconds(settings: RefineSettings) -> float:
        start = time.perf_counter()
        refine_velocity(velocity, fixed, moving, settings)
        return time.perf_counter() - start

    runs = {"coarse": [], "one_coarse_plus_fine": [], "one_coarse_plus_pre": [], "one_coarse": []}
    load_before = os.getloadavg()
    for _ in range(args.repeats):
        runs["coarse"].append(seconds(RefineSettings(steps=args.steps, fine_steps=0, pre_steps=0)))
        runs["one_coarse_plus_fine"].append(seconds(RefineSettings(steps=1, fine_steps=args.fine_steps,
                                                                   pre_steps=0)))
        runs["one_coarse_plus_pre"].append(seconds(RefineSettings(steps=1, fine_steps=0,
                                                                  pre_steps=args.pre_steps)))
        runs["one_coarse"].append(seconds(RefineSettings(steps=1, fine_steps=0, pre_steps=0)))
    median = {k: sorted(v)[args.repeats // 2] for k, v in runs.items()}
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    record = {"benchmark": "refine_step_speed", "date_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "command": "python benchmarks/refine_step_speed.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "git_commit": commit, "cpu_model": cpu_model(), "threads": args.threads, "torch": torch.__version__,
              "cpu_capability": torch.backends.cpu.get_cpu_capability(), "grid": list(fixed.shape[-3:]),
              "load_average_before": load_before, "load_average_after": os.getloadavg(),
              "seconds": {k: [round(s, 3) for s in v] for k, v in runs.items()},
              "coarse_step_seconds": round(median["coarse"] / args.steps, 3),
              "fine_step_seconds": round((median["one_coarse_plus_fine"] - median["one_coarse"]) / args.fine_steps, 3),
              "pre_step_seconds": round((median["one_coarse_plus_pre"] - median["one_coarse"]) / args.pre_steps, 3)}
    out = REPO / "benchmarks" / "results" / f"refine_step_speed_{args.name}.json"
    out.write_text(json.dumps(record, indent=1) + "\n")
    keys = ("coarse_step_seconds", "fine_step_seconds", "pre_step_seconds", "git_commit")
    print(json.dumps({k: record[k] for k in keys}))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
