"""The cohort workflow on a BIDS dataset: plan from the raw data, run a participant level, run a group level.

Participant level: index the dataset (:func:`smgic_pydra.bids.layout.collect_subjects`), build the
pairs whose moving subject is selected, estimate the bytes the run writes (refused when they do
not fit), record the tiles it owes, run :func:`run_cohort` and write the warped-image sidecars and
``dataset_description.json``. Each tile and method writes its rows as Parquet under
``OUTPUT_DIR/reports/tiles/<method>/`` (the only thing the group level reads besides the sidecars;
every file is written atomically and named by its run, so participant jobs can share OUTPUT_DIR).
Group level: read those tables back and write the reports.
"""

from __future__ import annotations

import json
import logging
from contextlib import contextmanager
from pathlib import Path

from ..bids import derivatives
from ..io.atomic import save_json
from ..io.errors import InputError, display_path
from ..methods import get_method
from ..output_policy import output_policy
from ..reports import write_reports
from ..reports.tiles import tile_files, tiles_dir
from ..reports.rows import failed_lines
from ..settings import LOGS_DIR, BidsAppSettings, write_run_config
from .cohort import CohortPlan, run_cohort
from .submit import CohortRunError

logger = logging.getLogger("smgic_pydra.bids")


class NoPairsError(InputError):
    """The selected participants are the moving subject of no pair (e.g. the last subject with ``all``)."""


def subject_spec(s) -> dict:
    """The :class:`PrepareSubject` dict of a :class:`SubjectInputs` (the derivatives' preprocessed T1w when present)."""
    t1 = s.preproc_t1w or s.t1w
    return {"subject": s.key, "t1w": str(t1), "mask": str(s.mask) if s.mask else None,
            "labels": str(s.labels) if s.labels else None}


def default_labels_table(subjects) -> str:
    """The label table of the labels' derivatives dataset (``dseg.tsv`` at its root) when it has one, else ``""``."""
    for s in subjects:
        if s.labels is None:
            continue
        for parent in Path(s.labels).parents:
            if (parent / "dataset_description.json").is_file():
                return str(parent / "dseg.tsv") if (parent / "dseg.tsv").is_file() else ""
    return ""


def bids_plan(bids_dir, output_dir, work_dir, methods, *, reports: bool = False, **options):
    """:func:`settings_plan` in keyword form (for scripts): ``options`` are :class:`BidsAppSettings` fields
    (e.g. ``pairs``, ``model``, ``quality``, ``pairs_per_job``, ``outputs``, ``reportlets``), their defaults the
    settings'."""
    settings = BidsAppSettings(bids_dir=Path(bids_dir), output_dir=Path(output_dir), work_dir=Path(work_dir),
                               analysis_level="participant", methods=list(methods), **options)
    return settings_plan(settings, reports=reports)


def settings_plan(settings: BidsAppSettings, reports: bool = False):
    """``(CohortPlan, subjects by key)`` for the pairs of ``settings.pairs`` whose moving subject is selected.

    Every subject of the dataset can be a fixed image; ``participant_label`` selects the moving
    ones. Only the subjects of the chosen pairs need to resolve (one T1w, see
    :func:`~smgic_pydra.bids.layout.collect_subjects`) and, unless ``skull_strip`` is given, to have
    a brain mask. reports: also write the reports at the end of the run (the group level does it
    otherwise). The other settings go to :class:`CohortPlan` as they are (``reportlets`` only where
    the output policy draws figures; ``labels`` defaults to the dataset's table,
    :func:`default_labels_table`).
    """
    from ..bids.layout import collect_subjects, require_brain_masks
    from ..bids.pairs import make_pairs

    bids_dir, pairs, filters = settings.bids_dir, settings.pairs, settings.bids_filter_file
    selected = collect_subjects(bids_dir, settings.participant_label, settings.session_label, bids_filters=filters)
    unresolved: dict[str, InputError] = {}
    everyone = collect_subjects(bids_dir, session_label=settings.session_label, bids_filters=filters,
                                errors=unresolved)
    output_dir = Path(settings.output_dir).absolute()
    by_key = {sub.key: sub for sub in everyone}
    moving_keys = {sub.key for sub in selected}
    keys = sorted(by_key) + [f"sub-{label}" for label in unresolved]  # stand-ins: an error if a chosen pair needs one
    chosen = [(p.fixed, p.moving) for p in make_pairs(pairs, keys) if p.moving in moving_keys]
    if not chosen:
        raise NoPairsError(display_path(bids_dir), f"no pair has a selected subject as its moving image (--pairs {pairs})")
    used = sorted({k for pair in chosen for k in pair})
    for key in used:
        if key not in by_key:
            raise unresolved[key[len("sub-"):]]
    skull_strip = require_brain_masks([by_key[k] for k in used], settings.skull_strip)
    plan = CohortPlan(
        subjects=[subject_spec(by_key[k]) for k in used], pairs=chosen,
        methods=list(settings.methods), work_dir=Path(settings.work_dir), output_dir=output_dir, reports=reports,
        outputs=settings.outputs, reportlets=settings.reportlets and output_policy(settings.outputs).figures,
        model=str(settings.model or ""), device=settings.device, pairs_per_job=settings.pairs_per_job,
        labels_table=str(settings.labels or default_labels_table([by_key[k] for k in used])), skull_strip=skull_strip,
        omp_nthreads=settings.omp_nthreads, random_seed=settings.random_seed, verify_outputs=settings.verify_outputs,
        method_options=dict(settings.method_options),
    )
    return plan, by_key


def output_folders(plan: CohortPlan, output_dir) -> list[Path]:
    """The folders and files the participant level writes into OUTPUT_DIR (to check before writing):
    O(subjects), whatever the number of pairs."""
    out = Path(output_dir)
    paths = [out / "dataset_description.json", out / ".bidsignore", derivatives.report_paths(out).pairs,
             participant_record_path(plan, out), tiles_dir(out), out / LOGS_DIR]
    policy = output_policy(plan.outputs)
    if policy.writes_files:  # compact files of an unordered pair go to the first subject's folder, fixed or not
        owners = sorted({m for _, m in plan.pairs} | ({k for pair in plan.pairs for k in pair} if policy.compact else set()))
        paths += [derivatives.subject_anat_dir(out, key) for key in owners]
        if plan.reportlets:
            paths += [derivatives.subject_figures_dir(out, key) for key in sorted({k for pair in plan.pairs for k in pair})]
    return paths


def participant_record_path(plan: CohortPlan, output_dir) -> Path:
    return derivatives.participant_records_dir(output_dir) / f"{plan.run_key}.json"


def result_settings(plan: CohortPlan) -> dict[str, dict]:
    """Method -> what its rows depend on besides the pairs' input files: its settings
    (:meth:`CohortPlan.method_settings`) and the label table's SHA-256 (``""``: the packaged one)."""
    from ..io.hashing import sha256_file

    table = sha256_file(plan.labels_table) if plan.labels_table else ""
    return {m: plan.method_settings(m) | {"labels_table_sha256": table} for m in plan.methods}


def write_participant_record(plan: CohortPlan, output_dir) -> Path:
    """The tiles this participant run owes to the group level, written before any work: the methods, their
    :func:`result_settings`, the output policy and each tile's subjects and pairs (so the group level can name
    the pairs of a missing tile)."""
    out = Path(output_dir).absolute()
    tiles = [{"id": t["id"], "fixed": t["fixed"], "moving": t["moving"], "pairs": t["pairs"].tolist()}
             for t in plan.tiles()]
    return save_json({"run_key": plan.run_key, "methods": plan.methods, "settings": result_settings(plan),
                      "outputs": plan.outputs, "tiles": tiles}, participant_record_path(plan, out))


def write_warped_sidecars(plan: CohortPlan, rows, by_key, bids_dir) -> None:
    """BIDS sidecars of the warped images and labels of every successful pair that wrote them (atomic)."""
    if "warped" not in output_policy(plan.outputs).roles:
        return
    for row in rows:
        if row.get("error"):
            continue
        paths = derivatives.pair_output_paths(plan.output_dir, row["moving"], row["fixed"], row["method"])
        if not paths.warped.is_file():  # a method that writes no outputs (identity)
            continue
        if not paths.warped_labels.is_file():
            paths.warped_labels = None
        moving, fixed = by_key[row["moving"]], by_key[row["fixed"]]
        stripped = moving.mask is not None or plan.skull_strip != "none"  # else the whole head was registered
        for path, content in derivatives.warped_sidecars(paths, moving, fixed, bids_dir, row["method"],
                                                         stripped).items():
            save_json(content, path)


def run_bids_plan(plan: CohortPlan, subjects: dict, bids_dir, output_dir, worker="cf", n_procs=None,
                  random_seed: int = 1, show_progress: bool = True, settings: BidsAppSettings | None = None):
    """Check that every output stays inside ``output_dir`` and that the model loads, write
    ``dataset_description.json`` (version, model weights hash, seed), the run's ``settings`` when given
    (:func:`~smgic_pydra.settings.write_run_config`) and the participant record, run the plan, then write
    the warped images' BIDS sidecars; returns the :class:`CohortResult`."""
    from .. import __version__

    derivatives.check_inside_output(output_dir, output_folders(plan, output_dir))
    # the model is loaded and checked before anything is written, so a bad one locks nothing
    uses_model = any(get_method(m).uses_model for m in plan.methods)
    sha = plan.model_sha256() if uses_model else None
    with subject_locks(plan, output_dir):
        derivatives.write_dataset_description(output_dir, __version__, sha, random_seed, bids_dir)
        if settings is not None:
            write_run_config(settings)
        write_participant_record(plan, output_dir)
        result = run_cohort(plan, worker=worker, n_procs=n_procs, show_progress=show_progress)
        write_warped_sidecars(plan, result.rows, subjects, bids_dir)
    return result


@contextmanager
def subject_locks(plan: CohortPlan, output_dir):
    """Hold ``OUTPUT_DIR/reports/locks/<subject>.lock`` of every moving subject of the plan for the run, so two
    participant runs into one OUTPUT_DIR, whatever their work folders, never compute the same pairs at
    once (a pair belongs to its moving subject's run); runs of other participants go on in parallel.
    A subject another run holds is :class:`CohortRunError` (exit 1), naming it and the holder."""
    from ..io.locks import LockedError, held_locks

    folder = derivatives.locks_dir(output_dir)
    try:
        with held_locks([folder / f"{key}.lock" for key in {m for _, m in plan.pairs}]):
            yield
    except LockedError as err:
        raise CohortRunError(f"{err.path.stem}: another participant run ({err.holder or 'another process'}) is "
                             f"registering it into {display_path(output_dir)}; wait for it to finish or select "
                             "other participants") from None


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
        plan, subjects = settings_plan(s)
    except NoPairsError as err:  # one job per participant: a participant without pairs has nothing to do
        print(f"smgic-bids: nothing to do: {err.problem}")
        return []
    check_space(plan, output_dir, check_headers(plan))
    if s.plan_only:
        return []
    check_inputs(plan)
    result = run_bids_plan(plan, subjects, bids_dir, output_dir, worker, s.nprocs, s.random_seed, s.progress, s)
    n_pairs = len(plan.pairs) * len(plan.methods)
    print(f"smgic-bids: {n_pairs - len(result.failed)}/{n_pairs} registrations done; outputs in {output_dir}; "
          f"status: {result.status_file}")
    return result.failed


def _each_subject(subjects: list[dict], check) -> list:
    """``check(t1w, mask, labels)`` of every subject spec, in order; one line per bad subject (:class:`InputErrors`)."""
    from ..io.errors import InputErrors

    results, errors = [], []
    for s in subjects:
        try:
            results.append(check(s["t1w"], s.get("mask"), s.get("labels")))
        except InputError as err:
            errors.append(err)
    if errors:
        raise InputErrors(errors)
    return results


def check_headers(plan: CohortPlan) -> dict[str, tuple[int, float]]:
    """Every input image header and grid of the plan's subjects valid, reading no voxel
    (:func:`~smgic_pydra.preparation.prepare.check_input_headers`; also ``--plan-only``), one line per bad
    subject (:class:`InputErrors`); returns subject -> (voxels, finest voxel mm) of its T1w, from the same
    header read, for the space and time estimates (:func:`check_space`)."""
    from ..preparation.prepare import check_input_headers
    from .plan_summary import header_grid

    images = _each_subject(plan.subjects, check_input_headers)
    return {s["subject"]: header_grid(img) for s, img in zip(plan.subjects, images)}


def check_inputs(plan: CohortPlan) -> None:
    """Every voxel of the plan's input images valid before anything is written
    (:func:`~smgic_pydra.preparation.prepare.load_inputs`), one line per bad subject (:class:`InputErrors`),
    except for subjects whose prepared folder matches their inputs' SHA-256 (they passed the same checks
    when prepared), then the label table (:func:`check_label_table`)."""
    from ..preparation.prepare import load_inputs
    from .cohort import DONE, stamp_subjects

    _each_subject([s for s in stamp_subjects(plan, plan.config_json())[0] if s["state"] != DONE], load_inputs)
    check_label_table(plan)


def check_label_table(plan: CohortPlan) -> None:
    """The plan's label table (``--labels`` or the dataset's ``dseg.tsv``) shares at least one label with the
    first subject that has labels, else a one-line :class:`InputError` naming the table, before any work."""
    import numpy as np

    from ..io.images import load_image
    from ..metrics.labels import load_label_table

    first = next((s for s in plan.subjects if s.get("labels")), None)
    if not plan.labels_table or first is None:
        return
    table = load_label_table(plan.labels_table)
    present = np.unique(np.asarray(load_image(first["labels"], "labels").dataobj))
    if not set(table) & set(int(v) for v in present):
        raise InputError(display_path(plan.labels_table), f"no label of the table occurs in the labels of "
                         f"{first['subject']} ({display_path(first['labels'])}): is it the table of these labels?")


def check_space(plan: CohortPlan, output_dir, grids: dict[str, tuple[int, float]] | None = None):
    """Print the plan (:mod:`.plan_summary`: jobs, pairs, bytes, time guide) and refuse, in one line naming
    ``--outputs metrics``, a run whose estimated bytes exceed the free space of OUTPUT_DIR; ``grids``:
    subject -> (T1w voxels, finest voxel mm) (:func:`check_headers`; default: read from the headers)."""
    from .plan_summary import summarize

    summary = summarize(plan, grids)
    for line in summary.lines(plan.outputs):
        print(f"smgic-bids: {line}")
    if summary.bytes > summary.free_bytes:
        gib = 1024 ** 3
        raise InputError(display_path(output_dir), f"the run needs about {summary.bytes / gib:.3g} GiB, "
                         f"{summary.free_bytes / gib:.3g} GiB are free: use --outputs metrics (no per-pair files) "
                         "or --outputs warps, or free space")
    return summary


def _records(output_dir) -> list[dict]:
    """Every participant run's record in OUTPUT_DIR, oldest first (a later run's pair replaces an earlier one's);
    ``settings`` None for a record written before they were recorded."""
    folder = derivatives.participant_records_dir(output_dir)
    files = sorted(folder.glob("*.json"), key=lambda p: (p.stat().st_mtime_ns, p.name))
    if not files:
        raise InputError(display_path(folder), "no participant run records: run the participant level first")
    records = []
    for path in files:
        try:
            record = json.loads(path.read_text())
            records.append({"run_key": record["run_key"], "outputs": record["outputs"],
                            "methods": list(record["methods"]), "settings": record.get("settings"),
                            "tiles": [{k: t[k] for k in ("id", "fixed", "moving", "pairs")} for t in record["tiles"]]})
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InputError(display_path(path), f"not a participant run record ({type(exc).__name__}: {exc})") from None
    return records


def _flat(settings: dict, prefix: str = "") -> dict:
    """Nested settings as ``{"a.b": value}``."""
    flat = {}
    for key, value in settings.items():
        flat |= _flat(value, f"{prefix}{key}.") if isinstance(value, dict) else {prefix + key: value}
    return flat


def check_same_settings(output_dir, owed, records) -> None:
    """Refuse (one line, :class:`InputError`) to report together the pairs of one method from participant runs
    whose :func:`result_settings` differ (``owed``: :func:`_owed_pairs`; runs recorded without settings are not
    compared), naming the runs and the first differing setting."""
    settings = {r["run_key"]: r["settings"] for r in records if r["settings"] is not None}
    for method, runs in owed.groupby("method", sort=False)["run"].unique().items():
        recorded = [(run, _flat(settings[run][method])) for run in runs if run in settings]
        for run, values in recorded[1:]:
            first, reference = recorded[0]
            key = next((k for k in sorted(reference.keys() | values.keys()) if values.get(k) != reference.get(k)), None)
            if key is not None:
                raise InputError(display_path(derivatives.participant_records_dir(output_dir)), (
                    f"participant runs {first} and {run} ran {method} with different settings ({key}: "
                    f"{reference.get(key)!r} vs {values.get(key)!r}); run one of them again with the other's "
                    "settings, or write them into separate output folders"))


def _owed_pairs(output_dir, records):
    """DataFrame of every pair the records owe (method, fixed, moving, outputs, run, pairs_file, labels_file), the
    latest record's entry of each pair."""
    import numpy as np
    import pandas as pd

    parts = []
    for record in records:
        for tile in record["tiles"]:
            index = np.asarray(tile["pairs"], dtype=np.int64).reshape(-1, 2)
            fixed, moving = np.asarray(tile["fixed"], dtype=object)[index[:, 0]], np.asarray(tile["moving"], dtype=object)[index[:, 1]]
            for method in record["methods"]:
                files = tile_files(output_dir, method, tile["id"])
                parts.append(pd.DataFrame({"method": method, "fixed": fixed, "moving": moving, "outputs": record["outputs"],
                                           "run": record["run_key"], "pairs_file": str(files.pairs),
                                           "labels_file": str(files.labels)}))
    owed = pd.concat(parts, ignore_index=True)
    return owed.drop_duplicates(["method", "fixed", "moving"], keep="last").reset_index(drop=True)


def _check_files(output_dir, row, verify_outputs: bool) -> str:
    """``""`` or the problem of a successful pair's files (policies and methods that write them): the sidecar
    must record the row's content key, every output must match its record and they must have been written
    under a policy that covers the row's (:meth:`~smgic_pydra.output_policy.OutputPolicy.coverage_problem`)."""
    from ..io.integrity import sidecar_problem

    policy = output_policy(row.outputs)
    if not policy.writes_for(row.method):
        return ""
    sidecar = derivatives.pair_output_paths(output_dir, row.moving, row.fixed, row.method).sidecar
    meta, problem = sidecar_problem({"sidecar": sidecar}, row.content_sha256, verify_outputs)
    return problem or policy.coverage_problem(meta, sidecar) or ""


def read_group_tables(output_dir, verify_outputs: bool = False):
    """``(pairs DataFrame, label tables generator)`` of every pair the participant runs of OUTPUT_DIR owe.

    A pair whose tile table is missing or damaged, or that is missing from it, or whose written outputs no
    longer match their sidecar records (size always, SHA-256 when modified or with ``verify_outputs``;
    the content key always) is a failed row naming the file. Runs whose reported pairs of one method differ in
    settings are refused (:func:`check_same_settings`). The per-label tables are read one tile
    at a time, filtered to the successful pairs.
    """
    import pandas as pd

    from ..reports.tables import PAIR_COLUMNS
    from ..reports.tiles import check_tile_table, iter_label_tables, read_pairs_tables

    out = Path(output_dir).absolute()
    records = _records(out)
    owed = _owed_pairs(out, records)
    check_same_settings(out, owed, records)
    found, problems = [], {}
    labels_file = dict(zip(owed["pairs_file"], owed["labels_file"]))
    for path in owed["pairs_file"].unique():
        try:  # the labels table is checked here too, so its pairs fail before reporting, not while writing
            table = read_pairs_tables([path])
            check_tile_table(labels_file[path])
            found.append(table.assign(pairs_file=path))
        except InputError as exc:
            problems[path] = str(exc)
        except FileNotFoundError as exc:
            problems[path] = f"{exc.filename}: tile table missing; run the participant level again"
    keys = ["method", "fixed", "moving", "pairs_file"]
    results = pd.concat(found, ignore_index=True) if found else pd.DataFrame(columns=[*PAIR_COLUMNS, "pairs_file"])
    pairs = owed.merge(results.drop_duplicates(keys, keep="last"), on=keys, how="left", indicator=True)
    missing = pairs["_merge"] == "left_only"
    pairs.loc[missing, "error"] = [problems.get(f, f"{f}: the pair is missing from its tile table")
                                   for f in pairs.loc[missing, "pairs_file"]]
    pairs["error"] = pairs["error"].fillna("").astype(str)
    for i in pairs.index[(pairs["outputs"] != "metrics") & (pairs["error"] == "")]:
        pairs.at[i, "error"] = _check_files(out, pairs.loc[i], verify_outputs)
    ok = pairs[pairs["error"] == ""]
    # the successful rows of each tile table that are not reported (superseded by a later run, or whose
    # files failed the checks above): their labels are left out; most tiles have none and pass as they are
    done = results[results["error"] == ""].merge(ok[keys], on=keys, how="left", indicator=True)
    dropped = {labels_file[f]: group[["method", "fixed", "moving"]]
               for f, group in done[done["_merge"] == "left_only"].groupby("pairs_file")}

    def label_tables():
        for path in ok["labels_file"].unique():
            for table in iter_label_tables([path]):
                if path not in dropped:
                    yield table
                    continue
                frame = table.to_pandas().merge(dropped[path], on=["method", "fixed", "moving"], how="left",
                                                indicator=True)
                yield frame[frame["_merge"] == "left_only"].drop(columns="_merge")

    return pairs[[c for c in PAIR_COLUMNS]], label_tables()


def run_group(output_dir: Path, verify_outputs: bool = False) -> list[str]:
    """The group level: reports from the derivatives only; returns the failed pairs."""
    if not (Path(output_dir) / "dataset_description.json").is_file():
        raise InputError(display_path(output_dir), "not an smgic-pydra output folder (no dataset_description.json): "
                         "run the participant level first")
    derivatives.check_inside_output(output_dir, vars(derivatives.report_paths(output_dir)).values())
    pairs, label_tables = read_group_tables(output_dir, verify_outputs)
    paths = write_reports(pairs, label_tables, output_dir)
    print(f"smgic-bids: {len(pairs)} pair results; reports: " + ", ".join(str(p) for p in paths.values()))
    return failed_lines(pairs[pairs["error"] != ""].to_dict("records"))
