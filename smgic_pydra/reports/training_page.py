"""The training run's ``index.html``: curves, the per-stage table, every validation and the split,
in one self-contained page (the curves PNG embedded)."""

from __future__ import annotations

import math
from pathlib import Path

from .html import file_uri, render_page

PAGE = "index.html"


def _cell(value, digits: int = 4) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        return str(int(value)) if value.is_integer() and abs(value) < 1e12 and digits == 0 else f"{value:.{digits}g}"
    return str(value)


def training_context(record: dict, summary: list[dict], validation: list[dict], split_rows: list[dict],
                     curves_png) -> dict:
    """The template context (plain strings) from the training record (see
    :mod:`smgic_pydra.training.model_card`), :func:`~smgic_pydra.training.curves.stage_summary`
    rows, the validation log rows, ``split.tsv`` rows and the curves PNG."""
    data, run, cfg = record["dataset"], record["run"], record["config"]
    integer = {"stage", "iterations", "global_step", "step", "pairs"}
    return {
        "title": f"SM-GICNet trained on {data['name']}",
        "facts": [("weights SHA-256", record["weights_sha256"]), ("parameters", f"{record['parameters']:,}"),
                  ("preset", record["preset"]["name"]),
                  ("network grid", f"{'x'.join(str(n) for n in cfg['grid_shape'])} at {cfg['voxel_size_mm']:g} mm"),
                  ("device / precision", f"{run['device']} / {run['precision']}"),
                  ("training time", f"{run['seconds'] / 60:.1f} min in {run['processes']} process(es)"),
                  ("seed", str(record["plan"]["seed"])),
                  ("split", f"{data['split_rule']} (seed {data['split_seed']}): {data['train_images']} training / "
                            f"{data['validation_images']} validation images")],
        "curves": file_uri(curves_png) if curves_png and Path(curves_png).is_file() else None,
        "summary_columns": list(summary[0]) if summary else [],
        "summary": [[_cell(v, 0 if k in integer else 4) for k, v in row.items()] for row in summary],
        "validation_columns": list(validation[0]) if validation else [],
        "validation": [[_cell(v, 0 if k in integer else 4) for k, v in row.items()] for row in validation],
        "split_columns": list(split_rows[0]) if split_rows else [],
        "split": [[str(v) for v in row.values()] for row in split_rows],
    }


def write_training_page(path, record: dict, summary: list[dict], validation: list[dict], split_rows: list[dict],
                        curves_png) -> Path:
    """Write the training page at ``path`` (atomically); see :func:`training_context`."""
    return render_page("training.html.j2", path, **training_context(record, summary, validation, split_rows,
                                                                     curves_png))
