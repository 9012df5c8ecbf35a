"""Pydra task: prepare one subject on the network grid (skull strip, normalise, place the grid)."""

from __future__ import annotations

from pathlib import Path

from pydra.compose import python


@python.define(outputs=["prepared_dir", "error"])
def PrepareSubject(subject: dict, prepared_root: str, config_json: str, skull_strip: str = "none") -> tuple[str, str]:
    """Prepare one subject into ``prepared_root/<subject>`` (reused when complete); errors are returned, not raised.

    subject: ``{"subject": id, "t1w": path, "mask": path|None, "labels": path|None}`` (NIfTI or
    MGZ; mask and labels on the T1w's grid).
    config_json: the network config (``SMGICNetConfig.to_json()``) whose grid the subject is placed on.
    Returns ``(prepared_dir, "")`` or ``("", one-line error)``.
    """
    from smgic_pydra.config import SMGICNetConfig
    from smgic_pydra.preparation import prepare_subject
    from smgic_pydra.tasks.rows import error_text

    cfg = SMGICNetConfig.from_json(config_json)
    out_dir = str(Path(prepared_root) / subject["subject"])
    try:
        prepare_subject(subject["t1w"], out_dir, cfg, mask_path=subject.get("mask"), labels_path=subject.get("labels"),
                        skull_strip=skull_strip, subject_id=subject["subject"])
    except Exception as exc:  # errors are data: the pairs of this subject become error rows
        return "", f"{subject['subject']}: {error_text(exc)}"
    return out_dir, ""
