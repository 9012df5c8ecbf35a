"""Pydra tasks: prepare one subject on a model's network grid (skull strip, normalise, place the grid).

:func:`PrepareSubject` takes files and returns the prepared folder (raising on bad input, like
every per-step task); :func:`PrepareCohortSubject` is the cohort engine's form (a subject dict,
a shared ``prepared_root``, errors returned as data).
"""

from __future__ import annotations

from pathlib import Path

from pydra.compose import python

from ..preparation.skullstrip import SKULL_STRIP_METHODS
from .filetypes import PACKAGED_MODEL, Directory, Image


def prepare_for_model(t1w, out_dir, model=None, mask=None, labels=None, skull_strip: str = "none",
                      subject_id: str = ""):
    """:func:`~smgic_pydra.preparation.prepare_subject` on the network grid of ``model`` (a model folder,
    None: the packaged one; the inputs are checked there, the mask's overlap with the image included);
    returns the PreparedSubject."""
    from ..config import SMGICNetConfig
    from ..inference import resolve_model_files
    from ..preparation import prepare_subject

    cfg = SMGICNetConfig.from_json(resolve_model_files(None if model is None else str(model))[1].read_text())
    return prepare_subject(str(t1w), out_dir, cfg, mask_path=None if mask is None else str(mask),
                           labels_path=None if labels is None else str(labels), skull_strip=skull_strip,
                           subject_id=subject_id or None)


def prepare_subject_files(t1w: Image, mask: Image | None = None, labels: Image | None = None, subject_id: str = "",
                          model: Directory = PACKAGED_MODEL, skull_strip: str = "none") -> Directory:
    """Prepare a subject for registration and training: brain mask, intensities in [0, 1], the model's
    network grid (RAS-aligned, centred on the brain) and the image, mask and labels resampled onto it.

    Args:
        t1w: T1w image (any orientation, voxel sizes in mm); skull-stripped unless skull_strip is a tool.
        mask: brain mask on the T1w's grid (brain where > 0).
        labels: integer label map on the T1w's grid (for Dice and training).
        subject_id: subject label, e.g. sub-01 (default: the T1w's file name).
        model: model folder whose network grid the subject is placed on (default: the packaged model).
        skull_strip: none (brain: t1w > 0 or the mask), deepbet or synthstrip.

    Returns:
        prepared: the prepared subject folder (prepared.json and the network-grid images).
    """
    out = Path.cwd() / "prepared"
    prepare_for_model(t1w, out, model, mask, labels, skull_strip, subject_id)
    return out


PrepareSubject = python.define(prepare_subject_files, outputs=["prepared"], name="PrepareSubject", inputs={
    "skull_strip": python.arg(type=str, default="none", allowed_values=SKULL_STRIP_METHODS,
                              help="skull stripping when there is no mask: " + ", ".join(SKULL_STRIP_METHODS))})
"""Pydra task of :func:`prepare_subject_files`."""


@python.define(outputs=["prepared_dir", "error"])
def PrepareCohortSubject(subject: dict, prepared_root: str, config_json: str,
                         skull_strip: str = "none") -> tuple[str, str]:
    """Prepare one subject into ``prepared_root/<subject>`` (reused when complete); errors are returned, not raised.

    subject: ``{"subject": id, "t1w": path, "mask": path|None, "labels": path|None}`` (NIfTI or
    MGZ; mask and labels on the T1w's grid).
    config_json: the network config (``SMGICNetConfig.to_json()``) whose grid the subject is placed on.
    Returns ``(prepared_dir, "")`` or ``("", one-line error)``.
    """
    from smgic_pydra.config import SMGICNetConfig
    from smgic_pydra.preparation import prepare_subject
    from smgic_pydra.reports.rows import error_text

    cfg = SMGICNetConfig.from_json(config_json)
    out_dir = str(Path(prepared_root) / subject["subject"])
    try:
        prepare_subject(subject["t1w"], out_dir, cfg, mask_path=subject.get("mask"), labels_path=subject.get("labels"),
                        skull_strip=skull_strip, subject_id=subject["subject"])
    except Exception as exc:  # errors are data: the pairs of this subject become error rows
        return "", f"{subject['subject']}: {error_text(exc)}"
    return out_dir, ""
