"""The pair-accuracy report, from the per-(pair, method) result files of one benchmark folder.

Per method: number of pairs (and failures), mean +- sample std (ddof 1) of Dice, HD95, folding,
inverse consistency and seconds (registration, end to end, SM-GICNet's stages); against full SyN
on the pairs both have: the mean Dice difference, per-pair wins (Dice higher than SyN's) and the
paired two-sided Wilcoxon signed-rank test (``scipy.stats.wilcoxon``), and the ratios of
registration seconds (wall clock) and of CPU seconds (summed over those pairs); the same against
SyNQuick. Partial results give a partial report: each statistic says how many pairs it is over.

Writes ``<stem>.json`` (everything, rows included), ``<stem>.csv`` (one row per pair and method)
and ``<stem>.md`` (the tables).
"""

from __future__ import annotations

import csv
import io
import json
import math
from datetime import datetime, timezone
from pathlib import Path

from pair_subjects import VOXEL_FACTOR  # same folder (imported by pair_accuracy.py, which puts it on the path)

REFERENCES = {"syn": "full SyN", "synquick": "SyNQuick", "fireants": "FireANTs"}
"""Methods every other is compared with, pair by pair (summary key ``vs_<name>``), and their titles."""
SUMMARY_COLUMNS = ("dice_mean", "hd95_mm", "percent_folded", "ic_mean_mm", "forward_seconds", "total_seconds",
                   "cpu_seconds", "affine_seconds", "network_seconds", "refine_seconds", "evaluation_seconds",
                   "peak_rss_mib")
CSV_COLUMNS = ("moving", "fixed", "method", "dice_mean", "n_labels", "hd95_mm", "hd95_n_labels", "percent_folded",
               "percent_folded_all", "log_det_std", "det_min", "ic_mean_mm", "ic_p95_mm", "forward_seconds",
               "affine_seconds", "network_seconds", "refine_seconds", "total_seconds", "cpu_seconds",
               "evaluation_seconds", "peak_rss_mib", "peak_cuda_mib", "error")
METHOD_ORDER = ("identity", "affine", "synquick", "syn", "fireants", "fireants-smooth", "smgicnet-net", "smgicnet-affine", "smgicnet-fast",
                "smgicnet", "smgicnet-best")


def load_rows(folder: Path) -> list[dict]:
    """The stored rows of ``folder`` (files ``<moving>_to_<fixed>.<method>.json``), sorted by pair and method."""
    rows = []
    for path in sorted(Path(folder).glob("*_to_*.*.json")):
        try:
            rows.append(json.loads(path.read_text())["row"])
        except (OSError, ValueError, KeyError):
            continue
    order = {m: i for i, m in enumerate(METHOD_ORDER)}
    return sorted(rows, key=lambda r: (r["moving"], r["fixed"], order.get(r["method"], len(order)), r["method"]))


def _finite(values) -> list[float]:
    return [float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]


def _mean_std(values) -> dict:
    values = _finite(values)
    if not values:
        return {"mean": None, "std": None, "n": 0}
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
    return {"mean": mean, "std": std, "n": len(values)}


def compare(rows: list[dict], method: str, reference: str) -> dict | None:
    """``method`` against ``reference`` on the pairs both finished: pairs, wins (higher Dice), mean Dice
    difference, Wilcoxon signed-rank p (two-sided; None under 2 pairs or all differences 0), seconds ratios (CPU:
    over the pairs where both runs recorded CPU seconds, ``cpu_n_pairs``)."""
    from scipy.stats import wilcoxon

    ok = {(r["moving"], r["fixed"], r["method"]): r for r in rows if not r.get("error")}
    pairs = sorted({(m, f) for m, f, x in ok if x == method} & {(m, f) for m, f, x in ok if x == reference})
    if method == reference or not pairs:
        return None
    a = [ok[(*p, method)]["dice_mean"] for p in pairs]
    b = [ok[(*p, reference)]["dice_mean"] for p in pairs]
    diffs = [x - y for x, y in zip(a, b)]
    p_value = None
    if len(pairs) >= 2 and any(diffs):
        p_value = float(wilcoxon(a, b, alternative="two-sided").pvalue)
    t_a, t_b = (sum(ok[(*p, m)]["forward_seconds"] for p in pairs) for m in (method, reference))
    timed = [p for p in pairs if all(ok[(*p, m)].get("cpu_seconds") is not None for m in (method, reference))]
    cpu = [sum(ok[(*p, m)]["cpu_seconds"] for p in timed) for m in (method, reference)]
    cpu_ratio = cpu[0] / cpu[1] if cpu[1] else None
    return {"reference": reference, "n_pairs": len(pairs), "wins": sum(d > 0 for d in diffs),
            "ties": sum(d == 0 for d in diffs), "dice_diff_mean": sum(diffs) / len(diffs),
            "dice_diff_min": min(diffs), "dice_diff_max": max(diffs), "wilcoxon_p": p_value,
            "forward_seconds_ratio": t_a / t_b if t_b else None, "cpu_seconds_ratio": cpu_ratio,
            "cpu_n_pairs": len(timed)}


def summarize(rows: list[dict]) -> dict:
    """Per method: pairs, failures, :data:`SUMMARY_COLUMNS` mean +- std, and the comparisons with SyN and SyNQuick."""
    order = {m: i for i, m in enumerate(METHOD_ORDER)}
    methods = sorted({r["method"] for r in rows}, key=lambda m: (order.get(m, len(order)), m))
    out = {}
    for method in methods:
        mine = [r for r in rows if r["method"] == method]
        ok = [r for r in mine if not r.get("error")]
        stats = {"n_pairs": len(ok), "n_failed": len(mine) - len(ok)}
        stats.update({c: _mean_std(r.get(c) for r in ok) for c in SUMMARY_COLUMNS})
        for reference in REFERENCES:
            stats[f"vs_{reference}"] = compare(rows, method, reference)
        out[method] = stats
    return out


def _fmt(stat: dict, digits: int) -> str:
    return "n/a" if stat["mean"] is None else f"{stat['mean']:.{digits}f} ± {stat['std']:.{digits}f}"


def _load_note(rows: list[dict], info: dict) -> str:
    """What the seconds mean: the 1-minute load average each run started under (``load_avg_1min``)."""
    loads = _finite(r.get("load_avg_1min") for r in rows)
    cores = (info.get("machine") or {}).get("cpu_count", "?")
    if not loads:
        return "Seconds: wall clock; the machine's load was not recorded for these runs (compare within one run)."
    recorded = "" if len(loads) == len(rows) else f", recorded for {len(loads)} of {len(rows)} runs"
    return (f"Seconds: wall clock; 1-minute load average when each run started: {min(loads):.2f}-{max(loads):.2f} "
            f"on {cores} cores{recorded}.")


def markdown(report: dict) -> str:
    """The report's tables (summary; comparisons with SyN and SyNQuick; per-pair Dice) as markdown."""
    info, summary, rows = report["benchmark"], report["summary"], report["rows"]
    if info.get("anatomy") == "colin27":
        maps = "Colin27 subjects (an anatomy not among the training maps)"
    else:
        maps = ("held-out maps only (never seen in training)" if info.get("held_out_maps_only")
                else "maps that include TRAINING maps of the packaged model")
    lines = [f"# Pair accuracy: {report['name']}", "",
             f"{info.get('what', '')}; nominal voxel {info.get('voxel_mm')} mm (each subject x "
             f"{info.get('voxel_factor_range')}, {info.get('voxel_factors')}), {len(info.get('ordered_pairs', []))} ordered pairs "
             f"of {maps}; written {report['date_utc']} from {len(rows)} stored results. {_load_note(rows, info)} "
             "CPU s: registration + writing, user + system.", "",
             "| method | pairs | failed | Dice | HD95 (mm) | folding % | IC mean (mm) | registration s | end-to-end s |"
             " CPU s | affine s | network s | refine s |", "|---" * 13 + "|"]
    columns = (("dice_mean", 3), ("hd95_mm", 2), ("percent_folded", 4), ("ic_mean_mm", 3), ("forward_seconds", 1),
               ("total_seconds", 1), ("cpu_seconds", 1), ("affine_seconds", 1), ("network_seconds", 1),
               ("refine_seconds", 1))
    for method, s in summary.items():
        cells = [method, str(s["n_pairs"]), str(s["n_failed"]), *(_fmt(s[c], d) for c, d in columns)]
        lines.append("| " + " | ".join(cells) + " |")
    for reference, title in REFERENCES.items():
        compared = {m: s[f"vs_{reference}"] for m, s in summary.items() if s.get(f"vs_{reference}")}
        if not compared:
            continue
        lines += ["", f"Against {title}, on the pairs both finished (wins: higher Dice; Wilcoxon: paired, two-sided):",
                  "", "| method | pairs | wins | Dice diff mean [min, max] | Wilcoxon p | registration time ratio |"
                  " CPU time ratio |", "|---" * 7 + "|"]
        for m, c in compared.items():
            p = "n/a" if c["wilcoxon_p"] is None else f"{c['wilcoxon_p']:.3g}"
            ratio, cpu = ("n/a" if c[k] is None else f"{c[k]:.3f}"
                          for k in ("forward_seconds_ratio", "cpu_seconds_ratio"))
            if c["cpu_seconds_ratio"] is not None and c.get("cpu_n_pairs", c["n_pairs"]) < c["n_pairs"]:
                cpu += f" ({c['cpu_n_pairs']} pairs)"
            lines.append(f"| {m} | {c['n_pairs']} | {c['wins']} | {c['dice_diff_mean']:+.3f} "
                         f"[{c['dice_diff_min']:+.3f}, {c['dice_diff_max']:+.3f}] | {p} | {ratio} | {cpu} |")
    methods = list(summary)
    lines += ["", "Dice per pair (moving -> fixed):", "", "| pair | " + " | ".join(methods) + " |",
              "|---" * (len(methods) + 1) + "|"]
    by_pair: dict = {}
    for r in rows:
        by_pair.setdefault(f"{r['moving']} -> {r['fixed']}", {})[r["method"]] = r
    for pair, found in by_pair.items():
        cells = []
        for m in methods:
            r = found.get(m)
            cells.append("" if r is None else "failed" if r.get("error") else f"{r['dice_mean']:.3f}")
        lines.append(f"| {pair} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def csv_text(rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: row.get(k, "") for k in CSV_COLUMNS})
    return out.getvalue()


def write_report(folder: Path, stem: Path) -> dict:
    """Summarize the result files of ``folder`` and its ``benchmark.json`` into ``<stem>.json/.csv/.md``; without
    a readable ``benchmark.json`` a one-line ``ValueError`` naming it, and nothing written."""
    from smgic_pydra.io.atomic import atomic_path, save_json

    folder, stem = Path(folder), Path(stem)
    described = folder / "benchmark.json"
    try:
        info = json.loads(described.read_text())
    except (OSError, ValueError) as exc:  # without it the header would claim no pairs and no voxel size
        raise ValueError(f"{described}: the benchmark's description is missing or unreadable ({type(exc).__name__}); "
                         "run pair_accuracy.py with the benchmark's arguments (stored results are reused)") from None
    info.setdefault("voxel_factor_range", list(VOXEL_FACTOR))  # benchmark.json files written before it was recorded
    info.setdefault("voxel_factors", "isotropic")
    rows = load_rows(folder)
    report = {"name": stem.name, "date_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "benchmark": {k: v for k, v in info.items() if k != "subjects"}, "subjects": info.get("subjects", {}),
              "summary": summarize(rows), "rows": rows}
    save_json(report, stem.with_suffix(".json"))
    for suffix, text in ((".csv", csv_text(rows)), (".md", markdown(report))):
        with atomic_path(stem.with_suffix(suffix)) as tmp:
            tmp.write_text(text)
    return report


def summary_lines(report: dict) -> str:
    """One line per method: pairs and mean +- std of the main columns."""
    out = []
    for method, s in report["summary"].items():
        cells = " ".join(f"{c} {_fmt(s[c], 4)}" for c in ("dice_mean", "hd95_mm", "percent_folded", "forward_seconds"))
        out.append(f"{method:16s} pairs {s['n_pairs']} failed {s['n_failed']} {cells}")
    return "\n".join(out)
