"""The pair-accuracy report, from the per-(pair, method) result files of one benchmark folder.

Per method: number of pairs (and failures), mean +- sample std (ddof 1) of Dice, HD95, folding,
inverse consistency and seconds (registration, end to end, SM-GICNet's stages); against full SyN
on the pairs both have: the mean Dice difference, per-pair wins (Dice higher than SyN's) and the
paired two-sided Wilcoxon signed-rank test (``scipy.stats.wilcoxon``), and the ratios of
registration seconds (wall clock) and of CPU seconds (summed over those pairs); the same against
SyNQuick and FireANTs. The ordered pairs are not independent (each unordered pair of anatomies recurs in
both directions and in every version), so the wins and an exact Wilcoxon test are also given over the
anatomy pairs (:func:`anatomy_units`), each the mean Dice difference of its ordered pairs. Partial results
give a partial report: each statistic says how many pairs it is over. Each row records the code version
(``code_sha256`` of its result key: the method family's sources) it was computed with.

Writes ``<stem>.json`` (everything, rows included), ``<stem>.csv`` (one row per pair and method)
and ``<stem>.md`` (the tables).
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections import Counter
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


def machine_label(info: dict | None) -> str:
    """``"<cpu model>, <n> cores, bf16 <flags | none | unrecorded>"`` of a result's ``machine`` record."""
    info = info or {}
    flags = info.get("cpu_bf16_flags")
    bf16 = "unrecorded" if flags is None else (" ".join(flags) or "none")
    return f"{info.get('cpu_model') or '?'}, {info.get('cpu_count') or '?'} cores, bf16 {bf16}"


def load_rows(folder: Path) -> list[dict]:
    """The stored rows of ``folder`` (files ``<moving>_to_<fixed>.<method>.json``), sorted by pair and method, each
    with its key's ``code_sha256``, its subjects' content SHA-256s ``fixed_sha256``, ``moving_sha256`` (None
    where the file has no key inputs), the ``machine`` that ran it (:func:`machine_label`) and ``machine_known``
    (False where its CPU's bf16 units were not recorded: CPUs of one model name may differ)."""
    rows = []
    for path in sorted(Path(folder).glob("*_to_*.*.json")):
        try:
            data = json.loads(path.read_text())
            key = data.get("key_inputs") or {}
            rows.append({**data["row"], "code_sha256": key.get("code_sha256"),
                         "machine": machine_label(data.get("machine")),
                         "machine_known": (data.get("machine") or {}).get("cpu_bf16_flags") is not None,
                         **{f"{role}_sha256": (key.get(role) or {}).get("sha256") for role in ("fixed", "moving")}})
        except (OSError, ValueError, KeyError):
            continue
    order = {m: i for i, m in enumerate(METHOD_ORDER)}
    return sorted(rows, key=lambda r: (r["moving"], r["fixed"], order.get(r["method"], len(order)), r["method"]))


def check_subjects(rows: list[dict], subjects: dict, where: Path) -> None:
    """A one-line ``ValueError`` if a row was computed on a subject whose content differs from ``subjects`` (id ->
    ``{"content_sha256": ...}``, as ``benchmark.json`` records them): the synthesis of older code gave slightly
    different subjects on different CPU classes (BLAS kernels, numpy's AVX-512 ``power``), and the subjects change
    with the synthesis code; such rows must not share a table."""
    expected = {sid: (spec or {}).get("content_sha256") for sid, spec in subjects.items()}
    stale = [(row, role) for row in rows for role in ("fixed", "moving")
             if row.get(f"{role}_sha256") and expected.get(row[role]) and row[f"{role}_sha256"] != expected[row[role]]]
    if stale:
        row, role = stale[0]
        raise ValueError(f"{where}: {len({(r['moving'], r['fixed'], r['method']) for r, _ in stale})} stored result(s) "
                         f"were computed on other subjects (first: {row['moving']}_to_{row['fixed']}.{row['method']}, "
                         f"{role} {row[role]} {row[role + '_sha256'][:12]} against {expected[row[role]][:12]}), e.g. "
                         "synthesized by other code or, before it was CPU-independent, on another CPU class; run under another --name")


def _finite(values) -> list[float]:
    return [float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]


def _mean_std(values) -> dict:
    values = _finite(values)
    if not values:
        return {"mean": None, "std": None, "n": 0}
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else None
    return {"mean": mean, "std": std, "n": len(values)}


def anatomy_units(subjects: dict) -> dict:
    """Subject id -> its anatomy: the label map it was synthesized from (``label_map`` of its spec); a subject
    without one (Colin27: one anatomy under different deformations) is its own unit."""
    return {sid: spec.get("label_map", sid) for sid, spec in subjects.items()}


def _signed_rank_p(diffs: list[float], **options) -> float | None:
    """Two-sided Wilcoxon signed-rank p of ``diffs``; None under 2 values or all of them 0."""
    from scipy.stats import wilcoxon

    if len(diffs) < 2 or not any(diffs):
        return None
    return float(wilcoxon(diffs, alternative="two-sided", **options).pvalue)


def compare(rows: list[dict], method: str, reference: str, units: dict | None = None) -> dict | None:
    """``method`` against ``reference`` on the pairs both finished: pairs, wins (higher Dice), mean Dice
    difference, Wilcoxon signed-rank p (two-sided; None under 2 pairs or all differences 0), seconds ratios (CPU:
    over the pairs where both runs recorded CPU seconds, ``cpu_n_pairs``, and each such pair's own,
    ``cpu_pair_ratios``, None where the reference took 0 s); and the same test over the anatomy
    pairs (``units``: subject -> anatomy, default each subject its own): the pairs grouped by their unordered pair
    of anatomies, each group's mean difference (``groups``), ``n_groups``, ``group_wins`` and ``group_wilcoxon_p``
    (exact)."""

    ok = {(r["moving"], r["fixed"], r["method"]): r for r in rows if not r.get("error")}
    pairs = sorted({(m, f) for m, f, x in ok if x == method} & {(m, f) for m, f, x in ok if x == reference})
    if method == reference or not pairs:
        return None
    a = [ok[(*p, method)]["dice_mean"] for p in pairs]
    b = [ok[(*p, reference)]["dice_mean"] for p in pairs]
    diffs = [x - y for x, y in zip(a, b)]
    grouped: dict = {}
    for pair, d in zip(pairs, diffs):
        grouped.setdefault(tuple(sorted((units or {}).get(s, s) for s in pair)), []).append(d)
    groups = [{"anatomies": list(g), "n_pairs": len(v), "dice_diff_mean": sum(v) / len(v)}
              for g, v in sorted(grouped.items())]
    means = [g["dice_diff_mean"] for g in groups]
    t_a, t_b = (sum(ok[(*p, m)]["forward_seconds"] for p in pairs) for m in (method, reference))
    timed = [p for p in pairs if all(ok[(*p, m)].get("cpu_seconds") is not None for m in (method, reference))]
    cpu = [sum(ok[(*p, m)]["cpu_seconds"] for p in timed) for m in (method, reference)]
    cpu_ratio = cpu[0] / cpu[1] if cpu[1] else None
    own = [(ok[(*p, method)]["cpu_seconds"], ok[(*p, reference)]["cpu_seconds"]) for p in timed]
    return {"reference": reference, "n_pairs": len(pairs), "wins": sum(d > 0 for d in diffs),
            "ties": sum(d == 0 for d in diffs), "dice_diff_mean": sum(diffs) / len(diffs),
            "dice_diff_min": min(diffs), "dice_diff_max": max(diffs), "wilcoxon_p": _signed_rank_p(diffs),
            "forward_seconds_ratio": t_a / t_b if t_b else None, "cpu_seconds_ratio": cpu_ratio,
            "cpu_n_pairs": len(timed), "cpu_pair_ratios": [x / y if y else None for x, y in own],
            "n_groups": len(groups), "group_wins": sum(m > 0 for m in means),
            "group_wilcoxon_p": _signed_rank_p(means, method="exact"), "groups": groups}


def summarize(rows: list[dict], units: dict | None = None) -> dict:
    """Per method: pairs, failures, code versions (``code_versions``: ``code_sha256`` -> finished rows),
    :data:`SUMMARY_COLUMNS` mean +- std, and the comparisons with each of :data:`REFERENCES` (``units``: as
    :func:`compare`'s)."""
    order = {m: i for i, m in enumerate(METHOD_ORDER)}
    methods = sorted({r["method"] for r in rows}, key=lambda m: (order.get(m, len(order)), m))
    out = {}
    for method in methods:
        mine = [r for r in rows if r["method"] == method]
        ok = [r for r in mine if not r.get("error")]
        versions = Counter(r.get("code_sha256") or "unrecorded" for r in ok).most_common()
        stats = {"n_pairs": len(ok), "n_failed": len(mine) - len(ok), "code_versions": dict(versions)}
        stats.update({c: _mean_std(r.get(c) for r in ok) for c in SUMMARY_COLUMNS})
        for reference in REFERENCES:
            stats[f"vs_{reference}"] = compare(rows, method, reference, units)
        out[method] = stats
    return out


def _fmt(stat: dict, digits: int, n_pairs: int | None = None) -> str:
    """``mean ± std`` ("–" for the undefined std of one value), with the value count where it is not ``n_pairs``."""
    if stat["mean"] is None:
        return "n/a"
    std = "–" if stat["std"] is None else f"{stat['std']:.{digits}f}"
    count = "" if n_pairs is None or stat["n"] == n_pairs else f" ({stat['n']})"
    return f"{stat['mean']:.{digits}f} ± {std}{count}"


def _table_notes(summary: dict, n_pairs: int) -> list[str]:
    """Lines under the summary table: methods over fewer than the table's ``n_pairs`` pairs, and methods whose
    rows come from more than one code version."""
    lines = []
    fewer = [f"{m} ({s['n_pairs']})" for m, s in summary.items() if s["n_pairs"] < n_pairs]
    if fewer:
        lines.append(f"Over fewer than the table's {n_pairs} pairs (each method's means are over its own finished "
                     f"pairs; the comparisons below use the pairs both finished): {', '.join(fewer)}.")
    mixed = [f"{m} ({', '.join(f'{k[:8]}: {v}' for k, v in s['code_versions'].items())})"
             for m, s in summary.items() if len(s["code_versions"]) > 1]
    if mixed:
        lines.append("Rows from more than one code version (the result key's hash of the method's sources: rows "
                     f"each): {'; '.join(mixed)}.")
    return lines


def _group_note(compared: dict, unit: str, grouping: tuple[str, str]) -> str:
    """The line under a comparison table explaining its ``unit`` columns (``grouping``: what a group is, and what
    varies among its ordered pairs)."""
    ns = sorted({c["n_groups"] for c in compared.values()})
    sizes = sorted({g["n_pairs"] for c in compared.values() for g in c["groups"]})
    each = f"{sizes[0]} ordered pair" if sizes[0] == sizes[-1] else f"{sizes[0]}-{sizes[-1]} ordered pair"
    each += "s" if sizes[-1] > 1 else ""
    smallest = ", ".join(f"{2 / 2 ** n:.3g} for n = {n}" for n in ns)
    return (f"{unit.capitalize()}s: the compared pairs grouped by their {grouping[0]} ({each} each: {grouping[1]}), "
            "the independent units; wins and the exact two-sided Wilcoxon signed-rank test over each group's mean "
            f"Dice difference. With n groups the smallest attainable p is 2/2^n ({smallest}).")


def _load_note(rows: list[dict], info: dict) -> str:
    """What the seconds mean: the 1-minute load average each run started under (``load_avg_1min``)."""
    loads = _finite(r.get("load_avg_1min") for r in rows)
    cores = (info.get("machine") or {}).get("cpu_count", "?")
    if not loads:
        return "Seconds: wall clock; the machine's load was not recorded for these runs (compare within one run)."
    recorded = "" if len(loads) == len(rows) else f", recorded for {len(loads)} of {len(rows)} runs"
    return (f"Seconds: wall clock; 1-minute load average when each run started: {min(loads):.2f}-{max(loads):.2f} "
            f"on {cores} cores{recorded}.")


def _machine_note(rows: list[dict]) -> str:
    """``label (n); ...`` of the rows' machines (:func:`machine_label`): CPU seconds compare within one."""
    counts = Counter(r.get("machine") or machine_label(None) for r in rows)
    return "; ".join(f"{m} ({n})" for m, n in sorted(counts.items()))


def markdown(report: dict) -> str:
    """The report's tables (summary; comparisons with SyN and SyNQuick; per-pair Dice) as markdown."""
    info, summary, rows = report["benchmark"], report["summary"], report["rows"]
    if info.get("anatomy") == "colin27":
        maps = "Colin27 subjects (an anatomy not among the training maps)"
        unit, grouping = "subject pair", ("unordered pair of subjects", "either direction; one anatomy")
    else:
        unit, grouping = "map pair", ("unordered pair of label maps", "either direction, any version")
        maps = ("held-out maps only (never seen in training)" if info.get("held_out_maps_only")
                else "maps that include TRAINING maps of the packaged model")
    lines = [f"# Pair accuracy: {report['name']}", "",
             f"{info.get('what', '')}; nominal voxel {info.get('voxel_mm')} mm (each subject x "
             f"{info.get('voxel_factor_range')}, {info.get('voxel_factors')}), {len(info.get('ordered_pairs', []))} ordered pairs "
             f"of {maps}; written {report['date_utc']} from {len(rows)} stored results. {_load_note(rows, info)} "
             f"CPU s: registration + writing, user + system. Machines (results): {_machine_note(rows)}.", "",
             "| method | pairs | failed | Dice | HD95 (mm) | folding % | IC mean (mm) | registration s | end-to-end s |"
             " CPU s | affine s | network s | refine s | code versions |", "|---" * 14 + "|"]
    columns = (("dice_mean", 3), ("hd95_mm", 2), ("percent_folded", 4), ("ic_mean_mm", 3), ("forward_seconds", 1),
               ("total_seconds", 1), ("cpu_seconds", 1), ("affine_seconds", 1), ("network_seconds", 1),
               ("refine_seconds", 1))
    for method, s in summary.items():
        cells = [method, str(s["n_pairs"]), str(s["n_failed"]), *(_fmt(s[c], d, s["n_pairs"]) for c, d in columns),
                 str(len(s["code_versions"]))]
        lines.append("| " + " | ".join(cells) + " |")
    n_pairs = len(info.get("ordered_pairs") or {(r["moving"], r["fixed"]) for r in rows})
    notes = _table_notes(summary, n_pairs)
    lines += ["", *notes] if notes else []
    for reference, title in REFERENCES.items():
        compared = {m: s[f"vs_{reference}"] for m, s in summary.items() if s.get(f"vs_{reference}")}
        if not compared:
            continue
        lines += ["", f"Against {title}, on the pairs both finished (wins: higher Dice; Wilcoxon: paired, two-sided):",
                  "", "| method | pairs | wins | Dice diff mean [min, max] | Wilcoxon p | "
                  f"{unit}s | {unit} wins | {unit} Wilcoxon p | registration time ratio | CPU time ratio |",
                  "|---" * 10 + "|"]
        for m, c in compared.items():
            p, group_p = ("n/a" if c[k] is None else f"{c[k]:.3g}" for k in ("wilcoxon_p", "group_wilcoxon_p"))
            ratio, cpu = ("n/a" if c[k] is None else f"{c[k]:.3f}"
                          for k in ("forward_seconds_ratio", "cpu_seconds_ratio"))
            if c["cpu_seconds_ratio"] is not None and c.get("cpu_n_pairs", c["n_pairs"]) < c["n_pairs"]:
                cpu += f" ({c['cpu_n_pairs']} pairs)"
            lines.append(f"| {m} | {c['n_pairs']} | {c['wins']} | {c['dice_diff_mean']:+.3f} "
                         f"[{c['dice_diff_min']:+.3f}, {c['dice_diff_max']:+.3f}] | {p} | {c['n_groups']} | "
                         f"{c['group_wins']} | {group_p} | {ratio} | {cpu} |")
        lines += ["", _group_note(compared, unit, grouping)]
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


def load_folder(folder: Path) -> tuple[dict, list[dict]]:
    """A benchmark folder's ``benchmark.json`` and its stored rows (:func:`load_rows`), checked to be of its subjects
    (:func:`check_subjects`); without a readable ``benchmark.json`` a one-line ``ValueError`` naming it."""
    folder = Path(folder)
    described = folder / "benchmark.json"
    try:
        info = json.loads(described.read_text())
    except (OSError, ValueError) as exc:  # without it the header would claim no pairs and no voxel size
        raise ValueError(f"{described}: the benchmark's description is missing or unreadable ({type(exc).__name__}); "
                         "run pair_accuracy.py with the benchmark's arguments (stored results are reused)") from None
    info.setdefault("voxel_factor_range", list(VOXEL_FACTOR))  # benchmark.json files written before it was recorded
    info.setdefault("voxel_factors", "isotropic")
    rows = load_rows(folder)
    check_subjects(rows, info.get("subjects", {}), folder)
    return info, rows


def write_report(folder: Path, stem: Path) -> dict:
    """Summarize the result files of ``folder`` and its ``benchmark.json`` into ``<stem>.json/.csv/.md``; without
    a readable ``benchmark.json`` a one-line ``ValueError`` naming it, and nothing written."""
    from smgic_pydra.io.atomic import atomic_path, save_json

    stem = Path(stem)
    info, rows = load_folder(folder)
    report = {"name": stem.name, "date_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "benchmark": {k: v for k, v in info.items() if k != "subjects"}, "subjects": info.get("subjects", {}),
              "summary": summarize(rows, anatomy_units(info.get("subjects", {}))), "rows": rows}
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
