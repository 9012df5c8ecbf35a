"""One tile of the pair matrix with one method: register, write (per output policy) and evaluate, fused.

A *tile* (:func:`smgic_pydra.bids.pairs.tile_pairs`) is a plain dict::

    {"id": "<run key>-f0003-m0001", "fixed": [keys of a block of subjects], "moving": [keys of a block],
     "pairs": int32 array (n, 2) of (fixed index, moving index) into those two lists}

The job loads the method (the model) once and each prepared subject once, and for every pair of
the tile: registers it in memory (:class:`~smgic_pydra.worldspace.registered.RegisteredPair`),
writes the files of the output policy (:class:`~smgic_pydra.output_policy.OutputPolicy`) and computes
the metrics from the arrays in memory (:func:`~smgic_pydra.metrics.pair_metrics.field_metrics`); no
field is written and read back.

Resume, per pair. Each pair's content key is the SHA-256 of its input files' hashes and the
method's settings (model weights included). A finished pair appends one JSON line (its row and
Dice per label) to the tile's journal, so a killed tile resumes after its last finished pair. A
pair is reused only when its journal row has the same key and, for the policies that write files,
its sidecar records that key, its files still match their records, they were written under a
policy that covers this one (:meth:`OutputPolicy.coverage_problem`: files of ``warps`` do not do for
``all``) and, with figures, its figures exist (missing ones are drawn); a pair whose files are
complete but whose metrics are not journalled (another tile size, another run) is evaluated from
its files. Everything else is registered again and its outputs replaced atomically. Errors are
data: a failing pair is a row with ``error``; the tile goes on. At the end the tile's rows are
written as Parquet (:func:`smgic_pydra.reports.tiles.write_tile_tables`), the only thing the
reports read.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

from ..output_policy import output_policy
from ..io.integrity import complete_sidecar
from ..reports.rows import error_text, failed_lines


def pair_key(inputs: dict, fixed: str, moving: str, settings: dict) -> str:
    """The content key of a pair: SHA-256 of its subjects' input hashes and the method's settings."""
    from ..io.hashing import sha256_json

    return sha256_json({"inputs": {"fixed": inputs[fixed], "moving": inputs[moving]}, "settings": settings})


def tile_pair_keys(tile: dict) -> list[tuple[str, str]]:
    """``[(fixed, moving)]`` of a tile, in its order."""
    return [(tile["fixed"][int(f)], tile["moving"][int(m)]) for f, m in tile["pairs"]]


def read_journal(path) -> dict[tuple[str, str], dict]:
    """``(fixed, moving) -> {"row", "labels"}`` of a tile journal (the last line of a pair wins; a line cut
    by a kill is skipped)."""
    done: dict = {}
    try:
        lines = Path(path).read_text().splitlines()
    except FileNotFoundError:
        return done
    for line in lines:
        try:
            entry = json.loads(line)
            done[(entry["row"]["fixed"], entry["row"]["moving"])] = entry
        except (ValueError, KeyError, TypeError):
            continue
    return done


def written_files(paths, key: str, policy, verify_outputs: bool = False) -> dict | None:
    """The sidecar of a pair's complete, unchanged files (``paths``: its
    :class:`~smgic_pydra.worldspace.PairOutputPaths`, None when the method writes none) of content key ``key``
    written under a policy that covers ``policy`` (an :class:`~smgic_pydra.output_policy.OutputPolicy`), else None."""
    meta = None if paths is None else complete_sidecar({"sidecar": paths.sidecar}, key, verify_outputs)
    if meta is None or policy.coverage_problem(meta, paths.sidecar):
        return None
    return meta


def reusable(entry: dict | None, key: str, paths, policy, verify_outputs: bool = False) -> bool:
    """The reuse rule of a tile job (see the module docstring): the pair's journal ``entry`` (of
    :func:`read_journal`) holds content key ``key`` and no error and, where the method writes files
    (``paths`` not None), they are :func:`written_files` of that key. Also what ``--plan-only`` counts
    as done (:func:`smgic_pydra.workflows.plan_summary.finished_pairs`)."""
    if entry is None or entry["row"]["error"] or entry["row"]["content_sha256"] != key:
        return False
    return paths is None or written_files(paths, key, policy, verify_outputs) is not None


def _row(method: str, fixed: str, moving: str, **values) -> dict:
    return {"method": method, "fixed": fixed, "moving": moving, "seconds": math.nan, "forward_seconds": math.nan,
            "error": "", "dice_mean": math.nan, "folding_percent": math.nan, "log_jacobian_std": math.nan,
            "inverse_consistency_mm": math.nan, "content_sha256": "", "resumed": False} | values


def run_tile(method: str, tile: dict, runner_factory, *, subjects: list, prepared_dirs: list, preparation_errors: list,
             inputs: dict, settings: dict, output_dir: str, outputs: str = "all", reportlets: bool = False,
             labels_table: str = "", journal: str, verify_outputs: bool = False) -> dict:
    """Register, write and evaluate every pair of ``tile`` with ``method`` (see the module docstring).

    runner_factory: ``() -> run(fixed, moving, sidecar_extra) -> RegisteredPair`` (called on the
    first pair that needs registering, so a finished tile loads no model). subjects /
    prepared_dirs / preparation_errors: parallel lists from :func:`PrepareSubject`. inputs: subject
    -> its input files' SHA-256 by role. settings: the method's settings (content key). output_dir:
    where the pair files are named (:func:`smgic_pydra.bids.derivatives.pair_output_paths`, as
    :meth:`CohortPlan.pair_paths`) and the tile tables go. outputs: the output policy. reportlets: write the pair and subject figures
    (policy ``all`` only). journal: the tile's journal file. Returns ``{"method", "tile", "pairs_file",
    "labels_file", "n_pairs", "failed"}`` (``failed``: one line per failed pair).
    """
    from ..bids import derivatives
    from ..metrics.labels import load_label_table
    from ..preparation import PreparedSubject
    from ..reports.tiles import tile_files, write_tile_tables
    from ..metrics.pair_metrics import field_metrics, pair_metrics

    dirs = dict(zip(subjects, prepared_dirs))
    prep_errors = dict(zip(subjects, preparation_errors))
    table = load_label_table(labels_table or None)
    names = dict(table)
    loaded: dict = {}
    runner: list = []
    policy = output_policy(outputs)
    writes = policy.writes_for(method)
    figures = reportlets and policy.figures and writes

    def subject(key: str):
        if not dirs.get(key):
            raise RuntimeError(f"preparation failed: {prep_errors.get(key) or 'subject not prepared'}")
        if key not in loaded:
            loaded[key] = PreparedSubject.load(dirs[key])
        return loaded[key]

    def evaluate(row: dict, fixed: str, moving: str, paths) -> tuple[dict, dict, tuple | None]:
        """One pair: ``(row with metrics, Dice per label, forward field (disp, affine) or None)``."""
        key = row["content_sha256"]
        meta = written_files(paths, key, policy, verify_outputs)
        if meta is not None:  # complete files of this key from an earlier run: evaluate them
            files = {r: str(Path(paths.sidecar).parent / n) for r, n in meta["files"].items()}
            metrics, per_label = pair_metrics(files, subject(fixed), table, labels_table or None, subject(moving))
            seconds = meta.get("total_seconds", math.nan)  # as a fresh pair's; NaN: written by an older version
            return row | metrics | {"seconds": float(seconds), "resumed": True,
                                    "forward_seconds": float(meta.get("forward_seconds", math.nan))}, per_label, None
        if not runner:
            runner.append(runner_factory())
        extra = {"content_sha256": key, "inputs_sha256": {"fixed": inputs[fixed], "moving": inputs[moving]}}
        result = runner[0](subject(fixed), subject(moving), extra)
        if paths is not None:
            result.write(paths, policy)  # stamps total_seconds, also into the sidecar (read on resume)
        # registration + outputs; evaluation excluded
        seconds = result.total_seconds if paths is not None else time.perf_counter() - result.started
        moving_labels = None if result.moving_labels is None else result.moving_labels.dataobj
        metrics, per_label = field_metrics(result.forward, result.fixed_affine, result.inverse,
                                           result.moving_img.affine, subject(fixed), result.warped_labels(), table,
                                           labels_table or None, moving_labels)
        return row | metrics | {"seconds": seconds, "forward_seconds": float(result.seconds["forward_seconds"])}, \
            per_label, (result.forward.astype("float64"), result.fixed_affine)

    done = read_journal(journal)
    Path(journal).parent.mkdir(parents=True, exist_ok=True)
    rows, label_rows = [], []
    with open(journal, "a", encoding="utf-8") as log:
        for fixed, moving in tile_pair_keys(tile):
            key = pair_key(inputs, fixed, moving, settings)
            paths = derivatives.pair_output_paths(output_dir, moving, fixed, method) if writes else None
            previous = done.get((fixed, moving))
            per_label: dict = {}
            forward = None
            if reusable(previous, key, paths, policy, verify_outputs):
                row, per_label = previous["row"] | {"resumed": True}, previous["labels"]
                per_label = {int(k): v for k, v in per_label.items()}
            else:
                row = _row(method, fixed, moving, content_sha256=key)
                try:
                    row, per_label, forward = evaluate(row, fixed, moving, paths)
                except Exception as exc:  # errors are data: one row, the tile goes on
                    row, per_label = _row(method, fixed, moving, content_sha256=key, error=error_text(exc)), {}
                log.write(json.dumps({"row": row, "labels": {str(k): v for k, v in per_label.items()}}) + "\n")
                log.flush()
            if figures and not row["error"]:  # also for reused pairs: a figure missing is drawn (never fatal)
                from ..reports.reportlets import figures_current, write_row_reportlets

                spec = row | {"files": {"sidecar": str(paths.sidecar), "warp": str(paths.warp)},
                              "figures": derivatives.pair_figure_paths(output_dir, moving, fixed, method).as_dict(),
                              "subject_figures": {k: str(derivatives.subject_figure_path(output_dir, k))
                                                  for k in (fixed, moving)}}
                if forward is not None or not (figures_current(spec["figures"], spec["files"]["sidecar"]) and all(
                        Path(p).is_file() for p in spec["subject_figures"].values())):
                    write_row_reportlets(spec, subject(fixed), subject(moving), forward)
            rows.append(row)
            label_rows += [{"method": method, "fixed": fixed, "moving": moving, "label": int(label),
                            "name": names.get(int(label), str(label)), "dice": float(d)}
                           for label, d in per_label.items() if not math.isnan(d)]
    files = tile_files(output_dir, method, tile["id"])
    write_tile_tables(rows, label_rows, files)
    return {"method": method, "tile": tile["id"], "pairs_file": str(files.pairs), "labels_file": str(files.labels),
            "n_pairs": len(rows), "failed": failed_lines(rows)}
