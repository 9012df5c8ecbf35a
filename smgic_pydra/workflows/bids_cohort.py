"""The cohort workflow on a BIDS dataset: plan from the raw data, run a participant level, run a group level.

Participant level: index the dataset (:func:`smgic_pydra.bids.layout.collect_subjects`), build the
pairs whose moving subject is selected, name every output with :mod:`smgic_pydra.bids.derivatives`,
run :func:`run_cohort` and write the warped-image sidecars and ``dataset_description.json``. Each
pair and method also gets a metrics JSON under ``OUTPUT_DIR/reports/pairs/<method>/`` (the only
thing the group level reads; every file is per pair and written atomically, so participant jobs
can share OUTPUT_DIR). Group level: read those files back and write the reports.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from ..bids import derivatives
from ..io.atomic import save_json
from ..io.errors import InputError, display_path
from ..methods import get_method
from ..reports import write_reports
from ..settings import BidsAppSettings
from .cohort import CohortPlan, run_cohort

logger = logging.getLogger("smgic_pydra.bids")


class NoPairsError(InputError):
    """The selected participants are the moving subject of no pair (e.g. the last subject with ``all``)."""


def subject_spec(s) -> dict:
    """The :class:`PrepareSubject` dict of a :class:`SubjectInputs` (the derivatives' preprocessed T1w when present)."""
    t1 = s.preproc_t1w or s.t1w
    return {"subject": s.key, "t1w": str(t1), "mask": str(s.mask) if s.mask else None,
            "labels": str(s.labels) if s.labels else None}


def pair_spec(output_dir, fixed, moving, methods, reportlets: bool = True) -> dict:
    """The pair spec (:mod:`smgic_pydra.tasks.rows`) of one pair; with ``reportlets``, its figures
    (every method but identity, whose "after" is the "before") and its subjects' preparation figures."""
    outputs = {m: {k: str(v) for k, v in derivatives.pair_output_paths(output_dir, moving, fixed, m).as_dict().items()}
               for m in methods}
    spec = {"fixed": fixed.key, "moving": moving.key, "outputs": outputs,
            "metrics": {m: str(derivatives.pair_metrics_path(output_dir, moving.key, fixed.key, m)) for m in methods}}
    if reportlets:
        spec["figures"] = {m: derivatives.pair_figure_paths(output_dir, moving, fixed, m).as_dict()
                           for m in methods if m != "identity"}
        spec["subject_figures"] = {s.key: str(derivatives.subject_figure_path(output_dir, s)) for s in (fixed, moving)}
    return spec


def default_labels_table(subjects) -> str:
    """The label table of the labels' derivatives dataset (``dseg.tsv`` at its root) when it has one, else ``""``."""
    for s in subjects:
        if s.labels is None:
            continue
        for parent in Path(s.labels).parents:
            if (parent / "dataset_description.json").is_file():
                return str(parent / "dseg.tsv") if (parent / "dseg.tsv").is_file() else ""
    return ""


def bids_plan(bids_dir, output_dir, work_dir, methods, *, pairs: str = "all", participant_label=None, session_label=None,
              bids_filters=None, model=None, device: str = "cpu", pairs_per_job: int = 8, labels=None,
              skull_strip: str | None = None, omp_nthreads: int = 1, random_seed: int = 1, reports: bool = False,
              verify_outputs: bool = False, method_options: dict | None = None, reportlets: bool = True):
    """``(CohortPlan, subjects by key)`` for the pairs of ``pairs`` whose moving subject is selected.

    Every subject of the dataset can be a fixed image; ``participant_label`` selects the moving
    ones. Only the subjects of the chosen pairs need to resolve (one T1w, see
    :func:`~smgic_pydra.bids.layout.collect_subjects`) and, unless ``skull_strip`` is given, to have
    a brain mask. reports: also write the reports at the end of the run (the group level does it
    otherwise). verify_outputs: compare the SHA-256 of finished outputs before reusing them (see
    :class:`CohortPlan`). method_options: method -> its options (see :class:`CohortPlan`).
    reportlets: write each pair's and subject's figures under ``OUTPUT_DIR/sub-*/figures``.
    """
    from ..bids.layout import collect_subjects, require_brain_masks
    from ..bids.pairs import make_pairs

    selected = collect_subjects(bids_dir, participant_label, session_label, bids_filters=bids_filters)
    unresolved: dict[str, InputError] = {}
    everyone = collect_subjects(bids_dir, session_label=session_label, bids_filters=bids_filters, errors=unresolved)
    output_dir = Path(output_dir).absolute()
    by_key = {s.key: s for s in everyone}
    moving_keys = {s.key for s in selected}
    keys = sorted(by_key) + [f"sub-{label}" for label in unresolved]  # stand-ins: an error if a chosen pair needs one
    chosen = [(p.fixed, p.moving) for p in make_pairs(pairs, keys) if p.moving in moving_keys]
    if not chosen:
        raise NoPairsError(display_path(bids_dir), f"no pair has a selected subject as its moving image (--pairs {pairs})")
    used = sorted({k for pair in chosen for k in pair})
    for key in used:
        if key not in by_key:
            raise unresolved[key[len("sub-"):]]
    skull_strip = require_brain_masks([by_key[k] for k in used], skull_strip)
    plan = CohortPlan(
        subjects=[subject_spec(by_key[k]) for k in used],
        pairs=[pair_spec(output_dir, by_key[f], by_key[m], methods, reportlets)
               for f, m in chosen],
        methods=list(methods), work_dir=Path(work_dir), output_dir=Path(output_dir) if reports else None,
        model=str(model or ""), device=device, pairs_per_job=pairs_per_job,
        labels_table=str(labels or default_labels_table([by_key[k] for k in used])), skull_strip=skull_strip,
        omp_nthreads=omp_nthreads, random_seed=random_seed, verify_outputs=verify_outputs,
        method_options=dict(method_options or {}),
    )
    return plan, by_key


def output_paths(plan: CohortPlan, output_dir) -> list[Path]:
    """Every file the participant level writes into OUTPUT_DIR for ``plan`` (to check before writing)."""
    out = Path(output_dir)
    paths = [out / "dataset_description.json", out / ".bidsignore", derivatives.report_paths(out).pairs,
             participant_record_path(plan, out)]
    for pair in plan.pairs:
        paths += [Path(p) for files in pair["outputs"].values() for p in files.values()]
        paths += [Path(p) for p in pair["metrics"].values()]
        paths += [Path(p) for files in pair.get("figures", {}).values() for p in files.values()]
        paths += [Path(p) for p in pair.get("subject_figures", {}).values()]
    return paths


def participant_record_path(plan: CohortPlan, output_dir) -> Path:
    return derivatives.participant_records_dir(output_dir) / f"{plan.run_key}.json"


def write_participant_record(plan: CohortPlan, output_dir) -> Path:
    """The pairs this participant run owes to the group level (paths relative to OUTPUT_DIR), written before any work."""
    out = Path(output_dir).absolute()
    pairs = [{"method": m, "fixed": p["fixed"], "moving": p["moving"],
              "sidecar": Path(p["outputs"][m]["sidecar"]).relative_to(out).as_posix(),
              "metrics": Path(p["metrics"][m]).relative_to(out).as_posix()} for p in plan.pairs for m in plan.methods]
    return save_json({"pairs": pairs}, participant_record_path(plan, out))


def write_warped_sidecars(plan: CohortPlan, rows, by_key, bids_dir) -> None:
    """BIDS sidecars of the warped images and labels of every successful pair (atomic)."""
    from ..worldspace import PairOutputPaths

    specs = {(p["fixed"], p["moving"]): p for p in plan.pairs}
    for row in rows:
        if row.get("error"):
            continue
        files = specs[(row["fixed"], row["moving"])]["outputs"][row["method"]]
        paths = PairOutputPaths(**{k: Path(v) for k, v in files.items()})
        if not paths.warped_labels.is_file():
            paths.warped_labels = None
        moving, fixed = by_key[row["moving"]], by_key[row["fixed"]]
        stripped = moving.mask is not None or plan.skull_strip != "none"  # else the whole head was registered
        for path, content in derivatives.warped_sidecars(paths, moving, fixed, bids_dir, row["method"],
                                                         stripped).items():
            save_json(content, path)


def run_bids_plan(plan: CohortPlan, subjects: dict, bids_dir, output_dir, worker="cf", n_procs=None,
                  random_seed: int = 1, show_progress: bool = True):
    """Check that every output stays inside ``output_dir`` and that the model loads, write
    ``dataset_description.json`` (version, model weights hash, seed) and the participant record,
    run the plan, then write the warped images' BIDS sidecars; returns the :class:`CohortResult`."""
    from .. import __version__

    derivatives.check_inside_output(output_dir, output_paths(plan, output_dir))
    # the model is loaded and checked before anything is written, so a bad one locks nothing
    uses_model = any(get_method(m).uses_model for m in plan.methods)
    sha = plan.model_sha256() if uses_model else None
    derivatives.write_dataset_description(output_dir, __version__, sha, random_seed, bids_dir)
    write_participant_record(plan, output_dir)
    result = run_cohort(plan, worker=worker, n_procs=n_procs, show_progress=show_progress)
    write_warped_sidecars(plan, result.rows, subjects, bids_dir)
    return result


def run_participant(settings: BidsAppSettings, worker="cf") -> list[str]:
    """The participant level of ``smgic-bids`` with ``worker`` (a name or a pydra worker); returns the failed pairs."""
    s = settings
    bids_dir, output_dir = s.bids_dir, s.output_dir
    if s.labels is not None:  # a bad table is refused before any work
        from ..metrics.labels import load_label_table

        load_label_table(s.labels)
    if not s.skip_bids_validation:
        from ..bids.validation import check_dataset

        check_dataset(bids_dir)
    try:
        plan, subjects = bids_plan(bids_dir, output_dir, s.work_dir, s.methods, pairs=s.pairs,
                                   participant_label=s.participant_label, session_label=s.session_label,
                                   bids_filters=s.bids_filter_file, model=s.model, device=s.device,
                                   pairs_per_job=s.pairs_per_job, labels=s.labels, skull_strip=s.skull_strip,
                                   omp_nthreads=s.omp_nthreads, random_seed=s.random_seed,
                                   verify_outputs=s.verify_outputs, method_options=s.method_options,
                                   reportlets=s.reportlets)
    except NoPairsError as err:  # one job per participant: a participant without pairs has nothing to do
        print(f"smgic-bids: nothing to do: {err.problem}")
        return []
    result = run_bids_plan(plan, subjects, bids_dir, output_dir, worker, s.nprocs, s.random_seed, s.progress)
    n_ok = sum(not r["error"] for r in result.rows)
    print(f"smgic-bids: {n_ok}/{len(result.rows)} registrations done; outputs in {output_dir}; "
          f"status: {result.status_file}")
    return _failed(result.rows)


def _failed(rows) -> list[str]:
    from ..tasks.rows import failed_lines

    return failed_lines(rows)


def _expected_pairs(output_dir) -> dict[tuple, dict]:
    """``(method, fixed, moving) -> record`` over every participant run's record in OUTPUT_DIR."""
    folder = derivatives.participant_records_dir(output_dir)
    files = sorted(folder.glob("*.json"))
    if not files:
        raise InputError(display_path(folder), "no participant run records: run the participant level first")
    expected = {}
    for path in files:
        try:
            pairs = json.loads(path.read_text())["pairs"]
            expected.update({(p["method"], p["fixed"], p["moving"]): p for p in pairs})
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InputError(display_path(path), f"not a participant run record ({type(exc).__name__}: {exc})") from None
    return expected


def _pair_result(output_dir, record: dict, verify_outputs: bool) -> tuple[dict, dict]:
    """``(row, dice per label)`` of one expected pair; a row with an ``error`` naming the file when its
    outputs or metrics are missing, damaged or invalid."""
    from ..tasks.metrics_io import METRIC_KEYS
    from ..tasks.rows import outputs_problem, read_sidecar

    out = Path(output_dir).absolute()
    row = {k: record[k] for k in ("method", "fixed", "moving")}
    sidecar, metrics = out / record["sidecar"], out / record["metrics"]
    try:
        data = json.loads(metrics.read_text())
    except FileNotFoundError:
        return row | {"error": f"{metrics}: metrics file missing"}, {}
    except (OSError, ValueError) as exc:
        return row | {"error": f"{metrics}: not readable JSON ({exc})"}, {}
    missing = [k for k in METRIC_KEYS if k not in data] if isinstance(data, dict) else list(METRIC_KEYS)
    if missing or any(data[k] != row[k] for k in row):
        return row | {"error": f"{metrics}: not the metrics of this pair (missing {missing or 'nothing'})"}, {}
    if data.get("error"):  # the pair failed in the participant run
        return row | {k: data[k] for k in METRIC_KEYS}, {}
    meta = read_sidecar({"sidecar": sidecar})
    problem = (f"{sidecar}: sidecar missing or unreadable" if meta is None
               else outputs_problem({"sidecar": sidecar}, meta, verify_outputs))
    if problem:
        return row | {"error": problem}, {}
    if metrics.stat().st_mtime_ns < sidecar.stat().st_mtime_ns:
        return row | {"error": f"{metrics}: older than the pair's outputs; run the participant level again"}, {}
    per_label = {k: (v, (data.get("label_names") or {}).get(k, str(k))) for k, v in (data.get("dice_per_label") or {}).items()}
    return row | {k: data[k] for k in METRIC_KEYS}, per_label


def read_pair_metrics(output_dir, verify_outputs: bool = False) -> tuple[list[dict], list[dict]]:
    """Rows and per-label Dice rows of every pair the participant runs of OUTPUT_DIR owe (group level).

    A pair whose metrics file is missing or invalid, or whose outputs no longer match their sidecar
    records (size always, SHA-256 when modified or with ``verify_outputs``), is a failed row naming the file.
    """
    rows, label_rows = [], []
    for (method, fixed, moving), record in sorted(_expected_pairs(output_dir).items()):
        row, per_label = _pair_result(output_dir, record, verify_outputs)
        rows.append(row)
        label_rows += [{"method": method, "fixed": fixed, "moving": moving, "label": int(k), "name": name,
                        "dice": float(v)} for k, (v, name) in per_label.items()]
    return rows, label_rows


def run_group(output_dir: Path, verify_outputs: bool = False) -> list[str]:
    """The group level: reports from the derivatives only; returns the failed pairs."""
    if not (Path(output_dir) / "dataset_description.json").is_file():
        raise InputError(display_path(output_dir), "not an smgic-pydra output folder (no dataset_description.json): "
                         "run the participant level first")
    derivatives.check_inside_output(output_dir, vars(derivatives.report_paths(output_dir)).values())
    rows, label_rows = read_pair_metrics(output_dir, verify_outputs)
    paths = write_reports(rows, label_rows, output_dir)
    print(f"smgic-bids: {len(rows)} pair results; reports: " + ", ".join(str(p) for p in paths.values()))
    return _failed(rows)
