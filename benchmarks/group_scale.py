"""The group level at cohort scale: reading the tile files of 1,000 subjects and writing the reports.

Synthesizes (seeded) the tile result files that the cohort driver writes
(:func:`smgic_pydra.reports.tiles.write_tile_tables`): ``--subjects`` subjects (default 1,000),
every unordered pair (499,500), one method, ``--labels`` labels per pair (default 30: about 15 M
label rows), in tiles of ``--block`` subjects a side (default 50: 210 tiles). Pair Dice has a
two-group structure (for the clustered matrix); 0.1 % of the pairs fail (error text, no labels).

It also writes the participant record that owes those tiles. Then, in a fresh process, times what
``smgic-bids ... group`` does with them: ``read_group_tables`` (the records, the owed pairs, every
tile's pairs table, missing pairs as failed rows), then ``write_reports(frame, label tables,
html=True)`` (all report tables, the per-label tables streamed one tile at a time and filtered to
the successful pairs, the statistics, and ``index.html``). Peak memory is
``resource.getrusage(RUSAGE_SELF).ru_maxrss`` of that process (Linux: peak resident set size,
imports included; the resident size after the imports is recorded too). Synthesis runs in its own
process and is timed apart.

    OMP_NUM_THREADS=1 python benchmarks/group_scale.py --note "machine otherwise idle"

Writes ``benchmarks/results/group_scale.json``. Run it alone: it is a timing benchmark.
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

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
sys.path.insert(0, str(REPO / "benchmarks"))
from registration_speed import cpu_model, max_rss_mb  # noqa: E402

METHOD = "smgicnet"
FAILED_FRACTION = 0.001


def _dictionary(values, dictionary):
    import pyarrow as pa

    return pa.DictionaryArray.from_arrays(pa.array(values, pa.int32()), pa.array(dictionary, pa.string()))


def tile_tables(rng, fixed, moving, keys, n_labels):
    """``(pairs, labels)`` Arrow tables of one tile: subject indices ``fixed[i]``, ``moving[i]``."""
    import numpy as np
    import pyarrow as pa

    from smgic_pydra.reports.tiles import TILE_PAIR_COLUMNS

    n = len(fixed)
    group = (np.arange(len(keys)) % 2)
    failed = rng.random(n) < FAILED_FRACTION
    dice = 0.70 + 0.08 * (group[fixed] == group[moving]) + rng.normal(0, 0.02, n)
    metrics = {"dice_mean": dice, "folding_percent": rng.gamma(1.0, 0.05, n), "log_jacobian_std": rng.uniform(0.1, 0.3, n),
               "inverse_consistency_mm": rng.gamma(2.0, 0.1, n), "seconds": rng.uniform(0.5, 0.8, n),
               "forward_seconds": rng.uniform(0.05, 0.1, n)}
    for values in metrics.values():
        values[failed] = np.nan
    subjects = [keys[i] for i in sorted(set(fixed) | set(moving))]
    index = {k: i for i, k in enumerate(subjects)}
    f_codes = np.array([index[keys[i]] for i in fixed])
    m_codes = np.array([index[keys[i]] for i in moving])
    columns = {"method": _dictionary(np.zeros(n), [METHOD]), "fixed": _dictionary(f_codes, subjects),
               "moving": _dictionary(m_codes, subjects), **{k: pa.array(v) for k, v in metrics.items()},
               "error": _dictionary(failed.astype(int), ["", "RuntimeError: synthetic failure"]),
               "content_sha256": _dictionary(np.zeros(n), [""]), "resumed": pa.array(np.zeros(n, bool))}
    pairs = pa.table([columns[c] for c in TILE_PAIR_COLUMNS], names=TILE_PAIR_COLUMNS)
    ok = np.flatnonzero(~failed)
    rows = np.repeat(ok, n_labels)
    label = np.tile(np.arange(1, n_labels + 1), len(ok))
    label_dice = np.clip(dice[rows] + rng.normal(0, 0.05, len(rows)) - 0.004 * label, 0, 1)
    labels = pa.table({"method": _dictionary(np.zeros(len(rows)), [METHOD]),
                       "fixed": _dictionary(f_codes[rows], subjects), "moving": _dictionary(m_codes[rows], subjects),
                       "label": pa.array(label.astype(np.int32)),
                       "name": _dictionary(label - 1, [f"structure-{k:03d}" for k in range(1, n_labels + 1)]),
                       "dice": pa.array(label_dice)})
    return pairs, labels


def synthesize(out: Path, n_subjects: int, n_labels: int, block: int, seed: int) -> dict:
    """Write the tile files of every unordered pair into ``out``; returns counts."""
    import numpy as np

    from smgic_pydra.bids.derivatives import participant_records_dir
    from smgic_pydra.io.atomic import save_json
    from smgic_pydra.reports.tiles import tile_files, write_tile_tables

    rng = np.random.default_rng(seed)
    keys = [f"sub{i:04d}" for i in range(n_subjects)]
    starts = range(0, n_subjects, block)
    tiles = pairs = label_rows = 0
    record = []
    for a in starts:
        for b in starts:
            if b < a:
                continue
            f, m = np.meshgrid(np.arange(a, min(a + block, n_subjects)), np.arange(b, min(b + block, n_subjects)),
                               indexing="ij")
            keep = f < m
            table, labels = tile_tables(rng, f[keep], m[keep], keys, n_labels)
            tile_id = f"tile-{a:04d}-{b:04d}"
            write_tile_tables(table, labels, tile_files(out, METHOD, tile_id))
            record.append({"id": tile_id, "fixed": keys[a:a + block], "moving": keys[b:b + block],
                           "pairs": np.stack([f[keep] - a, m[keep] - b], axis=1).tolist()})
            tiles, pairs, label_rows = tiles + 1, pairs + table.num_rows, label_rows + labels.num_rows
    # what a participant run leaves for the group level: its record of the tiles it owes
    save_json({"run_key": "benchmark", "methods": [METHOD], "outputs": "metrics", "tiles": record},
              participant_records_dir(out) / "benchmark.json")
    save_json({"Name": "group_scale", "BIDSVersion": "1.10.0", "DatasetType": "derivative"},
              out / "dataset_description.json")
    return {"tiles": tiles, "pairs": pairs, "label_rows": label_rows}


def measure(out: Path) -> dict:
    """Time the group level on the tile files in ``out`` (this process: fresh): what ``smgic-bids ... group``
    does, :func:`read_group_tables` (participant records -> owed pairs -> tile tables, checked) then
    :func:`write_reports`."""
    rss_imports = max_rss_mb()
    from smgic_pydra.reports.tiles import tiles_dir
    from smgic_pydra.reports.write import write_reports
    from smgic_pydra.workflows.bids_cohort import read_group_tables

    rss_imports = max(rss_imports, max_rss_mb())
    pair_files = sorted(tiles_dir(out).glob("*/*_pairs.parquet"))
    label_files = sorted(tiles_dir(out).glob("*/*_labels.parquet"))
    start = time.perf_counter()
    frame, label_tables = read_group_tables(out)
    read_seconds = time.perf_counter() - start
    rss_after_read = max_rss_mb()
    start = time.perf_counter()
    paths = write_reports(frame, label_tables, out, html=True)
    write_seconds = time.perf_counter() - start
    return {"read_group_tables_seconds": round(read_seconds, 2), "write_reports_seconds": round(write_seconds, 2),
            "total_seconds": round(read_seconds + write_seconds, 2), "pair_rows_read": len(frame),
            "failed_rows": int((frame["error"] != "").sum()),
            "peak_rss_mib": round(max_rss_mb(), 1), "rss_after_imports_mib": round(rss_imports, 1),
            "peak_rss_after_read_pairs_mib": round(rss_after_read, 1),
            "files_written": {role: {"name": Path(p).name, "bytes": Path(p).stat().st_size} for role, p in paths.items()},
            "tile_files_bytes": sum(p.stat().st_size for p in pair_files + label_files)}


def _child(step: str, out: Path, args) -> dict:
    """Run one step in a fresh Python process; returns its JSON result and wall seconds."""
    start = time.perf_counter()
    result = subprocess.run([sys.executable, __file__, "--step", step, "--out", str(out), "--subjects", str(args.subjects),
                             "--labels", str(args.labels), "--block", str(args.block), "--seed", str(args.seed)],
                            check=True, capture_output=True, text=True)
    return {**json.loads(result.stdout.splitlines()[-1]), "process_seconds": round(time.perf_counter() - start, 2)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subjects", type=int, default=1000)
    parser.add_argument("--labels", type=int, default=30)
    parser.add_argument("--block", type=int, default=50, help="subjects per tile side (default: 50)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--note", default="", help="recorded with the results (e.g. how loaded the machine was)")
    parser.add_argument("--step", choices=["synthesize", "measure"], help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--results", type=Path, default=RESULTS / "group_scale.json")
    args = parser.parse_args(argv)
    if args.step == "synthesize":
        start = time.perf_counter()
        counts = synthesize(args.out, args.subjects, args.labels, args.block, args.seed)
        print(json.dumps({**counts, "seconds": round(time.perf_counter() - start, 2), "peak_rss_mib": round(max_rss_mb(), 1)}))
        return 0
    if args.step == "measure":
        print(json.dumps(measure(args.out)))
        return 0

    import pyarrow

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="group_scale_") as tmp:
        synth = _child("synthesize", Path(tmp), args)
        group = _child("measure", Path(tmp), args)
    result = {
        "what": "group level on tile files: read_group_tables + write_reports(html=True), one method",
        "subjects": args.subjects, "labels_per_pair": args.labels, "block": args.block, "seed": args.seed,
        "synthesize": synth, "group": group,
        "peak_memory_method": "resource.getrusage(RUSAGE_SELF).ru_maxrss of the measuring process (imports included)",
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
                    "load_average_1min_before": round(load_before[0], 2),
                    "load_average_1min_after": round(os.getloadavg()[0], 2), "python": platform.python_version(),
                    "pyarrow": pyarrow.__version__},
        "note": args.note,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
