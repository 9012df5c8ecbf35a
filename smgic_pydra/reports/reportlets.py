"""Reportlets of evaluated rows (participant level): the pair's three figures and the preparation
figure of its two subjects.

A row asks for them with ``row["figures"]`` (role -> SVG path, from
:func:`smgic_pydra.bids.derivatives.pair_figure_paths`) and ``row["subject_figures"]`` (subject
key -> SVG path). Figures already written after the pair's outputs are kept (resume); the
preparation figure of a subject is written once.
"""

from __future__ import annotations

import logging
from pathlib import Path

logger = logging.getLogger("smgic_pydra.reports")


def figures_current(paths: dict, sidecar) -> bool:
    """True when every figure of ``paths`` exists and is newer than the pair's sidecar."""
    sidecar = Path(sidecar)
    if not sidecar.is_file():
        return False
    newest = sidecar.stat().st_mtime_ns
    return all(Path(p).is_file() and Path(p).stat().st_mtime_ns >= newest for p in paths.values())


def write_row_reportlets(row: dict, fixed, moving, forward=None) -> str:
    """Write the reportlets a successful row asks for; returns ``""`` or the one-line error.

    fixed / moving: the pair's :class:`~smgic_pydra.preparation.PreparedSubject`. forward: the
    forward warp ``(disp, affine)`` when already read (else read from ``row["files"]["warp"]``).
    A figure that fails is logged and reported, never fatal: the pair's outputs and metrics stand.
    """
    import nibabel as nib

    from ..bids.derivatives import PairFigurePaths
    from .rows import error_text
    from .pair_figures import write_pair_figures
    from .subject_figures import write_subject_figure

    try:
        for subject in (fixed, moving):
            path = (row.get("subject_figures") or {}).get(subject.subject_id)
            if path and not Path(path).is_file():
                write_subject_figure(path, subject)
        paths = row.get("figures") or {}
        if paths and not figures_current(paths, row["files"].get("sidecar", "")):
            if forward is None:
                from ..io.itk_warp import read_itk_displacement

                forward = read_itk_displacement(row["files"]["warp"])
            write_pair_figures(PairFigurePaths(**{k: Path(v) for k, v in paths.items()}), row,
                               nib.load(fixed.source_files["t1"]), fixed.native_mask,
                               nib.load(moving.source_files["t1"]), moving.native_mask, forward)
    except Exception as exc:  # a figure never fails the pair
        message = f"reportlets failed: {error_text(exc)}"
        logger.warning("%s %s -> %s: %s", row["method"], row["moving"], row["fixed"], message)
        return message
    return ""
